"""Batch I/O of serialized tf.Examples: read a shard, parse grouping columns, add the group id.

Everything works on batches, so no Python code runs per feature per row: a shard streams
through tfrecord.read (gunzip and TFRecord framing in NumPy, in a prefetch thread) and each
batch's grouping columns are parsed with one tf.io.parse_example (read_parsed). parse_batches
is the same parsing for record batches already in memory.

The group id is added without parsing the record: a serialized message followed by another
serialized message of the same type parses as their merge (protobuf encoding rule), and a
tf.Example's features are a map, so appending the bytes of
`Example{features{feature{key: <name> value{int64_list{value: <id>}}}}}` adds the feature.
annotation_suffixes precomputes one per group; tfrecord.frame_appended writes a whole batch
that way without touching records one by one. Parsers disagree on duplicate map keys, so
records that already carry the key (e.g. re-grouping annotated examples) are rewritten
instead, replacing the old value.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from components.grouping import tfrecord
from components.grouping.fitting import GroupingError
from components.grouping.kinds import BYTES, CATEGORICAL, FLOAT, INT, NUMERIC  # noqa: F401

_DTYPES = {FLOAT: tf.float32, INT: tf.int64, BYTES: tf.string}
Records = Union[np.ndarray, tfrecord.RecordBatch]   # object array of bytes, or as read


def compression_of(path: str) -> str:
  return "GZIP" if tfrecord.is_gzip(path) else ""


def read_batches(path: str, batch_size: Optional[int] = None) -> Iterator[np.ndarray]:
  """Serialized records of one TFRecord shard, `batch_size` at a time (object arrays)."""
  for batch in tfrecord.read(path, batch_size or tfrecord.BATCH_SIZE):
    out = np.empty(len(batch), dtype=object)
    out[:] = batch.tolist()
    yield out


def _tensor(records: Records) -> tf.Tensor:
  if isinstance(records, tfrecord.RecordBatch):
    return records.tensor()
  return tf.constant(records, tf.string)


def _parse(records: Records, kinds: Mapping[str, str]) -> Dict[str, tf.SparseTensor]:
  spec = {f: tf.io.VarLenFeature(_DTYPES[k]) for f, k in kinds.items()}
  return tf.io.parse_example(_tensor(records), spec)


def detect_kind(records: Records, feature: str, where: str) -> Optional[str]:
  """The tf.Example list type of `feature` in this batch (None if absent from every record)."""
  for kind in (FLOAT, INT, BYTES):
    try:
      sp = _parse(records, {feature: kind})[feature]
    except tf.errors.InvalidArgumentError:
      continue
    return kind if int(tf.size(sp.values)) > 0 else None
  raise GroupingError(f"grouping feature '{feature}' has values of different types in one "
                      f"batch of {where}")


def update_kinds(records: Records, features: Sequence[str], kinds: Dict[str, Optional[str]],
                 where: str) -> Dict[str, Optional[str]]:
  """Fills in kinds not yet known (None) from this batch; known ones are kept."""
  out = dict(kinds)
  for f in features:
    if out.get(f) is None:
      out[f] = detect_kind(records, f, where)
  return out


def parse_columns(records: Records, kinds: Mapping[str, Optional[str]],
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


def _mismatch(records: Records, feature: str, kind: str) -> bool:
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
  records: Records                       # the serialized examples, as read
  columns: Dict[str, np.ndarray]         # see parse_columns
  kinds: Dict[str, Optional[str]]        # tf.Example kind of each feature seen so far

  def __len__(self) -> int:
    return len(self.records)


def parse_batches(batches: Iterable[Records], features: Sequence[str], usage: UsageFn,
                  where: str) -> Iterator[ParsedBatch]:
  """Parses record batches in the caller's thread (kinds learnt as features appear)."""
  kinds: Dict[str, Optional[str]] = {f: None for f in features}
  for records in batches:
    kinds = update_kinds(records, features, kinds, where)
    cols = parse_columns(records, kinds, {f: usage(f, kinds[f]) for f in features}, where)
    yield ParsedBatch(records, cols, dict(kinds))


def read_parsed(path: str, features: Sequence[str], usage: UsageFn, where: str,
                batch_size: Optional[int] = None) -> Iterator[ParsedBatch]:
  """Streams one shard as ParsedBatches (records as tfrecord.RecordBatch).

  Reading (gunzip, framing) runs a couple of batches ahead in a thread while the caller parses
  and uses the previous one. Kinds come from the first batch holding each feature. Memory: a
  few batches in flight, whatever the shard size.
  """
  batches = tfrecord.read(path, batch_size or tfrecord.BATCH_SIZE)
  return parse_batches(tfrecord.prefetch(batches), features, usage, where)


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


def annotate(records: Sequence[bytes], ids: np.ndarray, suffixes: Sequence[bytes],
             feature_name: str) -> List[bytes]:
  """Records with the group id feature set (see the module docstring)."""
  marker = _key_marker(feature_name)
  if marker in b"".join(records):   # one search per batch; per record only if it may be there
    return [with_group_id(r, g, feature_name) if marker in r else r + suffixes[g]
            for r, g in zip(records, ids.tolist())]
  return [r + suffixes[g] for r, g in zip(records, ids.tolist())]


def annotated_framed(records: Records, ids: np.ndarray, suffixes: Sequence[bytes],
                     feature_name: str) -> bytes:
  """The batch annotated as `annotate` does, as framed TFRecord bytes for ShardWriter."""
  if isinstance(records, tfrecord.RecordBatch):
    if not records.find(_key_marker(feature_name)):
      return tfrecord.frame_appended(records, ids, suffixes)
    records = records.tolist()
  return tfrecord.frame(annotate(records, ids, suffixes, feature_name))


def with_group_id(record: bytes, group_id: int, feature_name: str) -> bytes:
  """One record with the group id added (reference implementation, parses the record)."""
  ex = tf.train.Example.FromString(record)
  ex.features.feature[feature_name].int64_list.value[:] = [int(group_id)]
  return ex.SerializeToString()


class ShardWriter(tfrecord.Writer):
  """Writes one output shard to a temporary path and moves it into place on close, so a retried
  or failed worker never leaves a partial file where readers look (see tfrecord.Writer)."""
