"""Raw feature rows -> tf.Example protos, typed like the model's `serving_raw` signature.

tf.Example parsing is strict about the list kind (float_list vs int64_list), and a CSV or JSON
row does not say whether `1500` is a float feature. The `serving_raw` signature does, so callers
pass its input dtypes (GrpcClient.raw_feature_dtypes()); without them Python types decide.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Union

import numpy as np
import tensorflow as tf

DTypeLike = Union[tf.DType, str, np.dtype, type]


def as_dtype(d: DTypeLike) -> tf.DType:
  """tf.DType from a tf.DType, numpy dtype, 'float32' or a TensorProto enum name 'DT_FLOAT'."""
  if isinstance(d, str) and d.startswith("DT_"):
    from tensorflow.core.framework import types_pb2
    return tf.as_dtype(types_pb2.DataType.Value(d))
  return tf.as_dtype(d)


def _kind(value: object, dtype: Optional[tf.DType]) -> str:
  if dtype is not None:
    if dtype == tf.string:
      return "bytes"
    return "float" if dtype.is_floating else "int64"
  if isinstance(value, (bytes, str)):
    return "bytes"
  if isinstance(value, (bool, int, np.integer)):
    return "int64"
  return "float"


def _feature(name: str, value: object, dtype: Optional[tf.DType]) -> tf.train.Feature:
  values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
  kind = _kind(values[0] if values else 0.0, dtype)
  try:
    if kind == "bytes":
      return tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]))
    if kind == "int64":
      ints = [float(v) if isinstance(v, str) else v for v in values]
      if any(float(v) != int(float(v)) for v in ints):
        raise ValueError("not an integer")
      return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(v)) for v in ints]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
  except (TypeError, ValueError) as e:
    raise ValueError(f"feature '{name}': cannot encode {value!r} as {kind}: {e}") from None


def rows_to_examples(rows: Iterable[Mapping[str, object]],
                     dtypes: Optional[Mapping[str, DTypeLike]] = None) -> List[tf.train.Example]:
  """One tf.Example per row; None/'' values are left out (the model may treat them as missing)."""
  types: Dict[str, tf.DType] = {k: as_dtype(v) for k, v in (dtypes or {}).items()}
  out = []
  for row in rows:
    feats = {k: _feature(k, v, types.get(k)) for k, v in row.items()
             if v is not None and not (isinstance(v, str) and v == "")
             and (not types or k in types)}
    out.append(tf.train.Example(features=tf.train.Features(feature=feats)))
  return out


def serialize(rows: Iterable[Mapping[str, object]],
              dtypes: Optional[Mapping[str, DTypeLike]] = None) -> List[bytes]:
  return [e.SerializeToString() for e in rows_to_examples(rows, dtypes)]


def coerce(name: str, value: object, dtype: tf.DType) -> object:
  """A CSV/JSON scalar as the Python type `dtype` needs ('1500' -> 1500.0 for float32)."""
  if dtype == tf.string:
    return value if isinstance(value, bytes) else str(value)
  try:
    if dtype.is_floating:
      return float(value)
    f = float(value)
    if f != int(f):
      raise ValueError("not an integer")
    return int(f)
  except (TypeError, ValueError) as e:
    raise ValueError(f"feature '{name}': cannot use {value!r} as {dtype.name}: {e}") from None


def columns(rows: Iterable[Mapping[str, object]],
            dtypes: Mapping[str, DTypeLike]) -> Dict[str, np.ndarray]:
  """Rows -> one array per input of a raw-feature signature, cast to its dtypes."""
  types = {k: as_dtype(v) for k, v in dtypes.items()}
  rows = list(rows)
  out = {}
  for name, dtype in types.items():
    missing = [i for i, r in enumerate(rows) if name not in r]
    if missing:
      raise ValueError(f"feature '{name}' missing in row(s) {missing[:5]}")
    values = [coerce(name, r[name], dtype) for r in rows]
    out[name] = np.array(values, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
  return out


def typed_rows(rows: Iterable[Mapping[str, object]],
               dtypes: Mapping[str, DTypeLike]) -> List[Dict[str, object]]:
  """Rows restricted to `dtypes`' features with values coerced (for REST JSON instances)."""
  types = {k: as_dtype(v) for k, v in dtypes.items()}
  return [{k: coerce(k, r[k], d) for k, d in types.items() if k in r} for r in rows]
