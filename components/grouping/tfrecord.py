"""TFRecord shards read and written a batch at a time, with NumPy doing the per-record work.

Through tf.data and tf.io.TFRecordWriter every record costs Python calls (a writer call alone
is ~2 us here); at a million records that, more than gzip, was the grouping component's time.
Here a shard is gunzipped in blocks (zlib, outside the GIL) and cut into RecordBatches: one
bytes buffer holding whole framed records plus NumPy arrays of their offsets, lengths and
checksums. The only per-record Python left is following the length fields.

TFRecord framing, per record: uint64 length (little endian), masked CRC-32C of those 8 bytes,
the data, masked CRC-32C of the data. Reading checks every length CRC and, in uncompressed
files, every data CRC (see read); a bad one raises tf.errors.DataLossError naming the file and
offset, as TensorFlow's reader does.

Writing a record with bytes appended (the group id, see example_io) needs no CRC pass over the
data: CRC-32C is affine in the running CRC, so crc(data + suffix) = A_n(crc(data)) ^ crc_0(suffix)
where A_n, for n = len(suffix), is a fixed 32x32 bit matrix applied with four 256-entry tables;
the header CRC of an 8-byte length is a table lookup per byte. All of it is vectorised over a
batch, then records and suffixes are spliced with one bytes.join and compressed (gzip, zlib
level GZIP_LEVEL) in a writer thread. Gzip is chosen by the `.gz` extension, as TFX readers do.
"""
from __future__ import annotations

import bisect
import concurrent.futures
import dataclasses
import functools
import os
import queue
import struct
import threading
import zlib
from typing import Iterable, Iterator, List, Optional, Sequence

import google_crc32c
import numpy as np
import tensorflow as tf

GZIP_LEVEL = 1            # written shards: ~1/3 of zlib's default CPU for ~20% larger files
BATCH_SIZE = 16384        # records per RecordBatch, at most
BATCH_BYTES = 8 << 20     # bytes per RecordBatch, at most (unless one record is larger)
_READ_BYTES = 1 << 20     # compressed bytes read per step
_BLOCK_BYTES = 4 << 20    # decompressed bytes per step, at most
_MEM_LEVEL = 9            # as TensorFlow's gzip writer
_MASK_DELTA = np.uint32(0xA282EAD8)
_U32 = np.uint32
_HEADER = 12              # length (8) + its masked CRC (4)
_FOOTER = 4               # masked CRC of the data
_FRAMING = _HEADER + _FOOTER


def is_gzip(path: str) -> bool:
  return path.endswith(".gz")


# -- CRC-32C, vectorised ------------------------------------------------------------------------
def _mask(crc: np.ndarray) -> np.ndarray:
  crc = crc.astype(_U32)
  return ((crc >> _U32(15)) | (crc << _U32(17))) + _MASK_DELTA


def _unmask(masked: np.ndarray) -> np.ndarray:
  rot = masked.astype(_U32) - _MASK_DELTA
  return (rot >> _U32(17)) | (rot << _U32(15))


@functools.lru_cache(maxsize=None)
def _length_tables():
  """crc32c(8-byte x) = c0 ^ XOR_k table[k][byte k of x] (CRC-32C is affine in its input)."""
  c0 = google_crc32c.value(bytes(8))
  tables = np.zeros((8, 256), _U32)
  for k in range(8):
    for b in range(256):
      x = bytearray(8)
      x[k] = b
      tables[k, b] = google_crc32c.value(bytes(x)) ^ c0
  return _U32(c0), tables


def _masked_length_crcs(lengths: np.ndarray) -> np.ndarray:
  c0, tables = _length_tables()
  b = np.ascontiguousarray(lengths, dtype="<u8").view(np.uint8).reshape(-1, 8)
  crc = np.full(len(lengths), c0, _U32)
  for k in range(8):
    crc ^= tables[k][b[:, k]]
  return _mask(crc)


@functools.lru_cache(maxsize=None)
def _extend_tables(n: int) -> np.ndarray:
  """Tables of the linear map A_n: google_crc32c.extend(c, D) = A_n(c) ^ extend(0, D), |D| = n."""
  zeros = bytes(n)
  e0 = google_crc32c.extend(0, zeros)
  tables = np.zeros((4, 256), _U32)
  for k in range(4):
    for b in range(256):
      tables[k, b] = google_crc32c.extend(b << (8 * k), zeros) ^ e0
  return tables


