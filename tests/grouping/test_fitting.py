"""Fitting and assignment (NumPy/scikit-learn): determinism, choosing k, a-priori groups and
every bad input the issue lists, each with its error or documented behaviour."""
import json

import numpy as np
import pytest

from components.grouping import fitting, kselect, store
from components.grouping.fitting import GroupingError
from tests.grouping import helpers as h


def _random_blobs(k: int, n: int, seed: int, dim: int = 2):
  """k well-separated blobs (centres >= 8 sd apart) of equal expected size."""
  rng = np.random.default_rng(seed)
  centers = []
  while len(centers) < k:
    c = rng.uniform(-20, 20, dim)
    if all(np.linalg.norm(c - o) > 8 for o in centers):
      centers.append(c)
  truth = rng.integers(0, k, n)
  return np.array(centers)[truth] + rng.normal(size=(n, dim)), truth


def test_same_data_and_config_give_identical_centroids():
  x, _ = _random_blobs(4, 3000, seed=1)
  a = fitting.fit_kmeans(x, ["a", "b"], range(2, 7), seed=7, min_group_share=0.02)
  b = fitting.fit_kmeans(x.copy(), ["a", "b"], range(2, 7), seed=7, min_group_share=0.02)
  assert a.num_groups == b.num_groups
  for key in ("centroids", "mean", "scale", "impute"):
    np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
  assert [vars(c) for c in a.selection] == [vars(c) for c in b.selection]


@pytest.mark.parametrize("true_k,seed", [(3, 0), (5, 1), (6, 2)])
def test_auto_k_picks_the_true_k_on_blobs(true_k, seed):
  x, truth = _random_blobs(true_k, 4000, seed=seed)
  g = fitting.fit_kmeans(x, ["a", "b"], range(2, 9), seed=0, min_group_share=0.02)
  assert g.num_groups == true_k, [(c.k, c.silhouette) for c in g.selection]
  ids = fitting.assign(g, {"a": x[:, 0], "b": x[:, 1]})
  # each found group is one true blob (up to relabelling)
  for i in range(true_k):
    assert len(np.unique(truth[ids == i])) == 1


def test_min_group_share_rules_out_k_with_a_tiny_group():
  rng = np.random.default_rng(3)
  big = np.array([[0.0, 0.0], [12.0, 0.0], [0.0, 12.0]])
  x = np.vstack([big[rng.integers(0, 3, 3000)] + rng.normal(size=(3000, 2)),
                 np.array([12.0, 12.0]) + rng.normal(size=(30, 2))])   # a 1% blob
  free = fitting.fit_kmeans(x, ["a", "b"], range(2, 7), min_group_share=0.0)
  assert free.num_groups == 4                       # the tiny far blob is its own group
  g = fitting.fit_kmeans(x, ["a", "b"], range(2, 7), min_group_share=0.05)
  assert g.num_groups == 3
  ids = fitting.assign(g, {"a": x[:, 0], "b": x[:, 1]})
  assert np.bincount(ids).min() / len(ids) >= 0.05
  assert not next(c for c in g.selection if c.k == 4).feasible


def _c(k, sil, share=0.5, feasible=True):
  return kselect.KCandidate(k=k, inertia=100.0 / k, silhouette=sil, min_share=share,
                            feasible=feasible)


def test_silhouette_ties_go_to_the_smaller_k():
  chosen, note = kselect.choose_k([_c(3, 0.7000), _c(4, 0.7005), _c(5, 0.5)], 0.02, 1e-3)
  assert chosen.k == 3 and note is None
  chosen, _ = kselect.choose_k([_c(3, 0.70), _c(4, 0.75)], 0.02, 1e-3)
  assert chosen.k == 4


def test_no_feasible_k_takes_the_largest_smallest_group_and_says_so():
  curve = [_c(2, 0.8, 0.01, False), _c(3, 0.6, 0.015, False), _c(4, 0.5, 0.015, False)]
  chosen, note = kselect.choose_k(curve, 0.05)
  assert chosen.k == 3
  assert "no k in [2, 3, 4]" in note and "k=3" in note


def test_fixed_k_below_min_share_is_kept_with_a_note():
  x, _ = _random_blobs(3, 1000, seed=4)
  g = fitting.fit_kmeans(x, ["a", "b"], [12], min_group_share=0.2)
  assert g.num_groups == 12
  assert any("fixed k=12" in n for n in g.notes)


def test_missing_values_are_imputed_with_the_train_mean():
  x, _ = _random_blobs(3, 1000, seed=5)
  x[:50, 0] = np.nan
  g = fitting.fit_kmeans(x, ["a", "b"], [3])
  assert g.impute[0] == pytest.approx(np.nanmean(x[:, 0]))
  probe_b = x[60:70, 1]
  with_nan = fitting.assign(g, {"a": np.full(10, np.nan), "b": probe_b})
  with_mean = fitting.assign(g, {"a": np.full(10, np.nanmean(x[:, 0])), "b": probe_b})
  np.testing.assert_array_equal(with_nan, with_mean)


def test_non_numeric_column_is_an_error_naming_column_and_value():
  cols = {"a": np.array(["1.5", "north", "2"], dtype=object), "b": np.ones(3)}
  with pytest.raises(GroupingError, match=r"'a' is not numeric \(value 'north'\)"):
    fitting.fit_kmeans(cols, ["a", "b"], [2])


