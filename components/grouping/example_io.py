"""Batch I/O of serialized tf.Examples: read a shard, parse grouping columns, add the group id.

Everything works on batches, so no Python code runs per feature per row: a shard streams
through tf.data (read, gunzip, tf.io.parse_example of the grouping columns, in background
threads) while the caller assigns and writes the previous batch (read_parsed). parse_batches
is the same parsing in the caller's thread, for record batches already in memory.

The group id is added without parsing the record: a serialized message followed by another
serialized message of the same type parses as their merge (protobuf encoding rule), and a
tf.Example's features are a map, so appending the bytes of
`Example{features{feature{key: <name> value{int64_list{value: <id>}}}}}` adds the feature.
annotation_suffixes precomputes one per group. Parsers disagree on duplicate map keys, so
records that already carry the key (e.g. re-grouping annotated examples) are rewritten
instead, replacing the old value.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from components.grouping.fitting import GroupingError
from components.grouping.kinds import BYTES, CATEGORICAL, FLOAT, INT, NUMERIC  # noqa: F401

_DTYPES = {FLOAT: tf.float32, INT: tf.int64, BYTES: tf.string}
BATCH_SIZE = 4096
GZIP_LEVEL = 1   # annotated shards: ~1/3 of zlib's default CPU for ~20% larger files


def compression_of(path: str) -> str:
  return "GZIP" if path.endswith(".gz") else ""


def _dataset(path: str, batch_size: int) -> tf.data.Dataset:
  return tf.data.TFRecordDataset([path], compression_type=compression_of(path),
                                 buffer_size=1 << 20).batch(batch_size)


def read_batches(path: str, batch_size: int = BATCH_SIZE) -> Iterator[np.ndarray]:
  """Serialized records of one TFRecord shard, `batch_size` at a time (object arrays)."""
  for batch in _dataset(path, batch_size).prefetch(2).as_numpy_iterator():
    yield batch


def _parse(records: np.ndarray, kinds: Mapping[str, str]) -> Dict[str, tf.SparseTensor]:
  spec = {f: tf.io.VarLenFeature(_DTYPES[k]) for f, k in kinds.items()}
  return tf.io.parse_example(tf.constant(records, tf.string), spec)


def detect_kind(records: np.ndarray, feature: str, where: str) -> Optional[str]:
  """The tf.Example list type of `feature` in this batch (None if absent from every record)."""
  for kind in (FLOAT, INT, BYTES):
    try:
      sp = _parse(records, {feature: kind})[feature]
    except tf.errors.InvalidArgumentError:
      continue
    return kind if int(tf.size(sp.values)) > 0 else None
  raise GroupingError(f"grouping feature '{feature}' has values of different types in one "
                      f"batch of {where}")


def update_kinds(records: np.ndarray, features: Sequence[str], kinds: Dict[str, Optional[str]],
                 where: str) -> Dict[str, Optional[str]]:
  """Fills in kinds not yet known (None) from this batch; known ones are kept."""
  out = dict(kinds)
  for f in features:
    if out.get(f) is None:
      out[f] = detect_kind(records, f, where)
  return out


def parse_columns(records: np.ndarray, kinds: Mapping[str, Optional[str]],
                  usage: Mapping[str, str], where: str) -> Dict[str, np.ndarray]:
  """One value per record for each feature in `usage`.

  usage NUMERIC -> float64 [n] (NaN where missing); CATEGORICAL -> object [n] of str ('' where
  missing; integers as decimal text). A kind of None means the feature is absent from the batch.
  Errors name the feature, the offending value and `where` (split and file).
  """
  n = len(records)
  present = {f: k for f, k in kinds.items() if k is not None and f in usage}
  try:
    parsed = _parse(records, present) if present else {}
  except tf.errors.InvalidArgumentError as e:
    msg = str(e).split("\n")[0]
    bad = next((f for f in present if _mismatch(records, f, present[f])), "?")
    raise GroupingError(f"grouping feature '{bad}' changes type within {where} (expected "
                        f"{present.get(bad)} values; {msg})") from None
  out = {}
  for f, use in usage.items():
    kind = kinds.get(f)
    if kind is None:
      out[f] = np.full(n, np.nan) if use == NUMERIC else np.full(n, "", dtype=object)
      continue
    sp = parsed[f]
    out[f] = _to_column(f, kind, use, sp.indices.numpy()[:, 0], sp.values.numpy(), n, where)
  return out


def _mismatch(records: np.ndarray, feature: str, kind: str) -> bool:
  try:
    _parse(records, {feature: kind})
    return False
  except tf.errors.InvalidArgumentError:
    return True


def _to_column(f: str, kind: str, use: str, rows: np.ndarray, values: np.ndarray, n: int,
               where: str) -> np.ndarray:
  """[n] column from parse_example's sparse output (rows sorted, one value per row)."""
  if len(rows) > 1 and np.any(rows[1:] == rows[:-1]):
    r = int(rows[1:][rows[1:] == rows[:-1]][0])
    raise GroupingError(f"grouping feature '{f}' has {int((rows == r).sum())} values in one "
                        f"example (record {r} of a batch of {where}); grouping needs one value "
                        "per example")
  if use == NUMERIC:
    if kind == BYTES:
      sample = values[0].decode("utf-8", "replace") if len(values) else ""
      raise GroupingError(
          f"grouping feature '{f}' is not numeric in {where} (value {sample!r}); K-Means needs "
          "numbers: set grouping.categorical to 'onehot' or 'exclude', or group a priori on "
          "it (grouping.mode: apriori, grouping.column)")
    col = np.full(n, np.nan)
    col[rows] = values.astype(np.float64)
    return col
  if kind == FLOAT:
    sample = values[0] if len(values) else float("nan")
    raise GroupingError(f"grouping column '{f}' holds floating-point values in {where} (e.g. "
                        f"{sample}): categories must be strings or integers")
  col = np.full(n, "", dtype=object)
  if kind == BYTES:
    col[rows] = [v.decode("utf-8") for v in values]
  else:
    col[rows] = values.astype(str)
  return col


