"""Bad requests get TF Serving's status (gRPC code / HTTP status), a message naming the problem,
and the server keeps answering good requests afterwards."""
from __future__ import annotations

import base64

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, inference_pb2, predict_pb2,
                                     regression_pb2)

from tests.serving.helpers import MAX_REQUEST_BYTES, MODEL
from serving.testing_model import FEATURES, example_rows, raw_columns, serialize_rows

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


def _examples(n=2, dtypes=None):
  return np.array(serialize_rows(example_rows(n), dtypes), dtype=object)


def _request(inputs, signature="", name=MODEL, version=None):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = version
  for k, v in inputs.items():
    request.inputs[k].CopyFrom(v if isinstance(v, tensor_pb2.TensorProto)
                               else tf.make_tensor_proto(v))
  return request


def _raw(drop=None, **replace):
  cols = raw_columns(example_rows(2))
  if drop:
    del cols[drop]
  cols.update(replace)
  return cols


def _bad_content():
  proto = tf.make_tensor_proto(np.zeros(3, np.float32))
  proto.tensor_content = b"\x00" * 5  # 5 bytes cannot hold three float32s
  return proto


def _missing_feature_example():
  rows = example_rows(2)
  del rows[1]["Gr_Liv_Area"]
  return np.array(serialize_rows(rows), dtype=object)


GRPC_CASES = {
    "wrong dtype": (dict(inputs={"examples": np.zeros(2, np.float32)}),
                    INVALID, ["examples", "string", "float"]),
    "raw wrong dtype": (dict(inputs=_raw(Gr_Liv_Area=np.ones(2, np.float64)),
                             signature="serving_raw"), INVALID, ["Gr_Liv_Area", "float32"]),
    "missing input": (dict(inputs=_raw(drop="Lot_Area"), signature="serving_raw"),
                      INVALID, ["missing", "Lot_Area"]),
    "unknown input": (dict(inputs={"examples": _examples(), "extra": np.ones(2, np.float32)}),
                      INVALID, ["unknown", "extra"]),
    "wrong shape": (dict(inputs={"examples": _examples(4).reshape(2, 2)}),
                    INVALID, ["examples", "shape"]),
    "garbage bytes": (dict(inputs={"examples": np.array([b"\x00garbage\xff"], dtype=object)}),
                      INVALID, ["parse"]),
    "missing feature in tf.Example": (dict(inputs={"examples": _missing_feature_example()}),
                                      INVALID, ["Gr_Liv_Area"]),
    "feature of wrong type in tf.Example": (dict(inputs={"examples": _examples(
        dtypes=dict(FEATURES, Year_Built=tf.float32))}),
                                            INVALID, ["Year_Built"]),
    "corrupt TensorProto": (dict(inputs={"Gr_Liv_Area": _bad_content()}, signature="serving_raw"),
                            INVALID, ["Gr_Liv_Area"]),
    "unknown model": (dict(inputs={"examples": _examples()}, name="nope"), NOT_FOUND, ["nope"]),
    "unknown version": (dict(inputs={"examples": _examples()}, version=7), NOT_FOUND, ["7"]),
    "unknown signature": (dict(inputs={"examples": _examples()}, signature="nope"),
                          NOT_FOUND, ["nope", "serving_raw"]),
}


@pytest.mark.parametrize("case", sorted(GRPC_CASES))
def test_grpc_predict_errors(case, stub, still_serving):
  kwargs, code, words = GRPC_CASES[case]
  with pytest.raises(grpc.RpcError) as info:
    stub.Predict(_request(**kwargs), timeout=30)
  assert info.value.code() == code, info.value.details()
  for w in words:
    assert w in info.value.details(), (w, info.value.details())
  still_serving()


def test_grpc_request_over_size_limit(stub, still_serving):
  huge = np.array([b"x" * (MAX_REQUEST_BYTES + 1000)], dtype=object)
  with pytest.raises(grpc.RpcError) as info:
    stub.Predict(_request({"examples": huge}), timeout=30)
  assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
  still_serving()


def test_grpc_unknown_output_filter(stub, still_serving):
  request = _request({"examples": _examples()})
  request.output_filter.append("nope")
  with pytest.raises(grpc.RpcError) as info:
    stub.Predict(request, timeout=30)
  assert info.value.code() == INVALID and "nope" in info.value.details()
  still_serving()


