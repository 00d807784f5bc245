"""The model server: model managers plus the gRPC and REST front ends, started and stopped together."""
from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import Dict, Optional

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.server.grpc_service import ModelService, PredictionService
from serving.server.model_manager import ModelManager, ModelRegistry
from serving.server.rest import make_http_server

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 32 << 20


class ModelServer:
  """Serves `models` (name -> base path) on gRPC `grpc_port` and REST `rest_port` (0 = any free)."""

  def __init__(self, models: Dict[str, str], host: str = "127.0.0.1", grpc_port: int = 8500,
               rest_port: int = 8501, poll_seconds: float = 1.0,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, grpc_workers: int = 8):
    self.host = host
    self.registry = ModelRegistry(
        {name: ModelManager(name, path, poll_seconds) for name, path in models.items()})
    self._ports = (grpc_port, rest_port)
    self.max_request_bytes = max_request_bytes
    self._grpc_workers = grpc_workers
    self._grpc: Optional[grpc.Server] = None
    self._http = None
    self._http_thread: Optional[threading.Thread] = None
    self.grpc_port = self.rest_port = None

  def start(self) -> None:
    for manager in self.registry.managers.values():
      manager.start()
    limit = self.max_request_bytes
    self._grpc = grpc.server(
        futures.ThreadPoolExecutor(max_workers=self._grpc_workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", limit),
                 ("grpc.max_send_message_length", -1),
                 ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(self.registry), self._grpc)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.registry),
                                                              self._grpc)
    try:
      self.grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self._ports[0]}")
    except RuntimeError:  # newer grpcio raises instead of returning 0
      self.grpc_port = 0
    if not self.grpc_port:
      raise OSError(f"cannot bind gRPC to {self.host}:{self._ports[0]} (port in use?)")
    self._grpc.start()
    self._http = make_http_server(self.registry, self.host, self._ports[1], limit)
    self.rest_port = self._http.server_address[1]
    self._http_thread = threading.Thread(target=self._http.serve_forever, name="rest",
                                         daemon=True)
    self._http_thread.start()

  def stop(self, grace: float = 5.0) -> None:
    """Stops accepting requests, lets in-flight ones finish (bounded), unloads the models."""
    if self._http_thread is not None:  # shutdown() would block if serve_forever never ran
      self._http.shutdown()
      self._http.server_close()
    if self._grpc is not None:
      self._grpc.stop(grace).wait(grace + 1)
    for manager in self.registry.managers.values():
      manager.stop()