def _extend(crc: np.ndarray, n: int) -> np.ndarray:
  t = _extend_tables(n)
  return (t[0][crc & _U32(0xFF)] ^ t[1][(crc >> _U32(8)) & _U32(0xFF)]
          ^ t[2][(crc >> _U32(16)) & _U32(0xFF)] ^ t[3][crc >> _U32(24)])


def _data_loss(message: str) -> tf.errors.DataLossError:
  return tf.errors.DataLossError(None, None, message)


# -- reading ------------------------------------------------------------------------------------
@dataclasses.dataclass
class RecordBatch:
  """Whole framed records: buf[starts[i] - 12 : starts[i] + lengths[i] + 4] is record i."""
  buf: bytes
  starts: np.ndarray      # int64, offset of each record's data in buf
  lengths: np.ndarray     # int64
  crcs: np.ndarray        # uint32, the masked data CRCs as stored
  _tensor: Optional[tf.Tensor] = dataclasses.field(default=None, repr=False, compare=False)

  def __len__(self) -> int:
    return len(self.starts)

  def tolist(self) -> List[bytes]:
    buf = self.buf
    return [buf[s:s + n] for s, n in zip(self.starts.tolist(), self.lengths.tolist())]

  def tensor(self) -> tf.Tensor:
    """The records as a string tensor [n] (one copy of the buffer, cut by tf.strings.substr)."""
    if self._tensor is None:
      self._tensor = (tf.strings.substr(tf.constant(self.buf), self.starts, self.lengths)
                      if len(self) else tf.constant([], tf.string))
    return self._tensor

  def find(self, needle: bytes) -> bool:
    """Whether `needle` occurs anywhere in the batch's bytes (framing included)."""
    return self.buf.find(needle) >= 0


def _blocks(path: str) -> Iterator[bytes]:
  """The shard's bytes, decompressed (every gzip member) when the name ends in .gz, in blocks
  of at most _BLOCK_BYTES."""
  with tf.io.gfile.GFile(path, "rb") as f:
    if not is_gzip(path):
      while True:
        block = f.read(_BLOCK_BYTES)
        if not block:
          return
        yield block
    d, seen = zlib.decompressobj(31), False
    while True:
      block = f.read(_READ_BYTES)
      if not block:
        break
      seen = True
      while block:
        try:
          out = d.decompress(block, _BLOCK_BYTES)
        except zlib.error as e:
          raise _data_loss(f"{path}: not a valid gzip stream ({e})") from None
        if out:
          yield out
        block = d.unconsumed_tail
        while not block and not d.eof and len(out) == _BLOCK_BYTES:   # capped: drain the rest
          out = d.decompress(b"", _BLOCK_BYTES)
          if out:
            yield out
          block = d.unconsumed_tail
        if d.eof:                            # another gzip member may follow
          block, d = d.unused_data, zlib.decompressobj(31)
          seen = bool(block)
    if seen and not d.eof:
      raise _data_loss(f"{path}: truncated gzip stream")


def read(path: str, batch_size: int = BATCH_SIZE) -> Iterator[RecordBatch]:
  """RecordBatches of `batch_size` records in file order (fewer for the last one, or to keep a
  batch within BATCH_BYTES).

  Length checksums are always checked; data checksums only in uncompressed files: in a .gz
  shard gzip's own CRC-32 of the whole stream (checked at the end of each member) already
  catches corruption, and frame_appended keeps a wrong stored checksum wrong.
  """
  verify_data = not is_gzip(path)
  unpack = struct.Struct("<Q").unpack_from
  data = b""             # decompressed bytes not handed out yet: whole records, then a partial one
  base = 0               # offset of data[0] in the decompressed shard (for error messages)
  offsets: List[int] = []  # header offsets, in data, of the whole records found so far
  pos = 0                # where the walk stopped in data
  for block in _blocks(path):
    keep = offsets[0] if offsets else pos
    if keep:
      offsets = [o - keep for o in offsets]
      pos -= keep
      base += keep
    data = data[keep:] + block if len(data) > keep else block
    end = len(data)
    last = end - _HEADER
    append = offsets.append
    while pos <= last:                      # the only per-record Python: follow the lengths
      nxt = pos + _FRAMING + unpack(data, pos)[0]
      if nxt > end:
        break
      append(pos)
      pos = nxt
    while offsets:                          # whole batches: batch_size records or BATCH_BYTES
      stop = min(batch_size, bisect.bisect_right(offsets, offsets[0] + BATCH_BYTES, 1))
      if stop == len(offsets) and stop < batch_size and pos - offsets[0] <= BATCH_BYTES:
        break                                 # not full yet: wait for more records
      yield _batch(path, data, offsets[:stop], base, verify_data)
      del offsets[:stop]
  if offsets:
    yield _batch(path, data, offsets, base, verify_data)
  if pos != len(data):
    raise _data_loss(f"truncated record at {base + pos} in {path}")


