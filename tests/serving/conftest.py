"""Fixtures: test SavedModels with the pipeline's serving contract, and dev servers over them.

Servers are real subprocesses (`python -m serving.server`) on ephemeral loopback ports.
"""
from __future__ import annotations

import types

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving.launcher import start_server
from serving.testing_model import example_rows, save_test_model, serialize_rows
from tests.serving.helpers import MAX_REQUEST_BYTES, MODEL, SERVER_ARGS, make_base



@pytest.fixture(scope="session")
def models(tmp_path_factory):
  """Exported versions: v1 (contract only), v2 (other weights + a regress-method signature)."""
  root = tmp_path_factory.mktemp("exports")
  v1 = save_test_model(str(root / "v1"), offset=0.0)
  v2 = save_test_model(str(root / "v2"), offset=1.0, with_regress=True)
  return types.SimpleNamespace(v1=v1, v2=v2)


class Reference:
  """The exports called in-process: what the server's answers must equal."""

  def __init__(self, paths):
    self._loaded = {v: tf.saved_model.load(p) for v, p in paths.items()}

  def __call__(self, version: int, signature: str, **inputs):
    fn = self._loaded[version].signatures[signature]
    specs = fn.structured_input_signature[1]
    out = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="session")
def reference(models):
  return Reference({1: models.v1, 2: models.v2})


@pytest.fixture(scope="session")
def server(tmp_path_factory, models):
  """One server for the read-only tests: model 'ames' version 1, 1 MB request limit."""
  base = make_base(tmp_path_factory, "base_main", models.v1)
  with start_server(base, MODEL, SERVER_ARGS) as s:
    s.base_path = base
    yield s


@pytest.fixture(scope="session")
def channel(server):
  ch = grpc.insecure_channel(server.grpc_target,
                             options=[("grpc.max_send_message_length", 8 * MAX_REQUEST_BYTES)])
  yield ch
  ch.close()


@pytest.fixture(scope="session")
def stub(channel):
  return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def model_stub(channel):
  return model_service_pb2_grpc.ModelServiceStub(channel)


@pytest.fixture
def still_serving(stub):
  """Call after a bad request: the server must answer a good one right after."""
  def check():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["examples"].CopyFrom(
        tf.make_tensor_proto(np.array(serialize_rows(example_rows(2)), dtype=object)))
    response = stub.Predict(request, timeout=20)
    assert tf.make_ndarray(response.outputs["prediction"]).shape == (2, 1)
  return check
