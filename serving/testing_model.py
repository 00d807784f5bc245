"""A tiny SavedModel with the pipeline's serving contract, for tests and benchmarks.

The dev server must work on what the Pusher exports without knowing our model code, so tests use
an independent model that only shares the *contract*: `serving_default` (serialized tf.Examples),
`serving_raw` (one tensor per raw feature) and `transform_features`, outputs `prediction` float32
[None, 1] and `group_id` int64 [None, 1]. A lookup table gives it an init op like TFT vocabularies.
"""
from __future__ import annotations

import os
import random
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

# Raw features (Ames names) by dtype: float32 numerics, int64 integers, string categoricals.
FEATURES: Dict[str, tf.DType] = {
    "Gr_Liv_Area": tf.float32, "Lot_Area": tf.float32, "Longitude": tf.float32,
    "Latitude": tf.float32, "Year_Built": tf.int64, "Full_Bath": tf.int64,
    "Neighborhood": tf.string, "Central_Air": tf.string,
}
NEIGHBORHOODS = ["North_Ames", "College_Creek", "Old_Town", "Edwards", "Somerset"]
_NUMERIC = [n for n, d in FEATURES.items() if d != tf.string]
_MEANS = [1500.0, 10000.0, -93.6, 42.0, 1970.0, 1.5]
_SCALES = [500.0, 8000.0, 0.03, 0.02, 30.0, 0.5]
REGRESS_METHOD = "tensorflow/serving/regress"


class GroupedLinearModel(tf.Module):
  """prediction = w . standardized(numerics) + group_bias[group(Neighborhood)] + bias + offset."""

  def __init__(self, offset: float = 0.0, seed: int = 0):
    super().__init__()
    rng = np.random.default_rng(seed)
    self.w = tf.Variable(rng.normal(0, 0.1, len(_NUMERIC)).astype(np.float32))
    self.group_bias = tf.Variable(rng.normal(0, 0.2, len(NEIGHBORHOODS) + 1).astype(np.float32))
    self.bias = tf.Variable(np.float32(12.0 + offset))
    self.table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(NEIGHBORHOODS), tf.range(1, len(NEIGHBORHOODS) + 1, dtype=tf.int64)),
        default_value=tf.constant(0, tf.int64))  # unseen neighborhoods: fallback group 0

  def _transform(self, raw):
    cols = [(tf.cast(raw[n], tf.float32) - m) / s for n, m, s in zip(_NUMERIC, _MEANS, _SCALES)]
    return {"numeric": tf.stack(cols, axis=1), "group_id": self.table.lookup(raw["Neighborhood"]),
            "central_air": tf.cast(tf.equal(raw["Central_Air"], "Y"), tf.float32)}

  def _predict(self, raw):
    t = self._transform(raw)
    y = (tf.linalg.matvec(t["numeric"], self.w) + tf.gather(self.group_bias, t["group_id"])
         + 0.05 * t["central_air"] + self.bias)
    return {"prediction": tf.reshape(y, [-1, 1]), "group_id": tf.reshape(t["group_id"], [-1, 1])}

  @staticmethod
  def _parse(examples):
    spec = {n: tf.io.FixedLenFeature([], d) for n, d in FEATURES.items()}  # no defaults: required
    return tf.io.parse_example(examples, spec)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def serving_default(self, examples):
    return self._predict(self._parse(examples))

  @tf.function(input_signature=[{n: tf.TensorSpec([None], d, name=n) for n, d in FEATURES.items()}])
  def serving_raw(self, features):
    return self._predict(features)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def transform_features(self, examples):
    return self._transform(self._parse(examples))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
  def regress(self, inputs):
    return {"outputs": self._predict(self._parse(inputs))["prediction"]}


def save_test_model(export_dir: str, offset: float = 0.0, with_regress: bool = False) -> str:
  """Writes the model to `export_dir` (a `<base>/<version>` dir) and returns it.

  with_regress adds a `regress` signature whose method_name is TF Serving's regress method (TF2
  `tf.saved_model.save` always writes the predict method, so the saved proto is patched).
  """
  module = GroupedLinearModel(offset=offset)
  sigs = {"serving_default": module.serving_default.get_concrete_function(),
          "serving_raw": module.serving_raw.get_concrete_function(),
          "transform_features": module.transform_features.get_concrete_function()}
  if with_regress:
    sigs["regress"] = module.regress.get_concrete_function()
  tf.saved_model.save(module, export_dir, signatures=sigs)
  if with_regress:
    _set_method_name(export_dir, "regress", REGRESS_METHOD)
  return export_dir


def _set_method_name(export_dir: str, signature: str, method: str) -> None:
  from tensorflow.core.protobuf import saved_model_pb2
  path = os.path.join(export_dir, "saved_model.pb")
  sm = saved_model_pb2.SavedModel()
  with open(path, "rb") as f:
    sm.ParseFromString(f.read())
  for mg in sm.meta_graphs:
    mg.signature_def[signature].method_name = method
  with open(path, "wb") as f:
    f.write(sm.SerializeToString())


def example_rows(n: int, seed: int = 0) -> List[Dict[str, object]]:
  """Plausible raw feature rows (Python scalars typed like FEATURES; some unseen neighborhoods)."""
  rnd = random.Random(seed)
  rows = []
  for _ in range(n):
    rows.append({
        "Gr_Liv_Area": float(rnd.randint(600, 3500)), "Lot_Area": float(rnd.randint(2000, 30000)),
        "Longitude": round(rnd.uniform(-93.69, -93.58), 5),
        "Latitude": round(rnd.uniform(41.98, 42.06), 5),
        "Year_Built": rnd.randint(1880, 2010), "Full_Bath": rnd.randint(0, 4),
        "Neighborhood": rnd.choice(NEIGHBORHOODS + ["Blueste"]),
        "Central_Air": rnd.choice(["Y", "N"]),
    })
  return rows


def serialize_rows(rows: Sequence[Dict[str, object]],
                   dtypes: Optional[Dict[str, tf.DType]] = None) -> List[bytes]:
  """Serialized tf.Examples for `rows`, typed by `dtypes` (default: FEATURES)."""
  from serving.client.examples import rows_to_examples
  return [e.SerializeToString() for e in rows_to_examples(rows, dtypes or FEATURES)]


def raw_columns(rows: Sequence[Dict[str, object]],
                dtypes: Optional[Dict[str, tf.DType]] = None) -> Dict[str, np.ndarray]:
  """Columnar numpy inputs for `serving_raw`."""
  dtypes = dtypes or FEATURES
  return {n: np.array([r[n] for r in rows], dtype=object if d == tf.string else d.as_numpy_dtype)
          for n, d in dtypes.items()}
