"""Grouping columns through real tf.Transform (preprocessing_fn, tft_beam): an integer a-priori
column (optional, so sparse with missing values) and a one-hot K-Means feature give the same
group ids as the component."""
import functools

import numpy as np
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.grouping import fitting, store
from models.grouped_regression import features as fk
from models.grouped_regression.preprocessing import preprocessing_fn


def _transform(rows, grouping, spec, tmp_path):
  uri = str(tmp_path / "grouping")
  store.save(grouping, uri)
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
  cfg = dict(numeric_features=["area"], categorical_features=[], label="y", grouping_uri=uri)
  with tft_beam.Context(temp_dir=str(tmp_path / "tft"), force_tf_compat_v1=False):
    (out, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
        functools.partial(preprocessing_fn, custom_config=cfg), output_record_batches=False))
  return np.array([r[fk.GROUP_KEY] for r in out])


def test_integer_apriori_and_onehot_kmeans_columns_flow_through_transform(tmp_path):
  rng = np.random.default_rng(3)
  n = 80
  codes = rng.choice([20, 60, 190], n, p=[.55, .4, .05])
  zone = rng.choice(["RL", "RM", "C"], n, p=[.5, .4, .1])
  rows = [{"area": float(rng.normal(1500, 300)), "lon": float(rng.normal(-93.6, 0.03)),
           "ms_class": [int(c)], "zone": str(z), "y": 12.0} for c, z in zip(codes, zone)]
  rows[0]["ms_class"] = []                                   # missing -> fallback group
  spec = {"area": tf.io.FixedLenFeature([], tf.float32), "lon": tf.io.FixedLenFeature([], tf.float32),
          "y": tf.io.FixedLenFeature([], tf.float32), "zone": tf.io.FixedLenFeature([], tf.string),
          "ms_class": tf.io.VarLenFeature(tf.int64)}

  apriori = fitting.fit_apriori(codes[1:], "ms_class", min_count=10)
  ids = _transform(rows, apriori, spec, tmp_path / "a")
  values = np.array([str(r["ms_class"][0]) if r["ms_class"] else "" for r in rows],
                    dtype=object)
  np.testing.assert_array_equal(ids, fitting.assign(apriori, {"ms_class": values}))
  assert ids[0] == apriori.fallback_group

  lon = np.array([r["lon"] for r in rows], dtype=np.float32)
  cols = {"lon": lon, "zone": zone.astype(object)}
  kmeans = fitting.fit_kmeans(cols, ["lon"], [3], onehot={"zone": ["RL", "RM"]})
  ids = _transform(rows, kmeans, spec, tmp_path / "k")
  np.testing.assert_array_equal(ids, fitting.assign(kmeans, cols))
