"""The real grouping executor (Beam passes, artifact files) on small hand-written shards:
a-priori groups, determinism, categorical policies, read-only per-split counts and the bad
inputs of the issue, in process and under DirectRunner's multi_processing mode."""
import json
import os

import numpy as np
import pytest

from components.grouping import example_io, fitting, standalone, store
from components.grouping.fitting import GroupingError
from tests.grouping import helpers as h

KMEANS = dict(mode="kmeans", features=["lon", "lat"], k_values=[4], seed=1)


def _rows(n, seed=0):
  cols, _ = h.blobs(n, seed=seed)
  rows = h.rows_of(cols)
  rng = np.random.default_rng(seed)
  for i, r in enumerate(rows):
    r["zone"] = str(rng.choice(["RL", "RM", "FV"], p=[.6, .3, .1]))
    r["ms_class"] = int(rng.choice([20, 60, 190], p=[.6, .38, .02]))
  return rows


def _data(tmp_path, train, eval_rows, shards=2):
  root = str(tmp_path / "examples")
  h.write_split(root, "train", train, shards=shards)
  h.write_split(root, "eval", eval_rows)
  return root


def _run(tmp_path, root, name="out", splits=("train", "eval"), **kw):
  return standalone.run(root, list(splits), str(tmp_path / name), **kw)


def _ids(g, rows, shards=1):
  """fitting.assign on rows in the order write_split stores them."""
  order = [i for s in range(shards) for i in range(s, len(rows), shards)]
  cols = {}
  for f in g.features:
    if f in g.numeric_features:
      cols[f] = np.array([rows[i].get(f, np.nan) for i in order], dtype=float)
    else:
      cols[f] = np.array([str(rows[i].get(f, "")) for i in order], dtype=object)
  return fitting.assign(g, cols)


@pytest.mark.parametrize("column", ["zone", "ms_class"])
def test_apriori_string_or_integer_column_with_fallback(tmp_path, column):
  train = _rows(900)
  evals = _rows(200, seed=1)
  evals[0][column] = "UNSEEN" if column == "zone" else 999
  del evals[1][column]                                         # missing -> fallback
  uri = _run(tmp_path, _data(tmp_path, train, evals), mode="apriori", features=[column],
             k_values=[], min_count=30)
  g = store.load(uri)
  s = store.load_summary(uri)
  frequent = [str(v) for v in (["RL", "RM", "FV"] if column == "zone" else [20, 60])]
  assert g.vocabulary == frequent and g.fallback_group == len(frequent)
  assert s["vocabulary"] == frequent and s["fallback_group"] == len(frequent)
  ids = _ids(g, evals)
  assert ids[0] == g.fallback_group and ids[1] == g.fallback_group
  assert s["missing"]["eval"][column] == 1
  assert s["counts"]["eval"] == np.bincount(ids, minlength=g.num_groups).tolist()
  assert s["counts"]["train"] == np.bincount(_ids(g, train, 2), minlength=g.num_groups).tolist()
  if column == "ms_class":
    assert any("rare category" in w for w in s["warnings"])   # 190 is ~2% < min_count


def test_same_input_and_config_give_identical_artifacts(tmp_path):
  root = _data(tmp_path, _rows(2400), _rows(100, seed=1), shards=3)
  args = dict(KMEANS, k_values=range(2, 7), sample_size=700)   # a real sample of 2400
  a = _run(tmp_path, root, "a", **args)
  b = _run(tmp_path, root, "b", **args)
  ga, gb = store.load(a), store.load(b)
  assert ga.fit_rows == 700 and store.load_summary(a)["train_rows"] == 2400
  np.testing.assert_array_equal(ga.centroids, gb.centroids)
  assert json.load(open(os.path.join(a, "grouping.json"))) == json.load(
      open(os.path.join(b, "grouping.json")))
  assert ga.num_groups == 4


def test_categorical_feature_error_onehot_or_exclude(tmp_path):
  root = _data(tmp_path, _rows(600), _rows(100, seed=1))
  args = dict(KMEANS, features=["lon", "lat", "zone"])
  with pytest.raises(GroupingError, match=r"'zone' is not numeric \(train value 'RL'"):
    _run(tmp_path, root, "error", **args)
  uri = _run(tmp_path, root, "onehot", categorical="onehot", **args)
  assert store.load(uri).columns == ["lon", "lat", "zone=RL", "zone=RM", "zone=FV"]
  uri = _run(tmp_path, root, "exclude", categorical="exclude", **args)
  s = store.load_summary(uri)
  assert s["features"] == ["lon", "lat"] and s["excluded_features"] == ["zone"]
  assert any("excluded" in w for w in s["warnings"])


