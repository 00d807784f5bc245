"""TensorProto <-> numpy for the gRPC front end, checking the dtype the signature declares.

tf.make_tensor_proto / tf.make_ndarray do the wire format; this module adds the checks a client
needs to hear about by name (wrong dtype, undecodable proto) instead of a TF stack trace.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

from serving.server.errors import invalid

# Numeric dtypes whose wire form is just the little-endian buffer in tensor_content.
_FAST = {np.dtype(np.float32): tf.float32, np.dtype(np.float64): tf.float64,
         np.dtype(np.int32): tf.int32, np.dtype(np.int64): tf.int64}


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
  """ndarray -> TensorProto; plain numeric arrays skip make_tensor_proto's generic checks."""
  dtype = _FAST.get(array.dtype)
  if dtype is None:
    return tf.make_tensor_proto(array)
  proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum, tensor_shape=shape_proto(array.shape))
  proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"),
                                                            copy=False).tobytes()
  return proto


def shape_proto(shape) -> tensor_shape_pb2.TensorShapeProto:
  return tensor_shape_pb2.TensorShapeProto(
      dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in shape])
