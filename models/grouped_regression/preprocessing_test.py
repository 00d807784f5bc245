"""preprocessing_fn through real tf.Transform (tft_beam) on a few rows, both grouping modes."""
import functools
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform.beam as tft_beam  # noqa: E402
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils  # noqa: E402

from components.grouping import fitting, store  # noqa: E402
from models.grouped_regression import features as fk  # noqa: E402
from models.grouped_regression import piecewise  # noqa: E402
from models.grouped_regression.preprocessing import preprocessing_fn  # noqa: E402

NUMERIC = ["area", "lon", "lat"]
CATEGORICAL = ["hood"]


def _rows(n=60, seed=0):
  rng = np.random.default_rng(seed)
  hoods = np.array(["north", "south", "east"])[rng.integers(0, 3, n)]
  return [{"area": float(rng.normal(1500, 300)), "lon": float(rng.normal(-93.6, 0.03)),
           "lat": float(rng.normal(42.0, 0.02)), "hood": str(h), "y": float(rng.normal(12, .4))}
          for h in hoods]


def _transform(rows, grouping, tmp_path, numeric_bins=0, optional=()):
  uri = str(tmp_path / "grouping")
  store.save(grouping, uri)
  spec = {f: tf.io.FixedLenFeature([], tf.float32) for f in NUMERIC + ["y"]}
  spec.update({f: tf.io.VarLenFeature(tf.float32) for f in optional})
  spec["hood"] = tf.io.FixedLenFeature([], tf.string)
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
  cfg = dict(numeric_features=NUMERIC, categorical_features=CATEGORICAL, label="y",
             grouping_uri=uri, numeric_bins=numeric_bins)
  with tft_beam.Context(temp_dir=str(tmp_path / "tft"), force_tf_compat_v1=False):
    (out, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
        functools.partial(preprocessing_fn, custom_config=cfg), output_record_batches=False))
  return out


def _columns(rows, names):
  return {n: np.array([r[n] for r in rows]) for n in names}


def test_kmeans_group_ids_scaling_and_vocab(tmp_path):
  rows = _rows()
  cols = _columns(rows, ["lon", "lat"])
  g = fitting.fit_kmeans(fitting.as_float_matrix(cols, ["lon", "lat"]), ["lon", "lat"], [3],
                         seed=1)
  out = _transform(rows, g, tmp_path)
  ids = np.array([r[fk.GROUP_KEY] for r in out])
  np.testing.assert_array_equal(ids, fitting.assign(g, cols))
  z = np.array([r[fk.numeric_key("area")] for r in out])
  assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-3
  idx = np.array([r[fk.categorical_key("hood")] for r in out])
  assert set(idx) == {0, 1, 2}            # three categories, no OOV in the analysed data
  np.testing.assert_allclose([r[fk.LABEL_KEY] for r in out], [r["y"] for r in rows], rtol=1e-6)


def test_apriori_group_ids_with_fallback(tmp_path):
  rows = _rows()
  counts = {h: sum(r["hood"] == h for r in rows) for h in ("north", "south", "east")}
  rare = min(counts, key=counts.get)
  g = fitting.fit_apriori(np.array([r["hood"] for r in rows]), "hood",
                          min_count=counts[rare] + 1)
  assert rare not in g.vocabulary
  out = _transform(rows, g, tmp_path)
  ids = np.array([r[fk.GROUP_KEY] for r in out])
  np.testing.assert_array_equal(ids, fitting.assign(g, _columns(rows, ["hood"])))
  assert all(i == g.fallback_group for i, r in zip(ids, rows) if r["hood"] == rare)


def test_z_scores_match_float64_numpy_even_on_narrow_columns(tmp_path):
  """One elementwise analyzer z-scores every numeric column, accumulated in float64: lat/lon
  (spread ~0.02 around 42 and -93.6) come out as NumPy's float64 z-scores, not float32's."""
  rows = _rows(n=400)
  cols = _columns(rows, ["lon", "lat"])
  g = fitting.fit_kmeans(fitting.as_float_matrix(cols, ["lon", "lat"]), ["lon", "lat"], [2])
  out = _transform(rows, g, tmp_path)
  for name in NUMERIC:
    x = np.array([r[name] for r in rows], np.float32).astype(np.float64)
    got = np.array([r[fk.numeric_key(name)] for r in out])
    np.testing.assert_allclose(got, (x - x.mean()) / x.std(), atol=2e-6, err_msg=name)


def test_an_optional_numeric_missing_value_is_zero_after_imputation(tmp_path):
  """A missing value of an optional (VarLen) numeric takes the train mean before scaling, so its
  z-score is 0; the present values are z-scored over the imputed column."""
  rows = _rows(n=100)
  gone = {3, 10, 57}
  for i, r in enumerate(rows):
    r["area"] = [] if i in gone else [r["area"]]
  cols = _columns(rows, ["lon", "lat"])
  g = fitting.fit_kmeans(fitting.as_float_matrix(cols, ["lon", "lat"]), ["lon", "lat"], [2])
  out = _transform(rows, g, tmp_path, optional=("area",))
  present = np.array([r["area"][0] for r in rows if r["area"]], np.float32).astype(np.float64)
  imputed = np.array([r["area"][0] if r["area"] else present.mean() for r in rows])
  want = (imputed - imputed.mean()) / imputed.std()
  got = np.array([r[fk.numeric_key("area")] for r in out])
  assert all(got[i] == 0.0 for i in gone)
  np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("missing", [float("nan")])
def test_missing_grouping_value_is_imputed_like_numpy(tmp_path, missing):
  rows = _rows()
  cols = _columns(rows, ["lon", "lat"])
  g = fitting.fit_kmeans(fitting.as_float_matrix(cols, ["lon", "lat"]), ["lon", "lat"], [2])
  rows[0]["lon"] = missing
  out = _transform(rows, g, tmp_path)
  cols = _columns(rows, ["lon", "lat"])
  assert out[0][fk.GROUP_KEY] == fitting.assign(g, cols)[0]


def test_piecewise_encoding_from_tft_quantiles(tmp_path):
  """numeric_bins: every numeric gets [bins] ramps over train quantile bins, matching the NumPy
  twin (exact quantiles) up to tft.quantiles' rank error, and no encoding without it."""
  rows = _rows(n=400)
  cols = _columns(rows, ["lon", "lat"])
  g = fitting.fit_kmeans(fitting.as_float_matrix(cols, ["lon", "lat"]), ["lon", "lat"], [2])
  out = _transform(rows, g, tmp_path, numeric_bins=8)
  for name in NUMERIC:   # one analyzer covers every column: each gets its own edges
    x = np.array([r[name] for r in rows])
    ple = np.stack([r[fk.piecewise_key(name)] for r in out])
    assert ple.shape == (400, 8) and ple.min() >= 0 and ple.max() <= 1
    # ramps fill left to right: a row is 1 in every bin below its own, 0 in every bin above
    assert np.all(np.diff(ple, axis=1) <= 1e-6)
    # each bin holds ~1/8 of the rows (its ramp strictly between 0 and 1)
    inside = ((ple > 0) & (ple < 1)).sum(axis=0)
    assert np.all(np.abs(inside - 50) <= 12), (name, inside)
    expected = piecewise.encode_numpy(x, piecewise.edges_numpy(x, 8))
    assert np.abs(ple - expected).mean() < 0.02, name
  assert fk.piecewise_key("area") not in _transform(rows, g, tmp_path / "off")[0]
