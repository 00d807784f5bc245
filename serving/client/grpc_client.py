"""gRPC client over the real tensorflow-serving-api stubs (works against TF Serving or ours)."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, input_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from serving import tensor_proto
from serving.client import examples as example_codec
from serving.client.errors import NotFoundError, from_grpc
from serving.client.retry import call_with_retries

_STATES = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODES = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name[
    "status"].message_type.fields_by_name["error_code"].enum_type


@dataclasses.dataclass
class Prediction:
  """Outputs of one Predict call and which model version / signature produced them."""
  outputs: Dict[str, np.ndarray]
  version: int
  signature_name: str

  def __getitem__(self, key: str) -> np.ndarray:
    return self.outputs[key]


class GrpcClient:
  """PredictionService + ModelService for one model; retries UNAVAILABLE with backoff."""

  def __init__(self, target: str, model_name: str, timeout: float = 10.0, retries: int = 3,
               backoff: float = 0.1, max_message_bytes: int = 64 << 20):
    self.target, self.model_name = target, model_name
    self.timeout, self.retries, self.backoff = timeout, retries, backoff
    self._channel = grpc.insecure_channel(target, options=[
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes)])
    self.prediction_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    self.model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
    self._input_dtypes: Dict[str, Dict[str, tf.DType]] = {}

  def close(self) -> None:
    self._channel.close()

  def __enter__(self) -> "GrpcClient":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def _call(self, method, request, timeout: Optional[float]):
    def once():
      try:
        return method(request, timeout=timeout or self.timeout)
      except grpc.RpcError as e:
        raise from_grpc(e) from None
    return call_with_retries(once, retries=self.retries, backoff=self.backoff)

  def _spec(self, spec, version: Optional[int], signature_name: str = "") -> None:
    spec.name = self.model_name
    if version is not None:
      spec.version.value = version
    if signature_name:
      spec.signature_name = signature_name

  # --- PredictionService -----------------------------------------------------------------------
  def predict(self, inputs: Mapping[str, Any], signature_name: str = "serving_default",
              version: Optional[int] = None, output_filter: Sequence[str] = (),
              timeout: Optional[float] = None) -> Prediction:
    """Inputs are TensorProtos or array-likes (their numpy dtype is the wire dtype)."""
    request = predict_pb2.PredictRequest()
    self._spec(request.model_spec, version, signature_name)
    for name, value in inputs.items():
      proto = value if isinstance(value, tensor_pb2.TensorProto) else tensor_proto.to_proto(value)
      request.inputs[name].CopyFrom(proto)
    request.output_filter.extend(output_filter)
    response = self._call(self.prediction_stub.Predict, request, timeout)
    return Prediction({k: tf.make_ndarray(v) for k, v in response.outputs.items()},
                      response.model_spec.version.value, response.model_spec.signature_name)

  def predict_examples(self, rows: Sequence[Mapping[str, Any]],
                       signature_name: str = "serving_default", **kwargs) -> Prediction:
    """Raw feature rows as serialized tf.Examples, typed like the `serving_raw` signature."""
    inputs = self.input_dtypes(signature_name)
    if len(inputs) != 1:
      raise ValueError(f"signature '{signature_name}' has inputs {sorted(inputs)}; "
                       "predict_examples needs one serialized-tf.Example input")
    (input_name,) = inputs
    dtypes = self.input_dtypes("serving_raw") if self.has_signature("serving_raw") else None
    serialized = example_codec.serialize(rows, dtypes)
    return self.predict({input_name: np.array(serialized, dtype=object)}, signature_name, **kwargs)

  def predict_raw(self, rows: Sequence[Mapping[str, Any]], signature_name: str = "serving_raw",
                  **kwargs) -> Prediction:
    """Raw feature rows as one tensor per feature, cast to the signature's dtypes."""
    dtypes = self.input_dtypes(signature_name)
    columns = example_codec.columns(rows, dtypes)
    return self.predict(columns, signature_name, **kwargs)

  def regress(self, rows: Sequence[Mapping[str, Any]], signature_name: str = "",
              version: Optional[int] = None, timeout: Optional[float] = None) -> List[float]:
    request = regression_pb2.RegressionRequest()
    self._spec(request.model_spec, version, signature_name)
    dtypes = self.input_dtypes("serving_raw") if self.has_signature("serving_raw") else None
    request.input.CopyFrom(input_pb2.Input(example_list=input_pb2.ExampleList(
        examples=example_codec.rows_to_examples(rows, dtypes))))
    response = self._call(self.prediction_stub.Regress, request, timeout)
    return [r.value for r in response.result.regressions]

  def metadata(self, version: Optional[int] = None,
               timeout: Optional[float] = None) -> get_model_metadata_pb2.SignatureDefMap:
    """The model's SignatureDefMap (GetModelMetadata 'signature_def')."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    self._spec(request.model_spec, version)
    response = self._call(self.prediction_stub.GetModelMetadata, request, timeout)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sig_map)
    return sig_map

  def input_dtypes(self, signature_name: str) -> Dict[str, tf.DType]:
    """Input name -> dtype of a signature (from GetModelMetadata, cached per client)."""
    if signature_name not in self._input_dtypes:
      self.refresh_signatures()
    if signature_name not in self._input_dtypes:
      raise NotFoundError(f"signature '{signature_name}' not in model '{self.model_name}'; "
                          f"it has {sorted(self._input_dtypes)}")
    return self._input_dtypes[signature_name]

  def has_signature(self, signature_name: str) -> bool:
    if not self._input_dtypes:
      self.refresh_signatures()
    return signature_name in self._input_dtypes

  def refresh_signatures(self) -> None:
    """Re-reads the signatures' input dtypes (e.g. after a new model version was pushed)."""
    self._input_dtypes = {k: {n: tf.as_dtype(t.dtype) for n, t in sd.inputs.items()}
                          for k, sd in self.metadata().signature_def.items()}

  # --- ModelService ----------------------------------------------------------------------------
  def status(self, version: Optional[int] = None,
             timeout: Optional[float] = None) -> List[Dict[str, Any]]:
    """[{version, state, error_code, error_message}] like TF Serving's GetModelStatus."""
    request = get_model_status_pb2.GetModelStatusRequest()
    self._spec(request.model_spec, version)
    response = self._call(self.model_stub.GetModelStatus, request, timeout)
    return [{"version": s.version, "state": _STATES.Name(s.state),
             "error_code": _ERROR_CODES.values_by_number[s.status.error_code].name,
             "error_message": s.status.error_message}
            for s in response.model_version_status]
