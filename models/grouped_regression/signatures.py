"""SavedModel signatures: serving_default (tf.Example in), serving_raw (plain tensors in),
transform_features (for TFMA and debugging). All run the Transform graph, so callers send raw
features and the model assigns the group itself.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models.grouped_regression import features as fk


def raw_serving_spec(tft_output: tft.TFTransformOutput, label_key: str):
  spec = dict(tft_output.raw_feature_spec())
  spec.pop(label_key, None)
  spec.pop(fk.GROUP_KEY, None)
  return spec


def _as_raw_feature(x: tf.Tensor, feature_spec) -> tf.Tensor:
  """A [batch] tensor in the form the Transform graph expects for this raw feature."""
  if isinstance(feature_spec, tf.io.VarLenFeature):
    n = tf.shape(x, out_type=tf.int64)[0]
    idx = tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1)
    return tf.SparseTensor(idx, x, tf.stack([n, tf.constant(1, tf.int64)]))
  return tf.reshape(x, [-1] + list(feature_spec.shape))


@dataclasses.dataclass
class GroupOutputs:
  """Per-group tables the serving graph gathers from by group id (intervals.py, grouping)."""
  sd: np.ndarray                    # [G] calibrated predictive sd, label (transformed) units
  z: float                          # normal quantile of the interval level
  labels: Sequence[str]             # [G] group_label
  fallback: np.ndarray              # [G] bool: the fallback group
  label_transform: str = "none"     # "log": also *_original outputs (exp of quantiles)


def group_outputs(pred: tf.Tensor, g: tf.Tensor, t: GroupOutputs) -> Dict[str, tf.Tensor]:
  """lower/upper/prediction_std/group_label/is_fallback (+ *_original for a log label).

  Back-transform of a log label: the interval's quantiles map through exp; the point
  prediction_original is the median exp(mu), not the mean exp(mu + sd^2/2).
  """
  gi = tf.reshape(tf.cast(g, tf.int32), [-1])
  sd = tf.reshape(tf.gather(tf.constant(np.asarray(t.sd, np.float32)), gi), [-1, 1])
  lower, upper = pred - t.z * sd, pred + t.z * sd
  out = {"lower": lower, "upper": upper, "prediction_std": sd,
         "group_label": tf.reshape(tf.gather(tf.constant(list(t.labels)), gi), [-1, 1]),
         "is_fallback": tf.reshape(tf.gather(tf.constant(np.asarray(t.fallback, bool)), gi),
                                   [-1, 1])}
  if t.label_transform == "log":
    out.update({"prediction_original": tf.exp(pred), "lower_original": tf.exp(lower),
                "upper_original": tf.exp(upper)})
  return out


def export(model: tf.keras.Model, tft_output: tft.TFTransformOutput, export_dir: str,
           label_key: str, extras: Optional[GroupOutputs] = None) -> None:
  model.tft_layer = tft_output.transform_features_layer()
  spec = raw_serving_spec(tft_output, label_key)

  def predict(raw: Dict[str, tf.Tensor]):
    transformed = model.tft_layer(raw)
    transformed.pop(fk.LABEL_KEY, None)
    # scalars are [batch] -> [batch, 1]; vector features (piecewise encodings) keep their width
    inputs = {k: v if v.shape.rank == 2 else tf.reshape(v, [-1, 1])
              for k, v in transformed.items()}
    pred = model(inputs)
    out = {fk.PREDICTION_KEY: pred,
           fk.GROUP_OUTPUT_KEY: tf.reshape(tf.cast(transformed[fk.GROUP_KEY], tf.int64), [-1, 1])}
    if extras is not None:
      out.update(group_outputs(pred, transformed[fk.GROUP_KEY], extras))
    return out

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def serve_examples(examples):
    return predict(tf.io.parse_example(examples, spec))

  # inputs named as TF would rename them ('county.name' -> 'county_name'), mapped back here
  raw_names = {fk.raw_input_name(name): name for name in spec}
  raw_sig = {arg: tf.TensorSpec([None], spec[name].dtype, name=arg)
             for arg, name in raw_names.items()}

  @tf.function(input_signature=[raw_sig])
  def serve_raw(features):
    return predict({raw_names[k]: _as_raw_feature(v, spec[raw_names[k]])
                    for k, v in features.items()})

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def transform_features(examples):
    raw = tf.io.parse_example(examples, tft_output.raw_feature_spec())
    return model.tft_layer(raw)

  # serving_raw takes one keyword per feature; wrap so the signature has named inputs.
  raw_fn = tf.function(lambda **kw: serve_raw(kw), input_signature=None)
  raw_concrete = raw_fn.get_concrete_function(**raw_sig)
  # save_traces=False: the three signatures above are all that serving and TFMA run; Keras's
  # extra traces of every layer's call cost ~1.4 s of the Trainer on Ames. The Keras model still
  # reloads from its layer configs: tf.keras.models.load_model after importing
  # models.grouped_regression.model (which registers the custom layers).
  model.save(export_dir, save_format="tf", save_traces=False, signatures={
      "serving_default": serve_examples.get_concrete_function(),
      "serving_raw": raw_concrete,
      "transform_features": transform_features.get_concrete_function(),
  })
