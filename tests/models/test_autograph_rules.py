"""AutoGraph transpiles our layers but not tf_keras's own code (autograph_rules.py)."""
import numpy as np
import tensorflow as tf
from tensorflow.python.autograph.core import config as ag_config
from tensorflow.python.autograph.pyct import transpiler

from models.grouped_regression import autograph_rules
from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib
from models.grouped_regression import trainer


def _record_transpiled(monkeypatch):
  """A list that fills with (module, qualname) of every function AutoGraph transforms."""
  seen = []
  original = transpiler.PyToPy.transform_function

  def recording(self, fn, user_context):
    seen.append((getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", "")))
    return original(self, fn, user_context)

  monkeypatch.setattr(transpiler.PyToPy, "transform_function", recording)
  return seen


def _transpiled_during_fit(monkeypatch):
  """(module, qualname) of every function AutoGraph transforms while a multihead model fits
  one epoch."""
  seen = _record_transpiled(monkeypatch)
  rng = np.random.default_rng(0)
  x, g = rng.normal(size=(256, 1)).astype(np.float32), np.arange(256) % 3
  y = 2.0 * x[:, 0] + g
  spec = model_lib.ModelInputs(numeric=["x"], categorical={}, num_groups=3,
                               label_mean=float(y.mean()), label_std=float(y.std()))
  model = model_lib.build_model(spec, model_lib.Hparams(variant="multihead", trunk_units=(8,)))
  feats = {fk.numeric_key("x"): x, fk.GROUP_KEY: g}
  trainer.fit(model, trainer.dataset_from_arrays(feats, y, 64),
              trainer.dataset_from_arrays(feats, y, 256, shuffle=False),
              epochs=1, patience=1, verbose=0)
  return seen


def test_fit_transpiles_our_layers_and_no_tf_keras_code(monkeypatch):
  seen = _transpiled_during_fit(monkeypatch)
  # the hook sees conversions: our head layer's call goes through AutoGraph as before
  assert ("models.grouped_regression.model", "GroupedLinearHead.call") in seen
  # From tf_keras only the functions fit itself hands to tf.function (its train and test
  # steps: a tf.function always converts its own function); none of the layer, loss, metric
  # or data-adapter code they call. Without the rule this lists dozens.
  keras = {(m, q) for m, q in seen if m.split(".")[0] == "tf_keras"}
  assert {q for _, q in keras} <= {"Model.make_train_function.<locals>.train_function",
                                   "Model.make_test_function.<locals>.test_function"}, keras


def test_install_adds_each_rule_once():
  autograph_rules.install()
  autograph_rules.install()
  for package in autograph_rules.PACKAGES:
    rules = [r for r in ag_config.CONVERSION_RULES if getattr(r, "_prefix", None) == package]
    assert len(rules) == 1, package
  assert tf.keras.layers.Dense.__module__.startswith("tf_keras.")   # the package it names


def test_reading_transformed_examples_transpiles_no_tfx_bsl_or_tft_code(monkeypatch, tmp_path):
  """input_fn's datasets (tfx_bsl parsing under Dataset.map) and the transform layer a serving
  signature traces: only functions handed to tf.function/map directly are converted."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from tests.models import transform_sample  # pylint: disable=g-import-not-at-top
  sample = transform_sample.build(str(tmp_path), rows=120)
  seen = _record_transpiled(monkeypatch)
  out = tft.TFTransformOutput(sample.transform_output)
  batches = list(trainer.input_fn(sample.train_files, sample.data_accessor(), out, 64,
                                  shuffle=False))
  assert sum(int(y.shape[0]) for _, y in batches) == sample.n_train
  layer = out.transform_features_layer()
  spec = out.raw_feature_spec()
  fn = tf.function(lambda e: layer(tf.io.parse_example(e, spec)))
  fn.get_concrete_function(tf.TensorSpec([None], tf.string))
  libraries = {(m, q) for m, q in seen if m.split(".")[0] in ("tfx_bsl", "tensorflow_transform")}
  # Without the rules this lists 13: TFT's transform layer and loader, tfx_bsl's dataset
  # lambdas and feature renaming. With them, only the parse function tfx_bsl wraps itself.
  assert libraries <= {("tfx_bsl.tfxio.tf_example_record",
                        "_validate_tf_example_parser_config.<locals>.parse")}, libraries
