"""Predictions, metadata and status over real gRPC stubs and real HTTP equal the in-process model."""
from __future__ import annotations

import base64

import numpy as np
import requests
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, predict_pb2)

from serving.client import GrpcClient, RestClient
from serving.testing_model import FEATURES, example_rows, raw_columns, serialize_rows
from tests.serving.helpers import MODEL


def _request(signature="", version=None, **inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = MODEL
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = version
  for k, v in inputs.items():
    request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
  return request


def _outputs(response):
  return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _assert_same(got, want):
  assert sorted(got) == sorted(want)
  for k in want:
    assert np.asarray(got[k]).shape == want[k].shape, k
    assert np.allclose(np.asarray(got[k], dtype=np.float64), want[k].astype(np.float64),
                       rtol=1e-6, atol=1e-6), k


def test_grpc_predict_serving_default_matches_in_process(stub, reference):
  rows = example_rows(100, seed=1)
  examples = np.array(serialize_rows(rows), dtype=object)
  response = stub.Predict(_request(examples=examples), timeout=30)
  assert response.model_spec.name == MODEL
  assert response.model_spec.version.value == 1
  assert response.model_spec.signature_name == "serving_default"
  out = _outputs(response)
  assert out["prediction"].dtype == np.float32 and out["group_id"].dtype == np.int64
  _assert_same(out, reference(1, "serving_default", examples=examples))


def test_grpc_predict_serving_raw_and_transform_features(stub, reference):
  rows = example_rows(7, seed=2)
  cols = raw_columns(rows)
  got = _outputs(stub.Predict(_request("serving_raw", version=1, **cols), timeout=30))
  _assert_same(got, reference(1, "serving_raw", **cols))
  examples = np.array(serialize_rows(rows), dtype=object)
  got = _outputs(stub.Predict(_request("transform_features", examples=examples), timeout=30))
  _assert_same(got, reference(1, "transform_features", examples=examples))


def test_grpc_output_filter(stub, reference):
  examples = np.array(serialize_rows(example_rows(3)), dtype=object)
  request = _request(examples=examples)
  request.output_filter.append("prediction")
  got = _outputs(stub.Predict(request, timeout=30))
  assert list(got) == ["prediction"]
  assert np.allclose(got["prediction"], reference(1, "serving_default",
                                                  examples=examples)["prediction"])


def test_rest_row_format_plain_numbers(server, reference):
  rows = example_rows(5, seed=3)
  r = requests.post(f"{server.rest_url}/v1/models/{MODEL}:predict",
                    json={"signature_name": "serving_raw", "instances": rows}, timeout=30)
  assert r.status_code == 200, r.text
  predictions = r.json()["predictions"]
  want = reference(1, "serving_raw", **raw_columns(rows))
  assert len(predictions) == 5 and set(predictions[0]) == {"prediction", "group_id"}
  _assert_same({k: [p[k] for p in predictions] for k in want}, want)


def test_rest_row_format_b64_examples_and_version_path(server, reference):
  serialized = serialize_rows(example_rows(4, seed=4))
  instances = [{"b64": base64.b64encode(s).decode()} for s in serialized]
  r = requests.post(f"{server.rest_url}/v1/models/{MODEL}/versions/1:predict",
                    json={"instances": instances}, timeout=30)
  assert r.status_code == 200, r.text
  want = reference(1, "serving_default", examples=np.array(serialized, dtype=object))
  _assert_same({k: [p[k] for p in r.json()["predictions"]] for k in want}, want)


def test_rest_columnar_format(server, reference):
  rows = example_rows(6, seed=5)
  cols = {k: v.tolist() for k, v in raw_columns(rows).items()}
  r = requests.post(f"{server.rest_url}/v1/models/{MODEL}:predict",
                    json={"signature_name": "serving_raw", "inputs": cols}, timeout=30)
  assert r.status_code == 200, r.text
  _assert_same(r.json()["outputs"], reference(1, "serving_raw", **raw_columns(rows)))


def test_clients_match_in_process(server, reference):
  rows = example_rows(10, seed=6)
  want = reference(1, "serving_default",
                   examples=np.array(serialize_rows(rows), dtype=object))
  with GrpcClient(server.grpc_target, MODEL, retries=0) as g:
    p = g.predict_examples(rows)
    assert p.version == 1 and p.signature_name == "serving_default"
    _assert_same(p.outputs, want)
    _assert_same(g.predict_raw(rows).outputs, want)
    assert g.input_dtypes("serving_raw") == dict(FEATURES)
  with RestClient(server.rest_url, MODEL, retries=0) as r:
    _assert_same({k: [p[k] for p in r.predict(instances=rows, signature_name="serving_raw")]
                  for k in want}, want)
    out = r.predict(inputs={"examples": serialize_rows(rows)})
    _assert_same(out, want)


def test_metadata_grpc_and_rest_match_saved_model(stub, server, models):
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
  request.model_spec.name = MODEL
  response = stub.GetModelMetadata(request, timeout=30)
  assert response.model_spec.version.value == 1
  sig_map = get_model_metadata_pb2.SignatureDefMap()
  assert response.metadata["signature_def"].Unpack(sig_map)
  sigs = sig_map.signature_def
  assert {"serving_default", "serving_raw", "transform_features"} <= set(sigs)
  assert dict(sigs["serving_default"].inputs)["examples"].dtype == tf.string.as_datatype_enum
  raw_inputs = {k: tf.as_dtype(v.dtype) for k, v in sigs["serving_raw"].inputs.items()}
  assert raw_inputs == dict(FEATURES)
  for name in ("serving_default", "serving_raw"):
    outs = sigs[name].outputs
    assert outs["prediction"].dtype == tf.float32.as_datatype_enum
    assert outs["group_id"].dtype == tf.int64.as_datatype_enum
    assert [d.size for d in outs["prediction"].tensor_shape.dim] == [-1, 1]
  loaded = tf.saved_model.load(models.v1)
  for name, fn in loaded.signatures.items():
    assert set(sigs[name].inputs) == set(fn.structured_input_signature[1])
    assert set(sigs[name].outputs) == set(fn.structured_outputs)

  r = requests.get(f"{server.rest_url}/v1/models/{MODEL}/metadata", timeout=30)
  assert r.status_code == 200, r.text
  body = r.json()
  assert body["model_spec"] == {"name": MODEL, "version": "1", "signature_name": ""}
  assert body["metadata"]["signature_def"] == json_format.MessageToDict(
      sig_map, including_default_value_fields=True, preserving_proto_field_name=True)
  r1 = requests.get(f"{server.rest_url}/v1/models/{MODEL}/versions/1/metadata", timeout=30)
  assert r1.json() == body


def test_status_grpc_and_rest(model_stub, server):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = MODEL
  response = model_stub.GetModelStatus(request, timeout=30)
  (status,) = response.model_version_status
  assert status.version == 1
  assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
  assert status.status.error_code == 0 and status.status.error_message == ""
  want = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                    "status": {"error_code": "OK", "error_message": ""}}]}
  for path in (f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/versions/1"):
    r = requests.get(server.rest_url + path, timeout=30)
    assert r.status_code == 200 and r.json() == want, r.text
  with GrpcClient(server.grpc_target, MODEL) as g:
    assert g.status() == [{"version": 1, "state": "AVAILABLE", "error_code": "OK",
                           "error_message": ""}]
