"""TensorProto <-> numpy for the gRPC front end, checking the dtype the signature declares.

tf.make_tensor_proto / tf.make_ndarray do the wire format; this module adds the checks a client
needs to hear about by name (wrong dtype, undecodable proto) instead of a TF stack trace.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from serving import tensor_proto
from serving.server.errors import invalid


def dtype_name(enum: int) -> str:
  try:
    return tf.as_dtype(enum).name
  except TypeError:
    return f"invalid dtype {enum}"


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
