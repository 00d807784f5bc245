"""TF Serving's gRPC services (PredictionService, ModelService) over the ModelRegistry.

Registered with the real tensorflow-serving-api servicer base classes, so the generated
`PredictionServiceStub` / `ModelServiceStub` talk to it exactly as to tensorflow_model_server.
"""
from __future__ import annotations

import functools
import logging
from typing import Optional

import grpc
from google.protobuf import any_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from serving.server import tensor_codec
from serving.server.errors import INTERNAL_MESSAGE, ServingError, invalid, too_large
from serving.server.model_manager import ModelRegistry, VersionStatus
from serving.server.servable import REGRESS_METHOD, Servable

log = logging.getLogger(__name__)

_STATE = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODE_BY_NAME = {c.name: c.value[0] for c in grpc.StatusCode}


def _rpc(method):
  """ServingError -> the same gRPC status; anything else -> INTERNAL (and the server lives on)."""
  @functools.wraps(method)
  def wrapper(self, request, context):
    try:
      return method(self, request, context)
    except ServingError as e:
      log.info("%s -> %s: %s", method.__name__, e.code.name, e.message)
      context.abort(e.code, e.message)
    except Exception as e:  # pylint: disable=broad-except
      log.exception("%s failed", method.__name__)
      context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
  return wrapper


def requested_version(model_spec) -> Optional[int]:
  if model_spec.version_label:
    raise invalid(f"version labels are not supported (got '{model_spec.version_label}'); "
                  "use a version number")
  return model_spec.version.value if model_spec.HasField("version") else None


