"""Reads the grouping columns of tf.Example shards with TF's and TFX's own readers, nothing
hand-made.

A shard streams through tf.data (TFRecordDataset: gunzip and framing in C++) in batches, and
each batch is parsed by TensorFlow's example parser (tf.io.parse_example) for the grouping
columns only, so the other columns are never decoded; the ragged results become Arrow list
columns and then one value per row (column_of). tf.io.parse_example is used for this hot path
because it is several times faster than tfx_bsl's ExamplesToRecordBatchDecoder, even with a
projected schema (bench/results/grouping.md: ~1-3 vs ~11-13 us per record for 2 of 8 columns).

The tf.Example kind (float/int/bytes) of each grouping column comes from the data (probe_kinds:
tfx_bsl's schemaless decoding of the first train batches), since the component takes no schema.
When a batch does not parse with these kinds (a column changes type), it is decoded again by
tfx_bsl without a schema so the error can name the column, the value and the place, or, for
numbers read as numbers (int in one shard, float in another), simply read.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tfx_bsl.coders import example_coder

from components.grouping.fitting import GroupingError
from components.grouping.kinds import BYTES, CATEGORICAL, FLOAT, INT, NUMERIC  # noqa: F401

BATCH_SIZE = 8192
_TF_TYPES = {FLOAT: tf.float32, INT: tf.int64, BYTES: tf.string}
UsageFn = Callable[[str, Optional[str]], str]   # (feature, kind) -> NUMERIC or CATEGORICAL


def compression_of(path: str) -> str:
  """'GZIP' if the file starts with the gzip magic bytes (ExampleGen writes .gz shards)."""
  with tf.io.gfile.GFile(path, "rb") as f:
    return "GZIP" if f.read(2) == b"\x1f\x8b" else ""


def record_batches(path: str, batch_size: Optional[int] = None) -> Iterator[List[bytes]]:
  """Serialized records of one shard in file order, `batch_size` at a time (tf.data)."""
  ds = tf.data.TFRecordDataset(path, compression_type=compression_of(path))
  ds = ds.batch(batch_size or BATCH_SIZE).prefetch(2)
  for batch in ds.as_numpy_iterator():
    yield batch.tolist()


def kind_of(arrow_type: pa.DataType) -> str:
  value_type = arrow_type.value_type
  if pa.types.is_floating(value_type):
    return FLOAT
  if pa.types.is_integer(value_type):
    return INT
  return BYTES


def _schemaless(records: List[bytes], where: str) -> pa.RecordBatch:
  try:
    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
  except RuntimeError as e:
    raise GroupingError(f"examples in {where} do not decode: a feature has values of different "
                        f"types in one batch ({str(e).splitlines()[0]})") from None


def batch_kinds(records: List[bytes], features: Sequence[str],
                where: str) -> Dict[str, Optional[str]]:
  """The kind of each feature in this batch (None if no record holds it)."""
  rb = _schemaless(records, where)
  names = set(rb.schema.names)
  return {f: (kind_of(rb.schema.field(f).type) if f in names else None) for f in features}


def probe_kinds(paths: Sequence[str], features: Sequence[str],
                where: str) -> Dict[str, Optional[str]]:
  """Kinds of `features` from the first batches of `paths` (reads on until each is found)."""
  kinds: Dict[str, Optional[str]] = {f: None for f in features}
  for path in paths:
    for records in record_batches(path):
      found = batch_kinds(records, [f for f in features if kinds[f] is None], where)
      kinds.update({f: k for f, k in found.items() if k is not None})
      if all(kinds.values()):
        return kinds
  return kinds


def column_of(f: str, kind: str, use: str, arr: pa.Array, where: str) -> np.ndarray:
  """[n] column from a decoded list column: NUMERIC -> float64 (NaN where missing);
  CATEGORICAL -> object of str ('' where missing; integers as decimal text). Errors name the
  feature, the offending value and `where` (split and file)."""
  n = len(arr)
  lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
  if np.any(lengths > 1):
    r = int(np.argmax(lengths > 1))
    raise GroupingError(f"grouping feature '{f}' has {int(lengths[r])} values in one example "
                        f"(record {r} of a batch of {where}); grouping needs one value per "
                        "example")
  rows = np.nonzero(lengths == 1)[0]
  values = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
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


@dataclasses.dataclass
class ColumnBatch:
  n: int                                 # rows in the batch
  columns: Dict[str, np.ndarray]         # see column_of
  kinds: Dict[str, Optional[str]]        # tf.Example kind of each feature in this batch

  def __len__(self) -> int:
    return self.n


def _columns(rb: pa.RecordBatch, n: int, features: Sequence[str], usage: UsageFn,
             where: str) -> ColumnBatch:
  cols, kinds = {}, {}
  names = set(rb.schema.names)
  for f in features:
    kind = kind_of(rb.schema.field(f).type) if f in names else None
    use = usage(f, kind)
    if kind is None or rb.column(f).null_count == n:   # absent from every row of the batch
      kinds[f] = None
      cols[f] = np.full(n, np.nan) if use == NUMERIC else np.full(n, "", dtype=object)
      continue
    kinds[f] = kind
    cols[f] = column_of(f, kind, use, rb.column(f), where)
  return ColumnBatch(n, cols, kinds)


def read_columns(path: str, kinds: Mapping[str, Optional[str]], usage: UsageFn, where: str,
                 batch_size: Optional[int] = None) -> Iterator[ColumnBatch]:
  """Streams one shard as ColumnBatches of the features in `kinds` (projected decoding).

  A batch that does not decode with the kinds given (a type change) is decoded without a schema
  and read with its own kinds, so column_of's checks decide (and name the problem).
  """
  decode = decoder(kinds, usage, where)
  for records in record_batches(path, batch_size):
    yield decode(records)


def parse_spec(kinds: Mapping[str, Optional[str]]) -> Dict[str, tf.io.RaggedFeature]:
  """tf.io.parse_example's spec for the grouping columns with a known kind (the projection)."""
  return {f: tf.io.RaggedFeature(_TF_TYPES[k], row_splits_dtype=tf.int32)
          for f, k in sorted(kinds.items()) if k is not None}


def _parse(records: List[bytes], spec: Dict[str, tf.io.RaggedFeature]) -> pa.RecordBatch:
  """The grouping columns of `records` as Arrow list columns (tf.io.parse_example); a column
  without a value in any record of the batch is left out, as absent."""
  parsed = tf.io.parse_example(records, spec) if spec else {}
  names, arrays = [], []
  for f, ragged in parsed.items():
    values = ragged.values.numpy()
    if not len(values):
      continue
    names.append(f)
    arrays.append(pa.ListArray.from_arrays(pa.array(ragged.row_splits.numpy()),
                                           pa.array(values)))
  return pa.RecordBatch.from_arrays(arrays, names)


def decoder(kinds: Mapping[str, Optional[str]], usage: UsageFn,
            where: str) -> Callable[[List[bytes]], ColumnBatch]:
  """records -> ColumnBatch of the features in `kinds`, parsing only those columns."""
  features = list(kinds)
  spec = parse_spec(kinds)

  def decode(records: List[bytes]) -> ColumnBatch:
    try:
      rb = _parse(records, spec)
    except tf.errors.InvalidArgumentError:   # a type change: decode as is, column_of names it
      rb = _schemaless(records, where)
    return _columns(rb, len(records), features, usage, where)
  return decode
