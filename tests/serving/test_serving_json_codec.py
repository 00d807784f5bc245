"""TF Serving's JSON tensor conventions (b64 strings, dtype checks, '_bytes' outputs)."""
from __future__ import annotations

import numpy as np
import pytest

from serving import json_codec


def test_numbers_and_strings_to_ndarray():
  a = json_codec.to_ndarray("x", [[1, 2.5], [3, 4]], np.float32)
  assert a.dtype == np.float32 and a.shape == (2, 2) and a[0, 1] == 2.5
  assert json_codec.to_ndarray("n", [1, 2.0], np.int64).tolist() == [1, 2]
  s = json_codec.to_ndarray("s", ["a", {"b64": "AP8="}], np.object_)
  assert s.tolist() == [b"a", b"\x00\xff"]
  assert json_codec.to_ndarray("e", [], np.float32).shape == (0,)


@pytest.mark.parametrize("value,dtype,words", [
    (["a"], np.float32, ["'x'", "float32", "string"]),
    ([True], np.float32, ["boolean"]),
    ([1.5], np.int64, ["int64", "1.5"]),
    ([1], np.object_, ["strings", "number"]),
    ([[1], [1, 2]], np.float32, ["ragged"]),
    ([{"b64": "%%"}], np.object_, ["base64"]),
    ([2 ** 70], np.int64, ["range"]),
])
def test_bad_values_name_input_and_problem(value, dtype, words):
  with pytest.raises(json_codec.JsonTensorError) as info:
    json_codec.to_ndarray("x", value, dtype)
  for w in words:
    assert w in str(info.value)


def test_from_ndarray_text_bytes_and_numbers():
  assert json_codec.from_ndarray("p", np.array([[1.5]], np.float32)) == [[1.5]]
  assert json_codec.from_ndarray("s", np.array([b"abc", b"\xff"], dtype=object)) == [
      "abc", {"b64": "/w=="}]
  assert json_codec.from_ndarray("img_bytes", np.array([b"abc"], dtype=object)) == [
      {"b64": "YWJj"}]
  assert json_codec.from_ndarray("s", np.array(b"x", dtype=object)) == "x"


def test_client_encode_decode_round_trip():
  value = {"a": np.array([1, 2]), "b": [b"\x00", "t"], "c": np.float32(1.5)}
  encoded = json_codec.encode_value(value)
  assert encoded == {"a": [1, 2], "b": [{"b64": "AA=="}, "t"], "c": 1.5}
  assert json_codec.decode_value(encoded)["b"] == [b"\x00", "t"]