UsageFn = Callable[[str, Optional[str]], str]   # (feature, kind) -> NUMERIC or CATEGORICAL


@dataclasses.dataclass
class ParsedBatch:
  records: np.ndarray                    # the serialized examples, as read
  columns: Dict[str, np.ndarray]         # see parse_columns
  kinds: Dict[str, Optional[str]]        # tf.Example kind of each feature seen so far


def parse_batches(batches: Iterable[np.ndarray], features: Sequence[str], usage: UsageFn,
                  where: str) -> Iterator[ParsedBatch]:
  """Parses record batches in the caller's thread (kinds learnt as features appear)."""
  kinds: Dict[str, Optional[str]] = {f: None for f in features}
  for records in batches:
    kinds = update_kinds(records, features, kinds, where)
    cols = parse_columns(records, kinds, {f: usage(f, kinds[f]) for f in features}, where)
    yield ParsedBatch(records, cols, dict(kinds))


def read_parsed(path: str, features: Sequence[str], usage: UsageFn, where: str,
                batch_size: int = BATCH_SIZE) -> Iterator[ParsedBatch]:
  """Streams one shard as ParsedBatches, parsing inside tf.data so it overlaps the caller.

  Kinds come from the first batch; a feature absent from it is parsed in the caller's thread
  once it appears. Memory: a few batches in flight, whatever the shard size.
  """
  first = next(iter(_dataset(path, batch_size).take(1).as_numpy_iterator()), None)
  if first is None:
    return
  kinds = update_kinds(first, features, {f: None for f in features}, where)
  spec = {f: tf.io.VarLenFeature(_DTYPES[k]) for f, k in kinds.items() if k is not None}

  def parse(batch):
    parsed = tf.io.parse_example(batch, spec) if spec else {}
    return batch, {f: (sp.indices[:, 0], sp.values) for f, sp in parsed.items()}

  it = (_dataset(path, batch_size).map(parse, num_parallel_calls=2, deterministic=True)
        .prefetch(2).as_numpy_iterator())
  while True:
    try:
      records, parsed = next(it)
    except StopIteration:
      return
    except tf.errors.InvalidArgumentError as e:
      raise GroupingError(f"a grouping feature changes type within {where}: "
                          f"{str(e).splitlines()[0]}") from None
    n = len(records)
    late = [f for f in features if f not in parsed]
    if late:
      kinds = update_kinds(records, late, kinds, where)
    cols = parse_columns(records, {f: kinds[f] for f in late},
                         {f: usage(f, kinds[f]) for f in late}, where) if late else {}
    for f, (rows, values) in parsed.items():
      cols[f] = _to_column(f, kinds[f], usage(f, kinds[f]), rows, values, n, where)
    yield ParsedBatch(records, {f: cols[f] for f in features}, dict(kinds))


def annotation_suffixes(num_groups: int, feature_name: str) -> List[bytes]:
  """Serialized Example{feature_name: [g]} for each group g, to append to a record."""
  out = []
  for g in range(num_groups):
    ex = tf.train.Example()
    ex.features.feature[feature_name].int64_list.value.append(g)
    out.append(ex.SerializeToString())
  return out


def _key_marker(feature_name: str) -> bytes:
  """The bytes any record holding `feature_name` must contain: its map key field (tag 1,
  length-delimited). A value may contain them too; that only costs a needless rewrite."""
  key = feature_name.encode()
  length = len(key)
  varint = bytearray()
  while True:
    byte, length = length & 0x7F, length >> 7
    varint.append(byte | (0x80 if length else 0))
    if not length:
      break
  return b"\x0a" + bytes(varint) + key


def annotate(records: np.ndarray, ids: np.ndarray, suffixes: Sequence[bytes],
             feature_name: str) -> List[bytes]:
  """Records with the group id feature set (see the module docstring)."""
  marker = _key_marker(feature_name)
  if marker in b"".join(records):   # one search per batch; per record only if it may be there
    return [with_group_id(r, g, feature_name) if marker in r else r + suffixes[g]
            for r, g in zip(records, ids.tolist())]
  return [r + suffixes[g] for r, g in zip(records, ids.tolist())]


def with_group_id(record: bytes, group_id: int, feature_name: str) -> bytes:
  """One record with the group id added (reference implementation, parses the record)."""
  ex = tf.train.Example.FromString(record)
  ex.features.feature[feature_name].int64_list.value[:] = [int(group_id)]
  return ex.SerializeToString()


class ShardWriter:
  """Writes one output shard to a temporary path and moves it into place on close, so a retried
  or failed worker never leaves a partial file where readers look."""

  def __init__(self, final_path: str, tmp_dir: str):
    self.final_path = final_path
    tf.io.gfile.makedirs(tmp_dir)
    self._tmp = os.path.join(tmp_dir, f"{os.getpid()}-{id(self)}-{os.path.basename(final_path)}")
    options = tf.io.TFRecordOptions(compression_type=compression_of(final_path),
                                    compression_level=GZIP_LEVEL
                                    if compression_of(final_path) else None)
    self._writer = tf.io.TFRecordWriter(self._tmp, options)

  def write(self, records: Sequence[bytes]) -> None:
    w = self._writer.write
    for r in records:
      w(r)

  def close(self) -> None:
    self._writer.close()
    tf.io.gfile.makedirs(os.path.dirname(self.final_path))
    tf.io.gfile.rename(self._tmp, self.final_path, overwrite=True)