def _batch(path: str, data: bytes, offsets: List[int], base: int,
           verify_data: bool) -> RecordBatch:
  offs = np.asarray(offsets, np.int64)
  lo, last = int(offs[0]), int(offs[-1])
  view = np.frombuffer(data, np.uint8)
  head = view[offs[:, None] + np.arange(_HEADER)]
  lengths = head[:, :8].copy().view("<u8")[:, 0]
  bad = np.nonzero(_masked_length_crcs(lengths) != head[:, 8:].copy().view("<u4")[:, 0])[0]
  if len(bad):
    raise _data_loss(f"corrupted record at {base + int(offs[bad[0]])} in {path} (bad length "
                     "checksum: is this a TFRecord file?)")
  lengths = lengths.astype(np.int64)
  starts = offs + _HEADER
  stop = last + _HEADER + int(lengths[-1]) + _FOOTER
  crcs = view[(starts + lengths)[:, None] + np.arange(_FOOTER)].copy().view("<u4")[:, 0]
  buf = data[lo:stop] if (lo, stop) != (0, len(data)) else data
  starts = starts - lo
  if verify_data:
    value = google_crc32c.value
    got = np.fromiter((value(buf[s:s + n]) for s, n in zip(starts.tolist(), lengths.tolist())),
                      _U32, count=len(starts))
    bad = np.nonzero(_mask(got) != crcs)[0]
    if len(bad):
      raise _data_loss(f"corrupted record at {base + int(offs[bad[0]])} in {path} (bad data "
                       "checksum)")
  return RecordBatch(buf, starts, lengths, crcs)


