"""The NumPy TFRecord codec: reads what TensorFlow reads, writes what TensorFlow and Beam accept,
and fails on damaged files the way TensorFlow's reader does."""
import gzip
import io
import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.io.tfrecordio import _TFRecordUtil

from components.grouping import example_io, tfrecord


def _records(n, seed=0):
  rng = np.random.default_rng(seed)
  return [bytes(rng.integers(0, 256, int(k), dtype=np.uint8)) for k in rng.integers(0, 300, n)]


def _write_tf(path, records):
  with tf.io.TFRecordWriter(path, "GZIP" if path.endswith(".gz") else "") as w:
    for r in records:
      w.write(r)


def _read_tf(path):
  return [r.numpy() for r in tf.data.TFRecordDataset([path], example_io.compression_of(path))]


def _read_beam(path):
  """Beam's reader checks both CRCs of every record (as StatisticsGen's TFExampleRecord does)."""
  with open(path, "rb") as f:
    data = f.read()
  if path.endswith(".gz"):
    data = gzip.decompress(data)
  f, out = io.BytesIO(data), []
  while True:
    r = _TFRecordUtil.read_record(f)
    if r is None:
      return out
    out.append(r)


@pytest.mark.parametrize("name", ["shard.gz", "shard"])
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_read_matches_tensorflow(tmp_path, name, batch_size, monkeypatch):
  monkeypatch.setattr(tfrecord, "_READ_BYTES", 997)   # records straddle many read blocks
  path = str(tmp_path / name)
  records = _records(300) + [b""]
  _write_tf(path, records)
  batches = list(tfrecord.read(path, batch_size))
  assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
  assert [r for b in batches for r in b.tolist()] == _read_tf(path) == records
  first = batches[0]
  assert first.tensor().numpy().tolist() == first.tolist()


def test_batches_and_blocks_stay_within_their_byte_limits(tmp_path, monkeypatch):
  monkeypatch.setattr(tfrecord, "BATCH_BYTES", 2000)
  monkeypatch.setattr(tfrecord, "_BLOCK_BYTES", 1500)
  monkeypatch.setattr(tfrecord, "_READ_BYTES", 300)
  path = str(tmp_path / "zeros.gz")
  records = [bytes(k) for k in range(0, 3000, 7)] + [bytes(5000)]   # very compressible
  _write_tf(path, records)
  assert max(map(len, tfrecord._blocks(path))) <= 1500
  batches = list(tfrecord.read(path, batch_size=1000))
  assert [r for b in batches for r in b.tolist()] == records
  assert all(len(b.buf) <= 2000 + 16 + b.lengths.max() for b in batches)
  assert len(batches[-1]) == 1 and len(batches) > 10


def test_read_gzip_members_and_empty_files(tmp_path):
  a, b = str(tmp_path / "a.gz"), str(tmp_path / "b.gz")
  _write_tf(a, [b"one", b"two"])
  _write_tf(b, [b"three"])
  both = str(tmp_path / "both.gz")
  with open(both, "wb") as f:
    f.write(open(a, "rb").read() + open(b, "rb").read())
  assert [r for x in tfrecord.read(both) for r in x.tolist()] == [b"one", b"two", b"three"]
  empty, written_empty = str(tmp_path / "empty.gz"), str(tmp_path / "written_empty.gz")
  open(empty, "wb").close()
  _write_tf(written_empty, [])
  assert list(tfrecord.read(empty)) == [] == list(tfrecord.read(written_empty))


