"""TF Serving's REST JSON tensor encoding, shared by the dev server and the REST client.

Conventions (as TF Serving's json_tensor): binary strings travel as {"b64": "..."}, plain JSON
strings are UTF-8 text; string outputs whose name ends in "_bytes" are always base64. Decoding is
driven by the signature's dtype so errors name the input and what was wrong with it.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, List, Mapping, Tuple

import numpy as np


class JsonTensorError(ValueError):
  """A JSON value cannot become a tensor of the requested dtype (message names the input)."""


def is_b64(value: Any) -> bool:
  return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _leaf_bytes(name: str, value: Any) -> bytes:
  if isinstance(value, str):
    return value.encode("utf-8")
  if is_b64(value):
    try:
      return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
      raise JsonTensorError(f"input '{name}': invalid base64 in {{\"b64\": ...}} value") from None
  raise JsonTensorError(f"input '{name}' expects strings (or {{\"b64\": ...}}), got "
                        f"{_json_type(value)} {_short(value)}")


def _json_type(value: Any) -> str:
  if isinstance(value, bool):
    return "boolean"
  if isinstance(value, (int, float)):
    return "number"
  if isinstance(value, str):
    return "string"
  if value is None:
    return "null"
  return "object" if isinstance(value, dict) else type(value).__name__


def _short(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 60 else text[:57] + "..."


def _flatten(name: str, value: Any) -> Tuple[List[int], List[Any]]:
  """Shape and row-major leaves of a nested JSON list; rejects ragged nesting."""
  if not isinstance(value, list):
    return [], [value]
  if not value:
    return [0], []
  parts = [_flatten(name, v) for v in value]
  shape = parts[0][0]
  if any(p[0] != shape for p in parts):
    raise JsonTensorError(f"input '{name}': ragged list (elements have different shapes)")
  return [len(value)] + shape, [leaf for p in parts for leaf in p[1]]


def to_ndarray(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
  """JSON value -> ndarray of `dtype` (np.object_ holds bytes for tf.string)."""
  dtype = np.dtype(dtype)
  shape, leaves = _flatten(name, value)
  if dtype == np.object_:
    return np.array([_leaf_bytes(name, v) for v in leaves], dtype=object).reshape(shape)
  for v in leaves:
    if dtype == np.bool_:
      ok = isinstance(v, bool)
    else:
      ok = isinstance(v, (int, float)) and not isinstance(v, bool)
      if ok and dtype.kind in "iu" and isinstance(v, float) and not v.is_integer():
        raise JsonTensorError(f"input '{name}' expects {dtype.name} values, got {v!r}")
    if not ok:
      raise JsonTensorError(f"input '{name}' expects {dtype.name} values, got "
                            f"{_json_type(v)} {_short(v)}")
  try:
    return np.array(leaves, dtype=dtype).reshape(shape)
  except OverflowError:
    raise JsonTensorError(f"input '{name}': value out of range for {dtype.name}") from None


def from_ndarray(name: str, array: np.ndarray) -> Any:
  """ndarray -> JSON value; bytes as text, or {"b64"} for '_bytes' names and non-UTF-8 data."""
  if array.dtype != np.object_ and array.dtype.kind not in "SU":
    return array.tolist()
  force_b64 = name.endswith("_bytes")

  def enc(v):
    if isinstance(v, str):
      return v
    if not force_b64:
      try:
        return v.decode("utf-8")
      except UnicodeDecodeError:
        pass
    return {"b64": base64.b64encode(v).decode("ascii")}

  flat = [enc(v) for v in array.reshape(-1).tolist()]

  def nest(index):
    return [nest(i) for i in index] if isinstance(index, list) else flat[index]

  return nest(np.arange(array.size).reshape(array.shape).tolist())


def encode_value(value: Any) -> Any:
  """Client side: numpy arrays/bytes -> JSON-ready values (bytes become {"b64": ...})."""
  if isinstance(value, np.ndarray):
    value = value.tolist()
  if isinstance(value, (bytes, bytearray)):
    return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
  if isinstance(value, (list, tuple)):
    return [encode_value(v) for v in value]
  if isinstance(value, Mapping) and not is_b64(value):
    return {k: encode_value(v) for k, v in value.items()}
  if isinstance(value, np.generic):
    return value.item()
  return value


def decode_value(value: Any) -> Any:
  """Client side: {"b64": ...} objects back to bytes, recursively."""
  if is_b64(value):
    return base64.b64decode(value["b64"])
  if isinstance(value, list):
    return [decode_value(v) for v in value]
  if isinstance(value, dict):
    return {k: decode_value(v) for k, v in value.items()}
  return value