def test_empty_eval_split_gets_zero_counts_and_a_warning(tmp_path):
  uri = _run(tmp_path, _data(tmp_path, _rows(500), []), **KMEANS)
  s = store.load_summary(uri)
  assert s["rows"]["eval"] == 0 and s["counts"]["eval"] == [0, 0, 0, 0]
  assert "split 'eval' has no examples" in s["warnings"]
  assert s["rows"]["train"] == 500


def test_empty_train_split_is_an_error(tmp_path):
  with pytest.raises(GroupingError, match="train split has no examples"):
    _run(tmp_path, _data(tmp_path, [], _rows(50)), **KMEANS)


def test_grouping_feature_absent_from_train_is_an_error(tmp_path):
  with pytest.raises(GroupingError, match="'elevation' has no value in any of the 300 train"):
    _run(tmp_path, _data(tmp_path, _rows(300), _rows(50)),
         **dict(KMEANS, features=["lon", "elevation"]))


def test_non_numeric_value_in_another_split_names_split_file_and_value(tmp_path):
  evals = _rows(50, seed=1)
  evals[3]["lon"] = "n/a"
  evals = [dict(r, lon=str(r["lon"])) for r in evals]           # lon became a string column
  with pytest.raises(GroupingError, match=r"'lon' is not numeric in split 'eval', file .*\.gz"):
    _run(tmp_path, _data(tmp_path, _rows(300), evals), **KMEANS)


def test_fewer_distinct_points_than_k_is_an_error(tmp_path):
  train = [{"lon": float(i % 3), "lat": 1.0} for i in range(60)]
  with pytest.raises(GroupingError, match=r"k=4 but the train data has only 3 distinct"):
    _run(tmp_path, _data(tmp_path, train, train[:5]), **KMEANS)


def test_counts_cover_every_split_and_the_fit_uses_train_only(tmp_path, monkeypatch):
  """Three splits, small batches, a column that first appears after a whole batch and a one-hot
  column: counts per split equal fitting.assign on the raw rows; test never reaches the fit."""
  monkeypatch.setattr(example_io, "BATCH_SIZE", 64)
  train, evals, test = _rows(1500), _rows(300, seed=1), _rows(250, seed=2)
  for r in train[:700]:                       # 'lat' first appears after a whole batch
    del r["lat"]
  for r in test:                              # far away: would move a centroid if fitted on
    r["lon"] += 5.0
  root = _data(tmp_path, train, evals, shards=3)
  h.write_split(root, "test", test, shards=2)
  uri = _run(tmp_path, root, splits=("train", "eval", "test"), features=["lon", "lat", "zone"],
             mode="kmeans", k_values=[3], categorical="onehot", seed=2)
  g = store.load(uri)
  s = store.load_summary(uri)
  for split, rows, shards in (("train", train, 3), ("eval", evals, 1), ("test", test, 2)):
    assert s["counts"][split] == np.bincount(_ids(g, rows, shards),
                                             minlength=g.num_groups).tolist(), split
    assert s["rows"][split] == len(rows)
  assert s["missing"]["train"]["lat"] == 700 and s["train_rows"] == 1500
  train_lon = np.mean([r["lon"] for r in train])
  assert abs(g.impute[g.columns.index("lon")] - train_lon) < 1e-4     # the train mean only


def test_multi_processing_direct_runner_gives_the_same_artifact(tmp_path):
  """The executor's DoFns and combiners pickle and run in worker processes (issue #19)."""
  root = _data(tmp_path, _rows(1200), _rows(200, seed=1), shards=3)
  args = dict(KMEANS, k_values=range(2, 6), sample_size=500)
  a = _run(tmp_path, root, "in_memory", **args)
  b = _run(tmp_path, root, "multi", beam_pipeline_args=[
      "--direct_running_mode=multi_processing", "--direct_num_workers=2"], **args)
  assert json.load(open(os.path.join(a, "grouping.json"))) == json.load(
      open(os.path.join(b, "grouping.json")))
  sa, sb = store.load_summary(a), store.load_summary(b)
  assert sa["counts"] == sb["counts"] and sum(sb["counts"]["eval"]) == 200
