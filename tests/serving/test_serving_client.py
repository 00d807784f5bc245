"""The client library and CLI: typed errors, deadlines, retries on UNAVAILABLE only."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from serving.client import (DeadlineExceededError, GrpcClient, InvalidArgumentError,
                            NotFoundError, RequestTooLargeError, RestClient, UnavailableError,
                            UnimplementedError)
from serving.client.__main__ import main as cli_main
from serving.client.retry import call_with_retries
from serving.launcher import REPO_ROOT
from serving.testing_model import example_rows
from tests.serving.helpers import MAX_REQUEST_BYTES, MODEL


@pytest.fixture
def closed_port():
  """A loopback port nobody listens on."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_typed_errors_over_grpc(server):
  with GrpcClient(server.grpc_target, MODEL, retries=2, backoff=0.01) as client:
    with pytest.raises(InvalidArgumentError) as info:
      client.predict({"examples": np.zeros(2, np.float32)})
    assert info.value.attempts == 1 and "examples" in info.value.message
    with pytest.raises(NotFoundError):
      client.predict({"examples": np.array([b""], dtype=object)}, version=42)
    with pytest.raises(RequestTooLargeError):
      client.predict({"examples": np.array([b"x" * (MAX_REQUEST_BYTES + 1)], dtype=object)})
    with pytest.raises(UnimplementedError):
      client.regress(example_rows(1))
    with pytest.raises(DeadlineExceededError) as info:
      client.predict_examples(example_rows(1), timeout=1e-6)
    assert info.value.attempts == 1
  with GrpcClient(server.grpc_target, "nope", retries=0) as client:
    with pytest.raises(NotFoundError) as info:
      client.status()
    assert "nope" in str(info.value)


def test_typed_errors_over_rest(server):
  with RestClient(server.rest_url, MODEL, retries=2, backoff=0.01) as client:
    with pytest.raises(InvalidArgumentError) as info:
      client.predict(instances=[{"Gr_Liv_Area": "big"}], signature_name="serving_raw")
    assert info.value.http_status == 400 and info.value.attempts == 1
    with pytest.raises(NotFoundError) as info:
      client.status(version=42)
    assert info.value.http_status == 404
    with pytest.raises(RequestTooLargeError) as info:
      client.predict(instances=[b"x" * MAX_REQUEST_BYTES])
    assert info.value.http_status == 413


def test_unavailable_is_retried_with_backoff(closed_port):
  with GrpcClient(f"127.0.0.1:{closed_port}", MODEL, retries=2, backoff=0.01,
                  timeout=5) as client:
    with pytest.raises(UnavailableError) as info:
      client.status()
  assert info.value.attempts == 3
  with RestClient(f"http://127.0.0.1:{closed_port}", MODEL, retries=2, backoff=0.01) as client:
    with pytest.raises(UnavailableError) as info:
      client.status()
  assert info.value.attempts == 3


def test_retry_policy():
  calls, sleeps = [], []

  def flaky():
    calls.append(1)
    if len(calls) < 3:
      raise UnavailableError("not yet")
    return "ok"

  assert call_with_retries(flaky, retries=3, backoff=0.1, sleep=sleeps.append) == "ok"
  assert len(calls) == 3 and len(sleeps) == 2
  assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2  # exponential, jittered

  def bad():
    calls.append(1)
    raise InvalidArgumentError("no")

  calls.clear()
  with pytest.raises(InvalidArgumentError):
    call_with_retries(bad, retries=3, sleep=sleeps.append)
  assert len(calls) == 1


def _cli(capsys, *argv):
  code = cli_main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_cli_predict_status_metadata(server, capsys, tmp_path):
  rows = example_rows(3, seed=21)
  csv_path = tmp_path / "rows.csv"
  header = list(rows[0]) + ["Sale_Price"]  # extra columns are ignored
  csv_path.write_text("\n".join([",".join(header)] + [
      ",".join(str(r[k]) for k in rows[0]) + ",123456" for r in rows]) + "\n")
  grpc_args = ["--grpc", server.grpc_target, "--model", MODEL]
  rest_args = ["--rest", server.rest_url, "--model", MODEL]

  code, out, _ = _cli(capsys, *grpc_args, "predict", "--csv", str(csv_path), "--rows", "2")
  assert code == 0
  via_examples = json.loads(out)
  assert via_examples["model_spec"]["version"] == 1
  assert np.array(via_examples["outputs"]["prediction"]).shape == (2, 1)

  code, out, _ = _cli(capsys, *rest_args, "predict", "--signature", "serving_raw",
                      "--json", json.dumps(rows[:2]))
  assert code == 0
  via_raw = [p["prediction"] for p in json.loads(out)["predictions"]]
  assert np.allclose(via_raw, via_examples["outputs"]["prediction"])

  code, out, _ = _cli(capsys, *rest_args, "predict", "--csv", str(csv_path), "--format",
                      "columns")
  assert code == 0 and np.array(json.loads(out)["outputs"]["prediction"]).shape == (3, 1)

  code, out, _ = _cli(capsys, *rest_args, "status")
  assert code == 0 and json.loads(out)["model_version_status"][0]["state"] == "AVAILABLE"
  code, out, _ = _cli(capsys, *grpc_args, "metadata")
  assert code == 0 and "serving_raw" in json.loads(out)["signature_def"]

  code, _, err = _cli(capsys, "--grpc", server.grpc_target, "--model", "nope", "status")
  assert code == 1 and "NotFoundError" in err


def test_cli_entry_point_runs_as_module(server):
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_USE_LEGACY_KERAS="1")
  result = subprocess.run(
      [sys.executable, "-m", "serving.client", "--grpc", server.grpc_target, "--config",
       "configs/ames.yaml", "predict", "--json", json.dumps(example_rows(1)[0])],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout)["model_spec"]["name"] == MODEL


@pytest.fixture
def flaky_http_server():
  """A real HTTP server on loopback: 503 for the first `fail` requests, then 200 with a status
  body; records every request path."""
  import http.server  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top

  state = {"fail": 2, "paths": []}

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
      state["paths"].append(self.path)
      if len(state["paths"]) <= state["fail"]:
        code, body = 503, {"error": "model is loading"}
      else:
        code, body = 200, {"model_version_status": [{"version": "1", "state": "AVAILABLE"}]}
      data = json.dumps(body).encode()
      self.send_response(code)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):  # quiet
      pass

  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
  yield state
  httpd.shutdown()
  httpd.server_close()


def test_rest_client_retries_http_503_then_succeeds(flaky_http_server):
  with RestClient(flaky_http_server["url"], MODEL, retries=3, backoff=0.01) as client:
    status = client.status()
  assert status["model_version_status"][0]["state"] == "AVAILABLE"
  assert flaky_http_server["paths"] == [f"/v1/models/{MODEL}"] * 3   # 503, 503, 200

  flaky_http_server["paths"].clear()
  flaky_http_server["fail"] = 10   # more 503s than retries: UnavailableError after 1 + 2 tries
  with RestClient(flaky_http_server["url"], MODEL, retries=2, backoff=0.01) as client:
    with pytest.raises(UnavailableError) as info:
      client.status()
  assert info.value.attempts == 3 and info.value.http_status == 503
  assert len(flaky_http_server["paths"]) == 3