def prefetch(batches: Iterable, depth: int = 2) -> Iterator:
  """Runs the `batches` iterator in a thread, `depth` items ahead (gunzip and the checksum pass
  overlap the consumer); exceptions are re-raised in the consumer."""
  q: "queue.Queue" = queue.Queue(maxsize=depth)
  stop = threading.Event()
  done = object()

  def produce():
    try:
      for item in batches:
        while not stop.is_set():
          try:
            q.put((item, None), timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
      q.put((done, None))
    except BaseException as e:   # pylint: disable=broad-except
      q.put((done, e))
    finally:
      close = getattr(batches, "close", None)
      if close is not None:
        close()

  thread = threading.Thread(target=produce, name="tfrecord-prefetch", daemon=True)
  thread.start()
  try:
    while True:
      item, err = q.get()
      if item is done:
        if err is not None:
          raise err
        return
      yield item
  finally:
    stop.set()
    while thread.is_alive():     # unblock a producer waiting on a full queue
      try:
        q.get_nowait()
      except queue.Empty:
        pass
      thread.join(timeout=0.05)


# -- writing ------------------------------------------------------------------------------------
def frame(records: Sequence[bytes]) -> bytes:
  """Framed TFRecord bytes of arbitrary records (a CRC pass per record)."""
  if not len(records):
    return b""
  lengths = np.fromiter(map(len, records), np.uint64, count=len(records))
  head = np.empty((len(records), _HEADER), np.uint8)
  head[:, :8] = lengths.astype("<u8").view(np.uint8).reshape(-1, 8)
  head[:, 8:] = _masked_length_crcs(lengths).astype("<u4").view(np.uint8).reshape(-1, 4)
  value = google_crc32c.value
  crcs = _mask(np.fromiter((value(r) for r in records), _U32, count=len(records)))
  feet = crcs.astype("<u4").view(np.uint8).reshape(-1, 4)
  heads, feet = head.tobytes(), feet.tobytes()
  pieces: List = [None] * (3 * len(records))
  pieces[0::3] = [heads[i:i + _HEADER] for i in range(0, len(heads), _HEADER)]
  pieces[1::3] = records
  pieces[2::3] = [feet[i:i + _FOOTER] for i in range(0, len(feet), _FOOTER)]
  return b"".join(pieces)


def frame_appended(batch: RecordBatch, suffix_ids: np.ndarray,
                   suffixes: Sequence[bytes]) -> bytes:
  """Framed bytes of record i + suffixes[suffix_ids[i]] for every record of `batch`, its CRCs
  derived from the stored ones (see the module docstring)."""
  n = len(batch)
  if not n:
    return b""
  ids = np.asarray(suffix_ids, np.int64)
  sizes = np.fromiter(map(len, suffixes), np.int64, count=len(suffixes))[ids]
  new_len = (batch.lengths + sizes).astype(np.uint64)
  crc_in, crc = _unmask(batch.crcs), np.empty(n, _U32)
  for size in np.unique(sizes).tolist():
    rows = sizes == size
    crc[rows] = _extend(crc_in[rows], size)
  k0 = np.fromiter((google_crc32c.extend(0, s) for s in suffixes), _U32, count=len(suffixes))
  crc_bytes = _mask(crc ^ k0[ids]).astype("<u4").view(np.uint8).reshape(n, _FOOTER)

  # Record i is written as [new header][data] - a slice of a copy of the buffer whose headers
  # are overwritten - followed by a tail [suffix][new data CRC].
  out = np.frombuffer(batch.buf, np.uint8).copy()
  heads = batch.starts - _HEADER
  out[heads[:, None] + np.arange(8)] = new_len.astype("<u8").view(np.uint8).reshape(n, 8)
  out[heads[:, None] + np.arange(8, _HEADER)] = (
      _masked_length_crcs(new_len).astype("<u4").view(np.uint8).reshape(n, 4))
  if np.all(sizes == sizes[0]):
    w = int(sizes[0])
    table = np.zeros((len(suffixes), w), np.uint8)
    for g, s in enumerate(suffixes):
      if len(s) == w:
        table[g] = np.frombuffer(s, np.uint8)
    tails = np.concatenate([table[ids], crc_bytes], axis=1).tobytes()
    w += _FOOTER
    tail_pieces = [tails[i:i + w] for i in range(0, n * w, w)]
  else:
    feet = crc_bytes.tobytes()
    tail_pieces = [suffixes[g] + feet[_FOOTER * i:_FOOTER * (i + 1)]
                   for i, g in enumerate(ids.tolist())]
  body = out.tobytes()   # bytes slices join much faster than memoryview slices
  ends = (batch.starts + batch.lengths).tolist()
  pieces: List = [None] * (2 * n)
  pieces[0::2] = [body[a:b] for a, b in zip(heads.tolist(), ends)]
  pieces[1::2] = tail_pieces
  return b"".join(pieces)


class Writer:
  """Writes one shard to a temporary path and moves it into place on close, so a retried or
  failed worker never leaves a partial file where readers look. Compression and the file writes
  run in a thread, at most two batches behind."""

  def __init__(self, final_path: str, tmp_dir: str):
    self.final_path = final_path
    tf.io.gfile.makedirs(tmp_dir)
    self._tmp = os.path.join(tmp_dir, f"{os.getpid()}-{id(self)}-{os.path.basename(final_path)}")
    self._file = tf.io.gfile.GFile(self._tmp, "wb")
    self._zip = (zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31, _MEM_LEVEL)
                 if is_gzip(final_path) else None)
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tfrecord-write")
    self._pending: List[concurrent.futures.Future] = []

  def _put(self, data: bytes) -> None:
    if self._zip is not None:
      data = self._zip.compress(data)
    if data:
      self._file.write(data)

  def write_framed(self, data: bytes) -> None:
    """Already framed TFRecord bytes (frame / frame_appended)."""
    if not data:
      return
    while len(self._pending) >= 2:
      self._pending.pop(0).result()
    self._pending.append(self._pool.submit(self._put, data))

  def write(self, records: Sequence[bytes]) -> None:
    self.write_framed(frame(records))

  def _drain(self) -> None:
    while self._pending:
      self._pending.pop(0).result()

  def close(self) -> None:
    try:
      self._drain()
      if self._zip is not None:
        self._file.write(self._zip.flush())
    except BaseException:
      self.abort()
      raise
    self._pool.shutdown(wait=True)
    self._file.close()
    tf.io.gfile.makedirs(os.path.dirname(self.final_path))
    tf.io.gfile.rename(self._tmp, self.final_path, overwrite=True)

  def abort(self) -> None:
    """Drops the temporary file (after an error)."""
    for f in self._pending:
      f.cancel()
    self._pool.shutdown(wait=True)
    self._file.close()
    if tf.io.gfile.exists(self._tmp):
      tf.io.gfile.remove(self._tmp)
