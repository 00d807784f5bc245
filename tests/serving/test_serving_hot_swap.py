"""A version copied into the base path is loaded and swapped in while clients keep calling:
zero failed requests, every answer equal to the in-process output of the version that gave it."""
from __future__ import annotations

import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import input_pb2, regression_pb2

from tests.serving.helpers import MODEL, SERVER_ARGS, make_base
from serving.client import GrpcClient, NotFoundError, RestClient
from serving.client import examples as example_codec
from serving.launcher import start_server
from serving.testing_model import FEATURES, example_rows, serialize_rows

MAX_REQUESTS_PER_CLIENT = 20000  # a safety bound; the test stops the loops after the swap
DEADLINE_SECONDS = 90


@pytest.fixture(scope="module")
def swap_server(tmp_path_factory, models):
  base = make_base(tmp_path_factory, "base_swap", models.v1)
  with start_server(base, MODEL, SERVER_ARGS) as s:
    s.base_path = base
    yield s


def _wait(predicate, what: str, server, timeout: float = 60.0):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return
    time.sleep(0.05)
  raise AssertionError(f"timed out waiting for {what}\nserver output:\n{server.output()}")


def _states(server):
  with RestClient(server.rest_url, MODEL, retries=0) as r:
    return {int(s["version"]): s["state"] for s in r.status()["model_version_status"]}


class ClientLoop(threading.Thread):
  """Calls predict until stopped (or bounded); records answers and any failure."""

  def __init__(self, call, expected):
    super().__init__(daemon=True)
    self.call, self.expected = call, expected
    self.stop = threading.Event()
    self.seen, self.failures = [], []

  def run(self):
    for _ in range(MAX_REQUESTS_PER_CLIENT):
      if self.stop.is_set():
        return
      try:
        version, prediction = self.call()
        matches = [v for v, want in self.expected.items()
                   if (version in (None, v)) and np.allclose(prediction, want, atol=1e-5)]
        if not matches:
          self.failures.append(f"answer from version {version} matches no version: "
                               f"{prediction.ravel()}")
        self.seen.append(matches[0] if matches else None)
      except Exception as e:  # pylint: disable=broad-except
        self.failures.append(repr(e))


def test_new_version_is_swapped_in_without_failed_requests(swap_server, models, reference):
  rows = example_rows(3, seed=11)
  examples = np.array(serialize_rows(rows), dtype=object)
  expected = {v: reference(v, "serving_default", examples=examples)["prediction"] for v in (1, 2)}
  assert not np.allclose(expected[1], expected[2])

  grpc_client = GrpcClient(swap_server.grpc_target, MODEL, retries=0, timeout=20)
  rest_client = RestClient(swap_server.rest_url, MODEL, retries=0, timeout=20)

  def grpc_call():
    p = grpc_client.predict({"examples": examples})
    return p.version, p["prediction"]

  def rest_call():
    out = rest_client.predict(inputs={"examples": list(examples)})
    return None, np.array(out["prediction"], np.float32)

  with pytest.raises(grpc.RpcError) as info:  # v1 has no regress signature
    grpc_client.prediction_stub.Regress(regression_pb2.RegressionRequest(
        model_spec={"name": MODEL}), timeout=20)
  assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED

  loops = [ClientLoop(grpc_call, expected), ClientLoop(rest_call, expected)]
  for loop in loops:
    loop.start()
  try:
    _wait(lambda: all(loop.seen.count(1) >= 10 for loop in loops), "answers from v1",
          swap_server)
    # Not atomic, like the Pusher's copy: the server must wait for a complete version.
    shutil.copytree(models.v2, os.path.join(swap_server.base_path, "2"))
    _wait(lambda: all(loop.seen.count(2) >= 20 for loop in loops) and
          _states(swap_server) == {1: "END", 2: "AVAILABLE"}, "v2 serving and v1 unloaded",
          swap_server, timeout=DEADLINE_SECONDS)
  finally:
    for loop in loops:
      loop.stop.set()
    for loop in loops:
      loop.join(timeout=30)
  for loop in loops:
    assert loop.failures == [], loop.failures[:5]
    first_v2 = loop.seen.index(2)
    assert set(loop.seen[:first_v2]) == {1} and set(loop.seen[first_v2:]) == {2}

  assert grpc_client.predict({"examples": examples}).version == 2
  with pytest.raises(NotFoundError):
    grpc_client.predict({"examples": examples}, version=1)
  # v2 brought a regress-method signature: Regress now works and agrees with Predict.
  dtypes = dict(FEATURES)
  request = regression_pb2.RegressionRequest(model_spec={"name": MODEL})
  request.input.CopyFrom(input_pb2.Input(example_list=input_pb2.ExampleList(
      examples=example_codec.rows_to_examples(rows, dtypes))))
  response = grpc_client.prediction_stub.Regress(request, timeout=20)
  assert response.model_spec.version.value == 2
  assert response.model_spec.signature_name == "regress"
  assert np.allclose([r.value for r in response.result.regressions], expected[2].ravel())
  assert np.allclose(grpc_client.regress(rows), expected[2].ravel())
  grpc_client.close()
  rest_client.close()


def test_removed_version_rolls_back_to_the_previous_one(swap_server, models, reference):
  with GrpcClient(swap_server.grpc_target, MODEL, retries=0) as client:
    before = client.predict_examples(example_rows(1)).version
    new = before + 1
    staging = os.path.join(swap_server.base_path, f".staging-{new}")  # not a version name
    shutil.copytree(models.v1, staging)
    os.rename(staging, os.path.join(swap_server.base_path, str(new)))
    _wait(lambda: _states(swap_server).get(new) == "AVAILABLE", f"v{new}", swap_server)
    shutil.rmtree(os.path.join(swap_server.base_path, str(new)))
    _wait(lambda: _states(swap_server).get(before) == "AVAILABLE"
          and _states(swap_server).get(new) == "END", f"rollback to v{before}", swap_server)
    rows = example_rows(4, seed=12)
    p = client.predict_examples(rows)
    assert p.version == before
    want = reference(before, "serving_default",
                     examples=np.array(serialize_rows(rows), dtype=object))
    assert np.allclose(p["prediction"], want["prediction"])