def test_grpc_unimplemented_methods(stub, still_serving):
  spec = dict(model_spec={"name": MODEL})
  calls = [
      (stub.Regress, regression_pb2.RegressionRequest(**spec), "regression signature"),
      (stub.Classify, classification_pb2.ClassificationRequest(**spec), "Classify"),
      (stub.MultiInference, inference_pb2.MultiInferenceRequest(), "MultiInference"),
  ]
  for method, request, words in calls:
    with pytest.raises(grpc.RpcError) as info:
      method(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert words in info.value.details()
  still_serving()


def test_grpc_metadata_and_status_errors(stub, model_stub, still_serving):
  no_fields = get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": MODEL})
  cases = [
      (stub.GetModelMetadata, no_fields, INVALID),
      (stub.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest(
          model_spec={"name": "nope"}, metadata_field=["signature_def"]), NOT_FOUND),
      (model_stub.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(
          model_spec={"name": "nope"}), NOT_FOUND),
      (model_stub.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(
          model_spec={"name": MODEL, "version": {"value": 9}}), NOT_FOUND),
  ]
  for method, request, code in cases:
    with pytest.raises(grpc.RpcError) as info:
      method(request, timeout=30)
    assert info.value.code() == code, info.value.details()
  still_serving()


def _b64(data: bytes):
  return {"b64": base64.b64encode(data).decode()}


REST_CASES = {
    "invalid JSON": ("POST", f"/v1/models/{MODEL}:predict", b"{not json", 400, ["JSON"]),
    "no instances or inputs": ("POST", f"/v1/models/{MODEL}:predict", {"foo": 1}, 400,
                               ["instances", "inputs"]),
    "both formats": ("POST", f"/v1/models/{MODEL}:predict", {"instances": [1], "inputs": [1]},
                     400, ["exactly one"]),
    "string for a number": ("POST", f"/v1/models/{MODEL}:predict",
                            {"signature_name": "serving_raw",
                             "instances": [dict(example_rows(1)[0], Gr_Liv_Area="big")]},
                            400, ["Gr_Liv_Area", "float32"]),
    "fraction for an int64": ("POST", f"/v1/models/{MODEL}:predict",
                              {"signature_name": "serving_raw",
                               "instances": [dict(example_rows(1)[0], Year_Built=1999.5)]},
                              400, ["Year_Built", "int64"]),
    "number for a string": ("POST", f"/v1/models/{MODEL}:predict",
                            {"signature_name": "serving_raw",
                             "instances": [dict(example_rows(1)[0], Neighborhood=3)]},
                            400, ["Neighborhood", "string"]),
    "missing feature": ("POST", f"/v1/models/{MODEL}:predict",
                        {"signature_name": "serving_raw",
                         "inputs": {k: v.tolist() for k, v in _raw(drop="Lot_Area").items()}},
                        400, ["missing", "Lot_Area"]),
    "instances disagree": ("POST", f"/v1/models/{MODEL}:predict",
                           {"signature_name": "serving_raw",
                            "instances": [example_rows(1)[0], {"Gr_Liv_Area": 1.0}]},
                           400, ["instance 1"]),
    "ragged": ("POST", f"/v1/models/{MODEL}:predict",
               {"inputs": {"examples": [[_b64(b"a")], []]}}, 400, ["ragged"]),
    "bad base64": ("POST", f"/v1/models/{MODEL}:predict", {"instances": [{"b64": "%%%"}]},
                   400, ["base64"]),
    "garbage example": ("POST", f"/v1/models/{MODEL}:predict",
                        {"instances": [_b64(b"\x00garbage\xff")]}, 400, ["parse"]),
    "unknown model": ("POST", "/v1/models/nope:predict", {"instances": [_b64(b"")]}, 404,
                      ["nope"]),
    "unknown version": ("POST", f"/v1/models/{MODEL}/versions/5:predict",
                        {"instances": [_b64(b"")]}, 404, ["5"]),
    "unknown signature": ("POST", f"/v1/models/{MODEL}:predict",
                          {"signature_name": "nope", "instances": [_b64(b"")]}, 404, ["nope"]),
    "status of unknown model": ("GET", "/v1/models/nope", None, 404, ["nope"]),
    "status of unknown version": ("GET", f"/v1/models/{MODEL}/versions/3", None, 404, ["3"]),
    "metadata of unknown version": ("GET", f"/v1/models/{MODEL}/versions/3/metadata", None, 404,
                                    ["3"]),
    "non-numeric version": ("GET", f"/v1/models/{MODEL}/versions/x", None, 400, ["version"]),
    "malformed path": ("GET", "/v1/modelz", None, 400, ["Malformed"]),
    "classify": ("POST", f"/v1/models/{MODEL}:classify", {"examples": []}, 501, ["classify"]),
    "regress": ("POST", f"/v1/models/{MODEL}:regress",
                {"examples": [example_rows(1)[0]]}, 501, ["regress", ":predict"]),
}


@pytest.mark.parametrize("case", sorted(REST_CASES))
def test_rest_errors(case, server, still_serving):
  method, path, body, status, words = REST_CASES[case]
  kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
  r = requests.request(method, server.rest_url + path, timeout=30, **kwargs)
  assert r.status_code == status, r.text
  assert r.headers["Content-Type"] == "application/json"
  error = r.json()["error"]
  for w in words:
    assert w in error, (w, error)
  still_serving()


def test_rest_body_over_size_limit(server, still_serving):
  body = b'{"instances": ["' + b"x" * (MAX_REQUEST_BYTES + 10) + b'"]}'
  r = requests.post(f"{server.rest_url}/v1/models/{MODEL}:predict", data=body, timeout=30)
  assert r.status_code == 413
  assert "exceeds" in r.json()["error"]
  still_serving()
  ok = requests.get(f"{server.rest_url}/v1/models/{MODEL}", timeout=30)
  assert ok.status_code == 200