def test_fewer_distinct_points_than_k():
  x = np.repeat([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], 10, axis=0)
  with pytest.raises(GroupingError, match=r"k=4 .* only 3 distinct point"):
    fitting.fit_kmeans(x, ["a", "b"], [4])
  g = fitting.fit_kmeans(x, ["a", "b"], range(2, 6))          # a range: impossible k skipped
  assert g.num_groups == 3 and [c.k for c in g.selection] == [2, 3]
  assert any("[4, 5] skipped" in n for n in g.notes)
  with pytest.raises(GroupingError, match="only 1 distinct point"):
    fitting.fit_kmeans(np.zeros((20, 2)), ["a", "b"], range(2, 5))


def test_empty_train_and_all_missing_column_are_errors():
  with pytest.raises(GroupingError, match="empty"):
    fitting.fit_kmeans(np.zeros((0, 2)), ["a", "b"], [2])
  x = np.column_stack([np.full(10, np.nan), np.arange(10.0)])
  with pytest.raises(GroupingError, match="'a' has no value"):
    fitting.fit_kmeans(x, ["a", "b"], [2])
  with pytest.raises(GroupingError, match="empty"):
    fitting.fit_apriori(np.array([], dtype=object), "c")


def test_single_group_is_allowed_and_documented():
  x, _ = _random_blobs(2, 500, seed=6)
  g = fitting.fit_kmeans(x, ["a", "b"], [1])
  assert g.num_groups == 1 and g.silhouette is None
  assert set(fitting.assign(g, {"a": x[:, 0], "b": x[:, 1]})) == {0}
  assert any("single group" in n for n in g.notes)
  json.dumps(store.to_json_dict(g), allow_nan=False)   # no NaN leaks into the artifact


def test_apriori_vocabulary_rare_unseen_and_missing_go_to_the_fallback():
  values = np.array(["b"] * 30 + ["a"] * 30 + ["c"] * 50 + ["rare"] * 3 + [""] * 4, dtype=object)
  g = fitting.fit_apriori(values, "hood", min_count=10)
  assert g.vocabulary == ["c", "a", "b"]          # most frequent first, ties by value
  assert g.fallback_group == 3 and g.num_groups == 4
  ids = fitting.assign(g, {"hood": np.array(["a", "b", "c", "rare", "never-seen", ""],
                                            dtype=object)})
  np.testing.assert_array_equal(ids, [1, 2, 0, 3, 3, 3])
  assert any("rare category" in n for n in g.notes) and any("4 train rows" in n for n in g.notes)


def test_apriori_on_integer_codes_and_refusing_floats():
  g = fitting.fit_apriori(np.array([20, 20, 20, 60, 60, 190]), "ms_class", min_count=2)
  assert g.vocabulary == ["20", "60"]
  np.testing.assert_array_equal(fitting.assign(g, {"ms_class": np.array([60, 20, 190, 75])}),
                                [1, 0, 2, 2])
  with pytest.raises(GroupingError, match="'ms_class' holds floating-point"):
    fitting.fit_apriori(np.array([20.0, 60.0]), "ms_class")


def test_apriori_with_no_frequent_category_is_an_error():
  with pytest.raises(GroupingError, match="no category reaches grouping.min_count=5"):
    fitting.fit_apriori(np.array(["a", "b", "c"], dtype=object), "hood", min_count=5)


def test_onehot_categorical_feature_in_kmeans():
  cols, _ = h.blobs(600, seed=2)
  cols["zone"] = np.where(cols["lon"] > -93.64, "east", "west").astype(object)
  g = fitting.fit_kmeans(cols, ["lon", "lat"], [4], onehot={"zone": ["east", "west"]})
  assert g.columns == ["lon", "lat", "zone=east", "zone=west"]
  assert g.mean[2:].tolist() == [0, 0] and g.scale[2:].tolist() == [1, 1]
  probe = {"lon": cols["lon"][:5], "lat": cols["lat"][:5],
           "zone": np.array(["unseen", "", "east", "west", "east"], dtype=object)}
  # unseen and missing categories encode as all-zero indicators, seen ones as one-hot;
  # the ids are the nearest centroid of exactly that encoding
  onehot = np.array([[0, 0], [0, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float64)
  np.testing.assert_array_equal(fitting.encode(g, probe)[:, 2:], onehot)
  num = (np.stack([probe["lon"], probe["lat"]], 1) - g.mean[:2]) / g.scale[:2]
  z = np.concatenate([num, onehot], axis=1)
  expected = np.argmin(((z[:, None, :] - g.centroids[None]) ** 2).sum(-1), axis=1)
  np.testing.assert_array_equal(fitting.assign(g, probe), expected)
  # the indicator columns matter: flipping a row's zone moves it when the centroids differ there
  assert not np.allclose(g.centroids[:, 2:], g.centroids[:1, 2:])


def test_json_alone_recreates_the_assignment(tmp_path):
  """grouping.json + its recipe, read with plain json/numpy, reproduces fitting.assign."""
  x, _ = _random_blobs(5, 2000, seed=8)
  x[::17, 1] = np.nan
  g = fitting.fit_kmeans(x, ["a", "b"], range(3, 7), seed=2)
  store.save(g, str(tmp_path))
  d = json.loads((tmp_path / store.GROUPING_FILE).read_text())
  assert "argmin" in d["recipe"]
  xi = np.where(np.isnan(x), np.array(d["impute"]), x)
  z = (xi - np.array(d["mean"])) / np.array(d["scale"])
  ids = np.argmin(((z[:, None, :] - np.array(d["centroids"])[None]) ** 2).sum(-1), axis=1)
  np.testing.assert_array_equal(ids, fitting.assign(g, {"a": x[:, 0], "b": x[:, 1]}))
  np.testing.assert_array_equal(np.load(tmp_path / "centroids.npy"), g.centroids)
