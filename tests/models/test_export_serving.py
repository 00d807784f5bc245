"""Each variant, trained by the pipeline's run_fn on a real Transform output, exports a
SavedModel whose serving_default takes serialized raw tf.Examples (no label, no group id) and
assigns the group itself."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.tf_metadata import schema_utils
from tfx import v1 as tfx

from components.grouping import fitting, store
from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib
from models.grouped_regression import trainer
from tests.models import transform_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
  return transform_sample.build(str(tmp_path_factory.mktemp("tft")), rows=300)


def _serving_examples(sample):
  spec = dict(schema_utils.schema_as_feature_spec(sample.schema).feature_spec)
  spec.pop(sample.cfg.dataset.label)                 # serving requests carry no label
  rows = sample.frame.iloc[sample.n_train:].to_dict("records")
  return rows, [transform_sample.to_example(r, spec) for r in rows]


@pytest.fixture(scope="module")
def sample_ple(tmp_path_factory):
  return transform_sample.build(str(tmp_path_factory.mktemp("tft_ple")), rows=300,
                                numeric_bins=6)


@pytest.mark.parametrize("variant", model_lib.VARIANTS)
def test_run_fn_exports_a_model_that_serves_raw_examples(sample, tmp_path, variant):
  _check_run_fn_export(sample, tmp_path, variant)


def test_piecewise_encoded_model_exports_and_serves(sample_ple, tmp_path):
  """model.numeric_bins: Transform emits [bins] encodings, run_fn feeds them to the model, and
  the exported signatures compute them from raw requests."""
  spec = tft.TFTransformOutput(sample_ple.transform_output).transformed_feature_spec()
  for name in sample_ple.cfg.dataset.numeric_features:
    assert spec[fk.piecewise_key(name)].shape == [6], name
  model = _check_run_fn_export(sample_ple, tmp_path, "multihead")
  assert {fk.piecewise_key(n) for n in sample_ple.cfg.dataset.numeric_features} <= set(
      model.signatures["transform_features"].structured_outputs)


def _check_run_fn_export(sample, tmp_path, variant):
  fn_args = tfx.components.FnArgs(
      train_files=sample.train_files, eval_files=sample.eval_files,
      transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
      serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "logs"),
      custom_config=sample.custom_config(variant=variant, epochs=3, patience=2, batch_size=64,
                                         trunk_units=[16, 8]))
  trainer.run_fn(fn_args)

  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  assert {"serving_default", "serving_raw", "transform_features"} <= set(loaded.signatures)
  rows, examples = _serving_examples(sample)
  out = loaded.signatures["serving_default"](examples=tf.constant(examples))
  pred = out[fk.PREDICTION_KEY].numpy()
  assert pred.shape == (len(rows), 1)
  assert np.all(np.isfinite(pred))
  assert pred.std() > 0, "the model predicts one constant"

  # The group the served model assigns is the grouping component's, row by row.
  g = store.load(sample.grouping_uri)
  expected = fitting.assign(g, {c: np.array([r[c] for r in rows], np.float64)
                                for c in g.features})
  np.testing.assert_array_equal(out[fk.GROUP_OUTPUT_KEY].numpy().ravel(), expected)

  # Trained, not just initialised: better than predicting the train mean of the label.
  y = np.array([r[sample.cfg.dataset.label] for r in rows])
  train_mean = sample.frame[sample.cfg.dataset.label].iloc[:sample.n_train].mean()
  rmse = np.sqrt(np.mean((pred.ravel() - y) ** 2))
  assert rmse < np.sqrt(np.mean((y - train_mean) ** 2))

  # every variant serves its interval and names the row's group (issue 14; tests/models/
  # test_intervals.py checks the numbers)
  lower, upper = out["lower"].numpy(), out["upper"].numpy()
  assert np.all(lower < pred) and np.all(pred < upper)
  assert out["group_label"].numpy().shape == out["is_fallback"].numpy().shape == pred.shape

  # serving_raw (plain tensors) gives the same predictions as serving_default.
  raw = loaded.signatures["serving_raw"]
  specs = raw.structured_input_signature[1]
  raw_out = raw(**{k: tf.constant([r[k] for r in rows], dtype=s.dtype)
                   for k, s in specs.items()})
  np.testing.assert_allclose(raw_out[fk.PREDICTION_KEY].numpy(), pred, rtol=1e-5, atol=1e-5)

  # Saved without Keras's per-layer traces, the Keras model still reloads from its layer configs
  # (model.py registers the custom layers) and predicts what serving_default does.
  keras_model = tf.keras.models.load_model(fn_args.serving_model_dir)
  labelled = dict(schema_utils.schema_as_feature_spec(sample.schema).feature_spec)
  transformed = loaded.signatures["transform_features"](examples=tf.constant(
      [transform_sample.to_example(r, labelled) for r in rows]))
  inputs = {k: v if v.shape.rank == 2 else tf.reshape(v, [-1, 1])
            for k, v in transformed.items() if k in keras_model.input}
  np.testing.assert_allclose(keras_model(inputs).numpy(), pred, rtol=1e-5, atol=1e-5)
  return loaded
