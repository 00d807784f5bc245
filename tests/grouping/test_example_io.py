"""Batch parsing of grouping columns and the byte-append annotation of tf.Examples."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components.grouping import example_io
from components.grouping.fitting import GroupingError
from tests.grouping import helpers as h

NUM, CAT = example_io.NUMERIC, example_io.CATEGORICAL


def _records(rows):
  return np.array([h.to_example(r) for r in rows], dtype=object)


def test_parse_columns_types_and_missing_values():
  recs = _records([{"x": 1.5, "n": 3, "s": "a"}, {"n": 4}, {"x": -2.0, "s": "ü"}])
  kinds = example_io.update_kinds(recs, ["x", "n", "s", "absent"], {}, "test")
  assert kinds == {"x": "float", "n": "int", "s": "bytes", "absent": None}
  cols = example_io.parse_columns(recs, kinds, {"x": NUM, "n": NUM, "s": CAT, "absent": NUM},
                                  "test")
  np.testing.assert_array_equal(cols["x"], [1.5, np.nan, -2.0])
  np.testing.assert_array_equal(cols["n"], [3.0, 4.0, np.nan])
  assert cols["s"].tolist() == ["a", "", "ü"]
  assert np.isnan(cols["absent"]).all()
  ints = example_io.parse_columns(recs, kinds, {"n": CAT}, "test")["n"]
  assert ints.tolist() == ["3", "4", ""]


def test_parse_errors_name_the_feature_value_and_place():
  recs = _records([{"x": "north"}, {"x": "south"}])
  kinds = example_io.update_kinds(recs, ["x"], {}, "split 'eval', file f.gz")
  with pytest.raises(GroupingError, match=r"'x' is not numeric in split 'eval', file f.gz "
                                          r"\(value 'north'\)"):
    example_io.parse_columns(recs, kinds, {"x": NUM}, "split 'eval', file f.gz")
  floats = _records([{"c": 1.0}])
  with pytest.raises(GroupingError, match="'c' holds floating-point values"):
    example_io.parse_columns(floats, {"c": "float"}, {"c": CAT}, "here")
  ex = tf.train.Example()
  ex.features.feature["x"].float_list.value.extend([1.0, 2.0])
  with pytest.raises(GroupingError, match="'x' has 2 values in one example"):
    example_io.parse_columns(np.array([ex.SerializeToString()], dtype=object), {"x": "float"},
                             {"x": NUM}, "here")
  mixed = _records([{"x": 1.0}, {"x": "a"}])
  with pytest.raises(GroupingError, match="'x'"):
    example_io.parse_columns(mixed, {"x": "float"}, {"x": NUM}, "here")


@pytest.mark.parametrize("existing", [None, 7])
def test_appended_group_id_parses_like_a_rewritten_example(existing):
  row = {"x": 1.5, "s": "a"}
  if existing is not None:
    row["group_id"] = existing
  rec = h.to_example(row)
  suffixes = example_io.annotation_suffixes(5, "group_id")
  out = example_io.annotate(np.array([rec, rec], dtype=object), np.array([3, 0]), suffixes,
                            "group_id")
  if existing is None:   # the fast path appends bytes
    assert out[0].startswith(rec) and out[0] != rec
  assert tf.train.Example.FromString(out[0]) == tf.train.Example.FromString(
      example_io.with_group_id(rec, 3, "group_id"))
  parsed = tf.io.parse_example(tf.constant(out), {
      "group_id": tf.io.FixedLenFeature([], tf.int64), "x": tf.io.FixedLenFeature([], tf.float32),
      "s": tf.io.FixedLenFeature([], tf.string)})
  assert parsed["group_id"].numpy().tolist() == [3, 0]
  assert parsed["x"].numpy().tolist() == [1.5, 1.5] and parsed["s"].numpy().tolist() == [b"a"] * 2


def test_shard_writer_moves_a_complete_file_into_place(tmp_path):
  final = str(tmp_path / "out" / "Split-train" / "data-00000-of-00001.gz")
  w = example_io.ShardWriter(final, str(tmp_path / "tmp"))
  w.write([b"one", b"two"])
  assert not os.path.exists(final)          # nothing where readers look until close
  w.close()
  assert [r.numpy() for r in tf.data.TFRecordDataset([final], "GZIP")] == [b"one", b"two"]
  assert os.listdir(tmp_path / "tmp") == []
  batches = list(example_io.read_batches(final, batch_size=1))
  assert [b.tolist() for b in batches] == [[b"one"], [b"two"]]


def test_streamed_parsing_matches_in_process_parsing(tmp_path):
  """read_parsed (a prefetch thread) gives the same columns as parse_batches, including a feature
  that first appears after the first batch and missing values."""
  rows = [{"x": float(i), "n": i, "s": f"c{i % 3}"} for i in range(50)]
  for r in rows[::7]:
    del r["x"]
  for r in rows[30:]:
    r["late"] = "v"
  path = h.write_split(str(tmp_path), "train", rows)[0]
  usage = lambda f, kind: CAT if f in ("s", "late") else NUM  # noqa: E731
  feats = ["x", "n", "s", "late"]
  streamed = list(example_io.read_parsed(path, feats, usage, "here", batch_size=16))
  batches = list(example_io.read_batches(path, batch_size=16))
  in_process = list(example_io.parse_batches(batches, feats, usage, "here"))
  assert len(streamed) == len(in_process) == 4
  for a, b in zip(streamed, in_process):
    assert a.records.tolist() == b.records.tolist() and a.kinds == b.kinds
    for f in feats:
      np.testing.assert_array_equal(a.columns[f], b.columns[f])
  assert streamed[-1].columns["late"].tolist()[-1] == "v"


def test_type_change_inside_a_streamed_shard_is_an_error(tmp_path):
  rows = [{"x": 1.0}] * 20 + [{"x": "oops"}] * 5
  path = h.write_split(str(tmp_path), "eval", rows)[0]
  with pytest.raises(GroupingError, match="changes type within split 'eval'"):
    list(example_io.read_parsed(path, ["x"], lambda f, k: NUM, "split 'eval'", batch_size=8))
