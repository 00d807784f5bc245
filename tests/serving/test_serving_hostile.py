"""Hostile clients against the real dev server (real gRPC stubs, real HTTP, loopback only).

Each case is a defect a probe found: a row-count bomb in a few hundred bytes, NaN/inf inputs,
deeply nested JSON, the internal `__saved_model_init_op` signature, error texts with paths,
stalled connections that each held a thread. Every request loop here is bounded.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from serving.launcher import start_server
from serving.testing_model import example_rows, raw_columns, serialize_rows
from tests.serving.helpers import MODEL, SERVER_ARGS, make_base

ROW_LIMIT = 10_000  # the server's default --max_batch_rows


def _predict_request(inputs, signature=""):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = MODEL
  request.model_spec.signature_name = signature
  for k, v in inputs.items():
    request.inputs[k].CopyFrom(v if isinstance(v, tensor_pb2.TensorProto)
                               else tf.make_tensor_proto(v))
  return request


def _rest(server, body, signature_path=":predict"):
  data = body if isinstance(body, (bytes, str)) else json.dumps(body)
  return requests.post(f"{server.rest_url}/v1/models/{MODEL}{signature_path}", data=data,
                       timeout=30)


# --- row cap --------------------------------------------------------------------------------
def test_row_bomb_in_a_tiny_grpc_request_is_refused_before_allocation(stub, still_serving):
  bomb = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
  bomb.tensor_shape.dim.add(size=1_000_000)
  bomb.string_val.append(serialize_rows(example_rows(1))[0])  # one value, broadcast to 1M rows
  request = _predict_request({"examples": bomb})
  assert request.ByteSize() < 1000
  start = time.monotonic()
  with pytest.raises(grpc.RpcError) as e:
    stub.Predict(request, timeout=30)
  assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert "1000000 rows" in e.value.details() and str(ROW_LIMIT) in e.value.details()
  assert "--max_batch_rows" in e.value.details()
  assert time.monotonic() - start < 5  # refused from the shape, not after building 1M rows
  still_serving()


def test_row_bomb_on_a_float_input_is_refused(stub, still_serving):
  cols = raw_columns(example_rows(1))
  bomb = tf.make_tensor_proto(np.float32(1500.0), dtype=tf.float32, shape=[5_000_000])
  inputs = {k: v for k, v in cols.items()}
  inputs["Gr_Liv_Area"] = bomb
  with pytest.raises(grpc.RpcError) as e:
    stub.Predict(_predict_request(inputs, "serving_raw"), timeout=30)
  assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
  assert "Gr_Liv_Area" in e.value.details()
  still_serving()


def test_rest_row_cap_gives_413_naming_the_limit(server):
  r = _rest(server, {"instances": ["x"] * (ROW_LIMIT + 1)})  # 40 kB, far below the byte limit
  assert r.status_code == 413, r.text
  assert f"{ROW_LIMIT + 1} rows" in r.json()["error"] and "--max_batch_rows" in r.json()["error"]
  r = _rest(server, {"inputs": {"examples": ["x"] * (ROW_LIMIT + 1)}})
  assert r.status_code == 413, r.text
  good = [{"b64": base64.b64encode(e).decode()} for e in serialize_rows(example_rows(3))]
  ok = _rest(server, {"instances": good})
  assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3


# --- non-finite inputs ----------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_tensor_input_is_refused_naming_the_feature(stub, still_serving, bad):
  cols = raw_columns(example_rows(2))
  cols["Lot_Area"] = np.array([bad, 9000.0], np.float32)
  with pytest.raises(grpc.RpcError) as e:
    stub.Predict(_predict_request(cols, "serving_raw"), timeout=20)
  assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert "'Lot_Area'" in e.value.details() and "non-finite" in e.value.details()
  still_serving()


def test_non_finite_value_inside_a_tf_example_is_refused_naming_row_and_feature(stub):
  rows = example_rows(3)
  rows[2]["Longitude"] = float("nan")
  examples = np.array(serialize_rows(rows), dtype=object)
  with pytest.raises(grpc.RpcError) as e:
    stub.Predict(_predict_request({"examples": examples}), timeout=20)
  assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert "row 2" in e.value.details() and "'Longitude'" in e.value.details()


def test_rest_nan_is_400_and_no_body_holds_a_bare_nan(server):
  rows = example_rows(2)
  cols = raw_columns(rows)
  instance = {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in cols.items()}
  instance["Gr_Liv_Area"] = float("nan")
  body = json.dumps({"signature_name": "serving_raw", "instances": [instance]})
  assert "NaN" in body  # Python's json writes the bare token some clients send
  r = _rest(server, body)
  assert r.status_code == 400, r.text
  assert "Gr_Liv_Area" in r.json()["error"]  # the body parses as strict JSON
  json.loads(r.text, parse_constant=lambda c: pytest.fail(f"bare {c} in body"))


# --- malformed JSON -------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_400(server, depth):
  r = _rest(server, "[" * depth + "]" * depth)
  assert r.status_code == 400, r.text
  r = _rest(server, '{"instances": ' + "[" * depth + "]" * depth + "}")
  assert r.status_code == 400, r.text
  assert _rest(server, "{" * depth).status_code == 400


# --- internal signatures --------------------------------------------------------------------
def test_internal_init_op_signature_is_not_callable(stub, server):
  with pytest.raises(grpc.RpcError) as e:
    stub.Predict(_predict_request({}, "__saved_model_init_op"), timeout=20)
  assert e.value.code() == grpc.StatusCode.NOT_FOUND
  r = _rest(server, {"signature_name": "__saved_model_init_op", "instances": [1]})
  assert r.status_code == 404, r.text
  meta = requests.get(f"{server.rest_url}/v1/models/{MODEL}/metadata", timeout=20).json()
  sigs = meta["metadata"]["signature_def"]["signature_def"]
  assert "serving_default" in sigs and not [k for k in sigs if k.startswith("__")]


# --- sanitized errors -----------------------------------------------------------------------
_ABS = re.compile(r"(^|[\s'\"(])/(?!v1/)\w")


def test_failed_load_status_carries_no_absolute_path(tmp_path_factory, models):
  base = make_base(tmp_path_factory, "base_broken", models.v1)
  with start_server(base, MODEL, SERVER_ARGS) as s:
    broken = os.path.join(base, "2")  # a SavedModel whose checkpoint is gone: TF's error
    shutil.copytree(models.v2, broken)  # names the checkpoint by its absolute path
    os.remove(os.path.join(broken, "variables", "variables.index"))
    deadline, status = time.monotonic() + 60, None
    while time.monotonic() < deadline:
      got = requests.get(f"{s.rest_url}/v1/models/{MODEL}/versions/2", timeout=5)
      if got.status_code == 200:
        status = got.json()["model_version_status"][0]
        if status["state"] == "END":
          break
      time.sleep(0.2)
    assert status and status["state"] == "END", (status, s.output())
    message = status["status"]["error_message"]
    assert message.startswith("loading failed"), message
    assert base not in message and not _ABS.search(message), message
    assert "Traceback" not in message and 'File "' not in message


def test_op_errors_carry_no_stack_or_node_context(stub):
  rows = example_rows(2)
  del rows[1]["Gr_Liv_Area"]  # a required feature missing: ParseExample fails in the graph
  with pytest.raises(grpc.RpcError) as e:
    stub.Predict(_predict_request({"examples": np.array(serialize_rows(rows), dtype=object)}),
                 timeout=20)
  details = e.value.details()
  assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  for noise in ("Traceback", 'File "', "[[{{node", "Graph execution error"):
    assert noise not in details, details
  assert not _ABS.search(details), details


# --- stalled connections --------------------------------------------------------------------
def _threads(pid: int) -> int:
  with open(f"/proc/{pid}/status") as f:
    return int(next(ln for ln in f if ln.startswith("Threads:")).split()[1])


def test_stalled_connections_hold_a_bounded_number_of_threads(tmp_path_factory, models):
  workers, max_conn, idle = 4, 16, 2.0
  base = make_base(tmp_path_factory, "base_stall", models.v1)
  args = SERVER_ARGS + ["--rest_workers", str(workers), "--max_connections", str(max_conn),
                        "--idle_timeout_seconds", str(idle)]
  with start_server(base, MODEL, args) as s:
    host, port = s.rest_url.rsplit("/", 1)[-1].split(":")
    requests.get(f"{s.rest_url}/v1/models/{MODEL}", timeout=5)  # pool threads exist now
    before = _threads(s.proc.pid)
    stalled = []
    try:
      for _ in range(200):  # connect, send nothing: each one used to hold a thread forever
        stalled.append(socket.create_connection((host, int(port)), timeout=5))
      time.sleep(0.5)
      during = _threads(s.proc.pid)
      assert during - before <= workers, (before, during)
      # Past the idle timeout the stalled connections are dropped and the server answers again.
      deadline, answered = time.monotonic() + 10 * idle, False
      while time.monotonic() < deadline and not answered:
        try:
          answered = requests.get(f"{s.rest_url}/v1/models/{MODEL}", timeout=5).status_code == 200
        except requests.RequestException:
          pass
        time.sleep(0.2)
      assert answered, s.output()
    finally:
      for c in stalled:
        c.close()
