"""The model server: model managers plus the gRPC and REST front ends, started and stopped together."""
from __future__ import annotations

import dataclasses
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
DEFAULT_MAX_BATCH_ROWS = 10_000


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one client can make the server spend: rows, bytes, threads, connections, idle time."""
  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
  max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
  grpc_workers: int = 8            # gRPC handler threads
  max_concurrent_rpcs: int = 64    # more in flight (running + queued): RESOURCE_EXHAUSTED
  rest_workers: int = 16           # REST handler threads (one per open connection being served)
  max_connections: int = 64        # REST connections open at once (more get 503 and a close)
  idle_timeout_seconds: float = 30.0  # a connection idle or stalled this long is closed


class ModelServer:
  """Serves `models` (name -> base path) on gRPC `grpc_port` and REST `rest_port` (0 = any free)."""

  def __init__(self, models: Dict[str, str], host: str = "127.0.0.1", grpc_port: int = 8500,
               rest_port: int = 8501, poll_seconds: float = 1.0, limits: Limits = Limits()):
    self.host = host
    self.registry = ModelRegistry(
        {name: ModelManager(name, path, poll_seconds) for name, path in models.items()})
    self._ports = (grpc_port, rest_port)
    self.limits = limits
    self._grpc: Optional[grpc.Server] = None
    self._http = None
    self._http_thread: Optional[threading.Thread] = None
    self.grpc_port = self.rest_port = None

  def start(self) -> None:
    for manager in self.registry.managers.values():
      manager.start()
    lim = self.limits
    idle_ms = int(lim.idle_timeout_seconds * 1000)
    self._grpc = grpc.server(
        futures.ThreadPoolExecutor(max_workers=lim.grpc_workers, thread_name_prefix="grpc"),
        maximum_concurrent_rpcs=lim.max_concurrent_rpcs,
        options=[("grpc.max_receive_message_length", lim.max_request_bytes),
                 ("grpc.max_send_message_length", -1),
                 ("grpc.so_reuseport", 0),
                 # Idle connections are closed; dead peers are found by keepalive pings.
                 ("grpc.max_connection_idle_ms", idle_ms),
                 ("grpc.keepalive_time_ms", max(idle_ms, 10_000)),
                 ("grpc.keepalive_timeout_ms", 10_000),
                 ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                 ("grpc.http2.max_ping_strikes", 2)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(self.registry, lim.max_batch_rows), self._grpc)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.registry),
                                                              self._grpc)
    try:
      self.grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self._ports[0]}")
    except RuntimeError:  # newer grpcio raises instead of returning 0
      self.grpc_port = 0
    if not self.grpc_port:
      raise OSError(f"cannot bind gRPC to {self.host}:{self._ports[0]} (port in use?)")
    self._grpc.start()
    self._http = make_http_server(self.registry, self.host, self._ports[1], lim)
    self.rest_port = self._http.server_address[1]
    self._http_thread = threading.Thread(target=self._http.serve_forever, name="rest",
                                         daemon=True)
    self._http_thread.start()

  def stop(self, grace: float = 5.0) -> None:
    """Stops accepting requests, lets in-flight ones finish (bounded), unloads the models."""
    if self._http_thread is not None:  # shutdown() would block if serve_forever never ran
      self._http.shutdown()
      self._http.server_close()
      self._http.close_pool()
    if self._grpc is not None:
      self._grpc.stop(grace).wait(grace + 1)
    for manager in self.registry.managers.values():
      manager.stop()
