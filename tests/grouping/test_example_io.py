"""The grouping's reader: tf.data + tf.io.parse_example of the grouping columns only (tfx_bsl for
kinds and type changes), one value per row, and errors that name the feature, the value and the
place."""
import numpy as np
import pytest
import tensorflow as tf

from components.grouping import example_io
from components.grouping.fitting import GroupingError
from tests.grouping import helpers as h

NUM, CAT = example_io.NUMERIC, example_io.CATEGORICAL


def _shard(tmp_path, rows, name="s"):
  return h.write_split(str(tmp_path / name), "train", rows)[0]


def test_parse_spec_holds_only_the_grouping_columns_with_a_kind():
  spec = example_io.parse_spec({"lon": "float", "zone": "bytes", "gone": None})
  assert sorted(spec) == ["lon", "zone"]
  assert spec["lon"].dtype == tf.float32 and spec["zone"].dtype == tf.string


def test_columns_types_and_missing_values(tmp_path):
  rows = [{"lon": 1.5, "zone": "RL", "ms": 20, "other": "x"}, {"zone": "RM", "ms": 60},
          {"lon": -2.0, "other": "y"}]
  path = _shard(tmp_path, rows)
  kinds = example_io.probe_kinds([path], ["lon", "zone", "ms"], "split 'train'")
  assert kinds == {"lon": "float", "zone": "bytes", "ms": "int"}
  usage = {"lon": NUM, "zone": CAT, "ms": CAT}
  (b,) = list(example_io.read_columns(path, kinds, lambda f, k: usage[f], "here"))
  assert len(b) == 3 and set(b.columns) == {"lon", "zone", "ms"}     # 'other' is not read
  np.testing.assert_array_equal(b.columns["lon"], [1.5, np.nan, -2.0])
  assert b.columns["zone"].tolist() == ["RL", "RM", ""]
  assert b.columns["ms"].tolist() == ["20", "60", ""]


def test_batches_keep_file_order_and_a_column_absent_from_a_batch_is_missing(tmp_path):
  rows = [{"x": float(i)} if i >= 10 else {"y": 1} for i in range(25)]
  path = _shard(tmp_path, rows)
  kinds = example_io.probe_kinds([path], ["x"], "w")
  batches = list(example_io.read_columns(path, kinds, lambda f, k: NUM, "w", batch_size=10))
  assert [len(b) for b in batches] == [10, 10, 5]
  assert batches[0].kinds == {"x": None} and batches[1].kinds == {"x": "float"}
  x = np.concatenate([b.columns["x"] for b in batches])
  np.testing.assert_array_equal(x[10:], np.arange(10.0, 25.0))
  assert np.isnan(x[:10]).all()


def test_int_in_one_shard_and_float_in_another_read_as_numbers(tmp_path):
  a = _shard(tmp_path, [{"x": 1.5}], "a")
  b = _shard(tmp_path, [{"x": 3}, {"x": 4}], "b")
  kinds = example_io.probe_kinds([a], ["x"], "w")
  (batch,) = list(example_io.read_columns(b, kinds, lambda f, k: NUM, "w"))
  np.testing.assert_array_equal(batch.columns["x"], [3.0, 4.0])
  assert batch.kinds == {"x": "int"}


@pytest.mark.parametrize("rows,usage,kinds,match", [
    ([{"x": "n/a"}], NUM, {"x": "float"},
     r"'x' is not numeric in split 'eval', file f \(value 'n/a'\)"),
    ([{"x": 2.5}], CAT, {"x": "bytes"},
     r"column 'x' holds floating-point values in split 'eval', file f \(e.g. 2.5\)"),
    ([{"x": 1.0}, {"x": [1.0, 2.0]}], NUM, {"x": "float"},
     r"'x' has 2 values in one example \(record 1 of a batch of split 'eval', file f\)"),
])
def test_errors_name_the_feature_value_and_place(tmp_path, rows, usage, kinds, match):
  path = str(tmp_path / "f.gz")
  with tf.io.TFRecordWriter(path, "GZIP") as w:
    for r in rows:
      if isinstance(r["x"], list):
        ex = tf.train.Example()
        ex.features.feature["x"].float_list.value.extend(r["x"])
        w.write(ex.SerializeToString())
      else:
        w.write(h.to_example(r))
  with pytest.raises(GroupingError, match=match):
    list(example_io.read_columns(path, kinds, lambda f, k: usage, "split 'eval', file f"))


def test_uncompressed_shards_are_read_too(tmp_path):
  path = str(tmp_path / "plain.tfrecord")
  with tf.io.TFRecordWriter(path) as w:
    w.write(h.to_example({"x": 7.0}))
  assert example_io.compression_of(path) == ""
  (b,) = list(example_io.read_columns(path, {"x": "float"}, lambda f, k: NUM, "w"))
  assert b.columns["x"].tolist() == [7.0]
