"""The real grouping executor (Beam passes, artifact files) on small hand-written shards:
a-priori groups, determinism, categorical policies and the bad inputs of the issue."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.grouping import column_cache, example_io, fitting, standalone, store, tfrecord
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


def _run(tmp_path, root, name="out", **kw):
  return standalone.run(root, ["train", "eval"], str(tmp_path / name), **kw)


@pytest.mark.parametrize("column", ["zone", "ms_class"])
def test_apriori_string_or_integer_column_with_fallback(tmp_path, column):
  train = _rows(900)
  evals = _rows(200, seed=1)
  evals[0][column] = "UNSEEN" if column == "zone" else 999
  del evals[1][column]                                         # missing -> fallback
  uri, annotated = _run(tmp_path, _data(tmp_path, train, evals), mode="apriori",
                        features=[column], k_values=[], min_count=30)
  g = store.load(uri)
  s = store.load_summary(uri)
  frequent = [str(v) for v in (["RL", "RM", "FV"] if column == "zone" else [20, 60])]
  assert g.vocabulary == frequent and g.fallback_group == len(frequent)
  assert s["vocabulary"] == frequent and s["fallback_group"] == len(frequent)
  ids = [e.features.feature["group_id"].int64_list.value[0] for e in h.read_split(annotated,
                                                                                  "eval")]
  assert ids[0] == g.fallback_group and ids[1] == g.fallback_group
  assert s["missing"]["eval"][column] == 1
  values = np.array([str(r.get(column, "")) for r in evals], dtype=object)
  np.testing.assert_array_equal(ids[2:], fitting.assign(g, {column: values})[2:])
  if column == "ms_class":
    assert any("rare category" in w for w in s["warnings"])   # 190 is ~2% < min_count


def test_same_input_and_config_give_identical_artifacts(tmp_path):
  root = _data(tmp_path, _rows(2400), _rows(100, seed=1), shards=3)
  args = dict(KMEANS, k_values=range(2, 7), sample_size=700)   # a real sample of 2400
  a, _ = _run(tmp_path, root, "a", **args)
  b, _ = _run(tmp_path, root, "b", **args)
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
  uri, _ = _run(tmp_path, root, "onehot", categorical="onehot", **args)
  assert store.load(uri).columns == ["lon", "lat", "zone=RL", "zone=RM", "zone=FV"]
  uri, _ = _run(tmp_path, root, "exclude", categorical="exclude", **args)
  s = store.load_summary(uri)
  assert s["features"] == ["lon", "lat"] and s["excluded_features"] == ["zone"]
  assert any("excluded" in w for w in s["warnings"])


def test_empty_eval_split_is_written_empty_and_reported(tmp_path):
  uri, annotated = _run(tmp_path, _data(tmp_path, _rows(500), []), **KMEANS)
  s = store.load_summary(uri)
  assert s["rows"]["eval"] == 0 and s["counts"]["eval"] == [0, 0, 0, 0]
  assert "split 'eval' has no examples (written empty)" in s["warnings"]
  assert h.read_split(annotated, "eval") == []
  assert len(h.read_split(annotated, "train")) == 500


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


def test_every_row_is_its_input_record_plus_the_group_id(tmp_path, monkeypatch):
  """Train rows are annotated from the scan's column cache (numeric features) plus a parse of
  the rest (one-hot 'zone'); eval rows from a parse. Both must equal the input record followed
  by the group id of fitting.assign, in input order, and the cache must be gone afterwards."""
  monkeypatch.setattr(tfrecord, "BATCH_SIZE", 64)
  cached = []
  take = column_cache.Reader.take
  monkeypatch.setattr(column_cache.Reader, "take",
                      lambda self, n: cached.append(tuple(self.features)) or take(self, n))
  train, evals = _rows(1500), _rows(300, seed=1)
  for r in train[:700]:                       # 'lat' first appears after a whole batch
    del r["lat"]
  root = _data(tmp_path, train, evals, shards=3)
  uri, annotated = _run(tmp_path, root, features=["lon", "lat", "zone"], mode="kmeans",
                        k_values=[3], categorical="onehot", seed=2)
  g = store.load(uri)
  suffixes = example_io.annotation_suffixes(g.num_groups, "group_id")
  for split, rows, shards in (("train", train, 3), ("eval", evals, 1)):
    order = [i for s in range(shards) for i in range(s, len(rows), shards)]   # write_split
    cols = {f: np.array([rows[i].get(f, np.nan) for i in order], dtype=float)
            for f in ("lon", "lat")}
    cols["zone"] = np.array([rows[i]["zone"] for i in order], dtype=object)
    ids = fitting.assign(g, cols)
    inputs = [r for p in sorted(glob.glob(os.path.join(root, f"Split-{split}", "*")))
              for r in tf_records(p)]
    outputs = [r for p in sorted(glob.glob(os.path.join(annotated, f"Split-{split}", "*")))
               for r in tf_records(p)]
    assert outputs == [r + suffixes[i] for r, i in zip(inputs, ids.tolist())]
  assert store.load_summary(uri)["missing"]["train"]["lat"] == 700
  assert set(cached) == {("lon", "lat")} and len(cached) == 3 * -(-500 // 64)
  assert not glob.glob(str(tmp_path / "out" / "tmp" / "**" / "train_columns"), recursive=True)


def tf_records(path):
  return [r.numpy() for r in tf.data.TFRecordDataset([path], "GZIP")]
