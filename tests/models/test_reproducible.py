"""Reproducible training: run_fn twice on the same Transform output, config and seed gives the
same weights and eval metrics, and so the same SavedModel fingerprint (what GuardedPusher
compares to skip an unchanged push)."""
import os

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from components import push_guard
from models.grouped_regression import trainer
from tests.models import transform_sample


def _train(sample, out_dir):
  fn_args = tfx.components.FnArgs(
      train_files=sample.train_files, eval_files=sample.eval_files,
      transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
      serving_model_dir=str(out_dir / "serving"), model_run_dir=str(out_dir / "logs"),
      custom_config=sample.custom_config(variant="multihead", epochs=3, patience=2, batch_size=32,
                                         trunk_units=[16, 8], deterministic=True))
  trainer.run_fn(fn_args)
  # Every saved variable, read from the SavedModel's checkpoint by its object-graph key (the
  # Keras export keeps no per-layer traces, so the revived object has no `.variables`).
  reader = tf.train.load_checkpoint(os.path.join(fn_args.serving_model_dir, "variables",
                                                 "variables"))
  names = sorted(n for n in reader.get_variable_to_shape_map()
                 if not n.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"))
  assert any("group_dw" in n for n in names), names      # the model's weights are in there
  return fn_args.serving_model_dir, [reader.get_tensor(n) for n in names]


def test_same_inputs_give_the_same_weights_metrics_and_fingerprint(tmp_path):
  sample = transform_sample.build(str(tmp_path / "tft"), rows=300)
  dir_a, w_a = _train(sample, tmp_path / "a")
  dir_b, w_b = _train(sample, tmp_path / "b")
  assert len(w_a) == len(w_b) > 0
  for a, b in zip(w_a, w_b):
    np.testing.assert_array_equal(a, b)
  fp_a, fp_b = push_guard.model_fingerprint(dir_a), push_guard.model_fingerprint(dir_b)
  assert fp_a is not None and fp_a == fp_b
  # A different seed gives a different model, so the fingerprint can tell models apart.
  fn_args = tfx.components.FnArgs(
      train_files=sample.train_files, eval_files=sample.eval_files,
      transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
      serving_model_dir=str(tmp_path / "c"), model_run_dir=str(tmp_path / "c_logs"),
      custom_config=sample.custom_config(variant="multihead", epochs=3, patience=2, batch_size=32,
                                         trunk_units=[16, 8], seed=8))
  trainer.run_fn(fn_args)
  assert push_guard.model_fingerprint(fn_args.serving_model_dir) != fp_a
