"""Agreement: the TensorFlow assignment (what the Transform graph and so the serving model run)
equals the component's NumPy assignment on every row, including missing values, points on the
boundary between groups, one-hot columns, and a-priori string or integer columns."""
import numpy as np
import pytest
import tensorflow as tf

from components.grouping import fitting, tf_assign
from tests.grouping import helpers as h


def _graph_ids(g, spec, inputs):
  """tf_assign run as a traced graph from raw inputs, as Transform runs it."""
  fn = tf.function(lambda x: tf_assign.group_ids(g, tf_assign.raw_columns(g, x)),
                   input_signature=[spec])
  return fn(inputs).numpy()


def _sparse(values, missing, dtype):
  """A [n, 1] SparseTensor (VarLenFeature) with `missing` rows absent."""
  keep = np.nonzero(~missing)[0]
  return tf.SparseTensor(np.stack([keep, np.zeros_like(keep)], 1).astype(np.int64),
                         tf.constant(np.asarray(values)[keep], dtype), [len(values), 1])


def test_kmeans_agrees_on_every_row_with_missing_and_boundary_points():
  cols, _ = h.blobs(4000, seed=4)
  cols["lon"][::13] = np.nan
  g = fitting.fit_kmeans(cols, ["lon", "lat"], range(2, 7), seed=1)
  # probe rows: the data, plus points exactly between two centroids (raw units)
  cents = g.centroids * g.scale + g.mean
  mids = np.array([(cents[i] + cents[j]) / 2 for i in range(g.k) for j in range(i + 1, g.k)])
  lon = np.concatenate([cols["lon"], mids[:, 0]]).astype(np.float32)
  lat = np.concatenate([cols["lat"], mids[:, 1]]).astype(np.float32)
  expected = fitting.assign(g, {"lon": lon, "lat": lat})
  missing = np.isnan(lon)
  spec = {"lon": tf.SparseTensorSpec([None, 1], tf.float32), "lat": tf.TensorSpec([None],
                                                                                   tf.float32)}
  got = _graph_ids(g, spec, {"lon": _sparse(lon, missing, tf.float32), "lat": tf.constant(lat)})
  np.testing.assert_array_equal(got, expected)
  assert len(set(expected)) == g.k


def test_kmeans_integer_and_onehot_columns_agree():
  rng = np.random.default_rng(0)
  n = 3000
  cols = {"year": rng.integers(1900, 2010, n), "area": rng.normal(1500, 400, n),
          "zone": rng.choice(np.array(["RL", "RM", "FV", "C"], dtype=object), n)}
  g = fitting.fit_kmeans(cols, ["year", "area"], [5], onehot={"zone": ["RL", "RM", "FV"]})
  probe = {"year": np.append(cols["year"], [1950, 2000]),
           "area": np.append(cols["area"], [1000.0, 2000.0]).astype(np.float32),
           "zone": np.append(cols["zone"], ["never-seen", ""]).astype(object)}
  expected = fitting.assign(g, probe)
  zone_missing = probe["zone"] == ""
  spec = {"year": tf.TensorSpec([None, 1], tf.int64), "area": tf.TensorSpec([None], tf.float32),
          "zone": tf.SparseTensorSpec([None, 1], tf.string)}
  got = _graph_ids(g, spec, {
      "year": tf.constant(probe["year"].reshape(-1, 1), tf.int64),
      "area": tf.constant(probe["area"]),
      "zone": _sparse(probe["zone"].astype(str).astype(bytes), zone_missing, tf.string)})
  np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind", ["string", "int"])
def test_apriori_agrees_including_unseen_rare_and_missing(kind):
  rng = np.random.default_rng(1)
  codes = rng.choice([20, 30, 60, 90, 120, 190], 500, p=[.3, .3, .2, .1, .09, .01])
  g = fitting.fit_apriori(codes if kind == "int" else codes.astype(str).astype(object), "c",
                          min_count=20)
  probe = np.append(codes, [999, 190, 20])
  missing = np.zeros(len(probe), bool)
  missing[-1] = True
  if kind == "int":
    expected = fitting.assign(g, {"c": probe})
    expected[-1] = g.fallback_group   # missing -> fallback
    sp = _sparse(probe, missing, tf.int64)
    spec = {"c": tf.SparseTensorSpec([None, 1], tf.int64)}
  else:
    text = probe.astype(str).astype(object)
    text[-1] = ""
    expected = fitting.assign(g, {"c": text})
    sp = _sparse(text.astype(str).astype(bytes), missing, tf.string)
    spec = {"c": tf.SparseTensorSpec([None, 1], tf.string)}
  got = _graph_ids(g, spec, {"c": sp})
  np.testing.assert_array_equal(got, expected)
  assert got[-3] == g.fallback_group and got[-1] == g.fallback_group
