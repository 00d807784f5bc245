"""TensorProto <-> numpy for the gRPC front end, checking the dtype the signature declares.

tf.make_tensor_proto / tf.make_ndarray do the wire format; this module adds the checks a client
needs to hear about by name (wrong dtype, undecodable proto) instead of a TF stack trace.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from serving import tensor_proto
from serving.server.errors import invalid, too_large


def dtype_name(enum: int) -> str:
  try:
    return tf.as_dtype(enum).name
  except TypeError:
    return f"invalid dtype {enum}"


def check_declared_shape(name: str, proto: tensor_pb2.TensorProto, spec: tf.TensorSpec,
                         max_rows: int) -> None:
  """Refuses a tensor by its declared shape, before any memory is allocated for it.

  A few hundred bytes can declare a million-row tensor (empty string_val, or one repeated
  value): tf.make_ndarray would materialise it. Rows (dim 0) above `max_rows` are
  RESOURCE_EXHAUSTED; a shape the signature cannot take is INVALID_ARGUMENT.
  """
  dims = [d.size for d in proto.tensor_shape.dim]
  if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
    raise invalid(f"input '{name}' declares an invalid shape {dims}")
  rows = dims[0] if dims else 1
  if rows > max_rows:
    raise too_large(f"input '{name}' declares {rows} rows; the limit is {max_rows} rows per "
                    "request (--max_batch_rows)")
  if not spec.shape.is_compatible_with(dims):
    raise invalid(f"input '{name}' must have shape {spec.shape}, got {dims}")


def to_ndarray(name: str, proto: tensor_pb2.TensorProto, expected: tf.DType) -> np.ndarray:
  """The proto's value as an ndarray; INVALID_ARGUMENT if it is not a valid `expected` tensor."""
  if proto.dtype != expected.as_datatype_enum:
    raise invalid(f"input '{name}' must be {expected.name}, got {dtype_name(proto.dtype)}")
  try:
    return tf.make_ndarray(proto)
  except Exception as e:  # bad tensor_content length, negative dims, ...
    raise invalid(f"input '{name}' is not a valid {expected.name} TensorProto: {e}") from None


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
  return tensor_proto.to_proto(array)