def _fill_spec(out_spec, servable: Servable, signature: str) -> None:
  out_spec.name = servable.model_name
  out_spec.version.value = servable.version
  out_spec.signature_name = signature


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict, GetModelMetadata and (for models with a regress signature) Regress."""

  def __init__(self, registry: ModelRegistry, max_batch_rows: int):
    self.registry = registry
    self.max_batch_rows = max_batch_rows

  @_rpc
  def Predict(self, request, context):
    manager = self.registry.get(request.model_spec.name)
    with manager.acquire(requested_version(request.model_spec)) as servable:
      signature = servable.resolve(request.model_spec.signature_name)
      specs = servable.check_input_names(signature, request.inputs.keys())
      for k in specs:  # before anything is allocated for the tensors
        tensor_codec.check_declared_shape(k, request.inputs[k], specs[k], self.max_batch_rows)
      arrays = {k: tensor_codec.to_ndarray(k, request.inputs[k], specs[k].dtype) for k in specs}
      outputs = servable.run(signature, arrays, request.output_filter)
      response = predict_pb2.PredictResponse()
      _fill_spec(response.model_spec, servable, signature)
    for k, v in outputs.items():
      response.outputs[k].CopyFrom(tensor_codec.to_proto(v))
    return response

  @_rpc
  def GetModelMetadata(self, request, context):
    fields = list(request.metadata_field)
    if not fields:
      raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    unsupported = [f for f in fields if f != "signature_def"]
    if unsupported:
      raise invalid(f"metadata field(s) {unsupported} not supported; only 'signature_def'")
    manager = self.registry.get(request.model_spec.name)
    with manager.acquire(requested_version(request.model_spec)) as servable:
      response = get_model_metadata_pb2.GetModelMetadataResponse()
      _fill_spec(response.model_spec, servable, "")
      sig_map = get_model_metadata_pb2.SignatureDefMap()
      for k, v in servable.signature_defs.items():
        sig_map.signature_def[k].CopyFrom(v)
    packed = any_pb2.Any()
    packed.Pack(sig_map)
    response.metadata["signature_def"].CopyFrom(packed)
    return response

  @_rpc
  def Regress(self, request, context):
    manager = self.registry.get(request.model_spec.name)
    with manager.acquire(requested_version(request.model_spec)) as servable:
      signature = self._regress_signature(servable, request.model_spec.signature_name)
      examples = _serialized_examples(request.input, self.max_batch_rows)
      (input_name,) = servable.input_specs[signature]
      outputs = servable.run(signature, {input_name: examples})
      response = regression_pb2.RegressionResponse()
      _fill_spec(response.model_spec, servable, signature)
    values = outputs.get("outputs", next(iter(outputs.values())))
    if values.ndim == 2 and values.shape[1] == 1:
      values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != len(examples):
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                         f"regress signature '{signature}' returned shape {list(values.shape)}, "
                         f"expected [{len(examples)}] or [{len(examples)}, 1]")
    for v in values.tolist():
      response.result.regressions.add(value=float(v))
    return response

  @staticmethod
  def _regress_signature(servable: Servable, requested: str) -> str:
    """The regress-method signature (TF Serving requires the method_name), else UNIMPLEMENTED."""
    if requested:
      name = servable.resolve(requested)
      candidates = [name] if servable.method_name(name) == REGRESS_METHOD else []
    else:
      regress = [k for k in servable.signature_names if servable.method_name(k) == REGRESS_METHOD]
      candidates = ["serving_default"] if "serving_default" in regress else regress
    if not candidates:
      raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                         f"model '{servable.model_name}' version {servable.version} has no "
                         f"regression signature (method_name {REGRESS_METHOD})"
                         + (f" named '{requested}'" if requested else "") + "; use Predict")
    name = candidates[0]
    specs = servable.input_specs[name]
    if len(specs) != 1:
      raise invalid(f"regress signature '{name}' must have exactly one (string) input")
    return name

  @_rpc
  def Classify(self, request, context):
    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                       "Classify is not supported: the models are regressors; use Predict")

  @_rpc
  def MultiInference(self, request, context):
    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                       "MultiInference is not supported by the development server; use Predict")


def _serialized_examples(input_proto, max_rows: int):
  """Serialized tf.Examples from an Input proto (context features merged into each example)."""
  import numpy as np
  kind = input_proto.WhichOneof("kind")
  if kind is not None:
    n = len(getattr(input_proto, kind).examples)
    if n > max_rows:
      raise too_large(f"RegressionRequest holds {n} examples; the limit is {max_rows} rows per "
                      "request (--max_batch_rows)")
  if kind == "example_list":
    examples = list(input_proto.example_list.examples)
  elif kind == "example_list_with_context":
    ctx = input_proto.example_list_with_context.context
    examples = []
    for e in input_proto.example_list_with_context.examples:
      merged = type(e)()
      merged.CopyFrom(ctx)
      merged.MergeFrom(e)
      examples.append(merged)
  else:
    raise invalid("RegressionRequest.input must hold example_list or example_list_with_context")
  if not examples:
    raise invalid("RegressionRequest.input holds no examples")
  return np.array([e.SerializeToString() for e in examples], dtype=object)


def status_proto(s: VersionStatus) -> get_model_status_pb2.ModelVersionStatus:
  return get_model_status_pb2.ModelVersionStatus(
      version=s.version, state=_STATE.Value(s.state),
      status={"error_code": _ERROR_CODE_BY_NAME[s.error_code.name],
              "error_message": s.error_message})


def model_status(registry: ModelRegistry, model_spec) -> get_model_status_pb2.GetModelStatusResponse:
  """Shared by gRPC GetModelStatus and REST GET /v1/models/<name>[/versions/<v>]."""
  manager = registry.get(model_spec.name)
  version = requested_version(model_spec)
  return get_model_status_pb2.GetModelStatusResponse(
      model_version_status=[status_proto(s) for s in manager.statuses(version)])


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus; config reloads are not supported (the server polls the base path)."""

  def __init__(self, registry: ModelRegistry):
    self.registry = registry

  @_rpc
  def GetModelStatus(self, request, context):
    return model_status(self.registry, request.model_spec)

  @_rpc
  def HandleReloadConfigRequest(self, request, context):
    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                       "config reloads are not supported; new versions are picked up by polling")