def test_damaged_files_raise_data_loss(tmp_path):
  raw = str(tmp_path / "raw")
  _write_tf(raw, [b"alpha", b"beta"])
  good = open(raw, "rb").read()

  def damaged(name, data, compress=False):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
      f.write(gzip.compress(data) if compress else data)
    return path

  cases = {
      "truncated record at 21": damaged("cut", good[:-3]),
      "corrupted record at 0": damaged("len", good[:9] + bytes([good[9] ^ 1]) + good[10:]),
      "bad data checksum": damaged("data", good[:13] + bytes([good[13] ^ 1]) + good[14:]),
      "bad length checksum": damaged("lenz.gz", good[:9] + bytes([good[9] ^ 1]) + good[10:],
                                     compress=True),
      "truncated gzip stream": damaged("cutz.gz", gzip.compress(good)[:-6]),
      "not a valid gzip stream": damaged("junk.gz", b"not gzip at all"),
  }
  for message, path in cases.items():
    with pytest.raises(tf.errors.DataLossError, match=message):
      list(tfrecord.read(path))


@pytest.mark.parametrize("num_groups", [5, 300])   # >127 groups: suffixes of two lengths
def test_frame_appended_is_read_back_by_tensorflow_and_beam(tmp_path, num_groups):
  path = str(tmp_path / "in.gz")
  records = _records(500)
  _write_tf(path, records)
  suffixes = example_io.annotation_suffixes(num_groups, "group_id")
  ids = np.random.default_rng(1).integers(0, num_groups, len(records))
  out = str(tmp_path / "out" / "out.gz")
  w = tfrecord.Writer(out, str(tmp_path / "tmp"))
  start = 0
  for b in tfrecord.read(path, 64):
    w.write_framed(tfrecord.frame_appended(b, ids[start:start + len(b)], suffixes))
    start += len(b)
  w.close()
  expected = [r + suffixes[g] for r, g in zip(records, ids.tolist())]
  assert _read_tf(out) == expected == _read_beam(out)
  assert os.listdir(tmp_path / "tmp") == []


def test_frame_appended_keeps_a_wrong_stored_checksum_wrong(tmp_path):
  """A record whose stored data CRC is wrong (not checked in .gz input, where gzip's own CRC
  guards the bytes) must not come out with a valid CRC."""
  raw = str(tmp_path / "raw")
  _write_tf(raw, [b"alpha", b"beta"])
  data = bytearray(open(raw, "rb").read())
  data[12 + 5] ^= 0xFF                       # first record's data CRC
  path = str(tmp_path / "bad.gz")
  with open(path, "wb") as f:
    f.write(gzip.compress(bytes(data)))
  (batch,) = list(tfrecord.read(path))
  framed = tfrecord.frame_appended(batch, np.array([0, 0]), [b"xyz"])
  with pytest.raises(tf.errors.DataLossError, match="corrupted record at 0"):
    _frames(tmp_path, framed)


def _frames(tmp_path, framed):
  path = str(tmp_path / "framed")
  with open(path, "wb") as f:
    f.write(framed)
  return list(tfrecord.read(path))


def test_frame_of_any_records_and_writer_abort(tmp_path):
  records = _records(50, seed=3) + [b""]
  out = str(tmp_path / "o" / "x.gz")
  w = tfrecord.Writer(out, str(tmp_path / "tmp"))
  w.write(records[:20])
  w.write([])
  w.write(records[20:])
  w.close()
  assert _read_tf(out) == records == _read_beam(out)
  w = tfrecord.Writer(str(tmp_path / "o" / "never.gz"), str(tmp_path / "tmp"))
  w.write(records)
  w.abort()
  assert os.listdir(tmp_path / "tmp") == [] and not os.path.exists(tmp_path / "o" / "never.gz")


def test_prefetch_keeps_order_reraises_and_stops_early():
  assert list(tfrecord.prefetch(iter(range(100)))) == list(range(100))

  def failing():
    yield 1
    raise ValueError("boom")

  with pytest.raises(ValueError, match="boom"):
    list(tfrecord.prefetch(failing()))
  before = threading.active_count()
  it = tfrecord.prefetch(iter(range(10_000)))
  assert next(it) == 0
  it.close()                                  # the consumer stops: the thread must end
  assert threading.active_count() == before
