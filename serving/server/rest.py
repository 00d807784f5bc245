"""TF Serving's REST API (/v1/models/...) on the standard library's ThreadingHTTPServer.

Same paths, JSON shapes and status mapping as tensorflow_model_server's REST front end:
row ("instances" -> "predictions") and columnar ("inputs" -> "outputs") predict, model status,
metadata, and error bodies {"error": "..."}. Bodies above max_request_bytes get 413 unread.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from serving import json_codec
from serving.server.errors import INTERNAL_MESSAGE, ServingError, invalid, too_large
from serving.server.grpc_service import model_status
from serving.server.model_manager import ModelRegistry
from serving.server.servable import Servable

log = logging.getLogger(__name__)

_PREDICT = re.compile(r"/v1/models/([^/:]+)(?:/versions/([^/:]+))?:(predict|regress|classify)",
                      re.IGNORECASE)
_STATUS = re.compile(r"/v1/models/([^/:]+)(?:/versions/([^/:]+))?(/metadata)?", re.IGNORECASE)
_DRAIN_CHUNK = 1 << 20


def _version(text: Optional[str]) -> Optional[int]:
  if text is None:
    return None
  if not text.isdigit():
    raise invalid(f"Failed to convert version: {text} to numeric.")
  return int(text)


def _model_spec(name: str, version: Optional[int]) -> model_pb2.ModelSpec:
  spec = model_pb2.ModelSpec(name=name)
  if version is not None:
    spec.version.value = version
  return spec


def _to_dict(message) -> Dict[str, Any]:
  return json_format.MessageToDict(message, including_default_value_fields=True,
                                   preserving_proto_field_name=True)


class RestApi:
  """Request routing and the JSON <-> tensor work; independent of the HTTP plumbing."""

  def __init__(self, registry: ModelRegistry, max_batch_rows: int = 10_000):
    self.registry = registry
    self.max_batch_rows = max_batch_rows

  def handle(self, method: str, path: str, body: bytes) -> Tuple[int, Any]:
    """(HTTP status, JSON-able body) for one request; errors become {"error": ...}."""
    try:
      return 200, self._route(method, path, body)
    except ServingError as e:
      log.info("%s %s -> %d: %s", method, path, e.http_status, e.message)
      return e.http_status, {"error": e.message}
    except Exception as e:  # pylint: disable=broad-except
      log.exception("%s %s failed", method, path)
      return 500, {"error": INTERNAL_MESSAGE}

  def _route(self, method: str, path: str, body: bytes) -> Any:
    m = _PREDICT.fullmatch(path)
    if method == "POST" and m:
      name, version, verb = m.group(1), _version(m.group(2)), m.group(3).lower()
      if verb != "predict":
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"{verb} is not supported by the development server; use :predict")
      return self.predict(name, version, body)
    m = _STATUS.fullmatch(path)
    if method == "GET" and m:
      name, version = m.group(1), _version(m.group(2))
      if m.group(3):
        return self.metadata(name, version)
      return _to_dict(model_status(self.registry, _model_spec(name, version)))
    raise invalid(f"Malformed request: {method} {path}")

  def metadata(self, name: str, version: Optional[int]) -> Dict[str, Any]:
    with self.registry.get(name).acquire(version) as servable:
      sig_map = get_model_metadata_pb2.SignatureDefMap()
      for k, v in servable.signature_defs.items():
        sig_map.signature_def[k].CopyFrom(v)
      spec = _model_spec(name, servable.version)
      spec.signature_name = ""
    return {"model_spec": _to_dict(spec), "metadata": {"signature_def": _to_dict(sig_map)}}

  def predict(self, name: str, version: Optional[int], body: bytes) -> Dict[str, Any]:
    try:
      request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
      raise invalid(f"JSON Parse error: {e}") from None
    except RecursionError:  # arbitrarily deep nesting: a bad body, not a server fault
      raise invalid("JSON Parse error: nesting too deep") from None
    if not isinstance(request, dict):
      raise invalid("request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in request) == ("inputs" in request):
      raise invalid("request must have exactly one of 'instances' (row format) or 'inputs' "
                    "(columnar format)")
    sig_name = request.get("signature_name", "")
    if not isinstance(sig_name, str):
      raise invalid("'signature_name' must be a string")
    row_format = "instances" in request
    self._check_rows(request["instances"] if row_format else request["inputs"], row_format)
    with self.registry.get(name).acquire(version) as servable:
      signature = servable.resolve(sig_name)
      columns = (_columns_from_instances(servable, signature, request["instances"]) if row_format
                 else _columns_from_inputs(servable, signature, request["inputs"]))
      specs = servable.check_input_names(signature, columns)
      try:
        arrays = {k: json_codec.to_ndarray(k, columns[k], specs[k].dtype.as_numpy_dtype)
                  for k in specs}
      except json_codec.JsonTensorError as e:
        raise invalid(str(e)) from None
      outputs = servable.run(signature, arrays)
    return _rows(outputs) if row_format else _columnar(outputs)


  def _check_rows(self, payload: Any, row_format: bool) -> None:
    """413 for more rows than --max_batch_rows, counted before any tensor is built."""
    if row_format:
      rows = [len(payload)] if isinstance(payload, list) else []
    elif isinstance(payload, dict) and not json_codec.is_b64(payload):
      rows = [len(v) for v in payload.values() if isinstance(v, list)]
    else:
      rows = [len(payload)] if isinstance(payload, list) else []
    n = max(rows, default=0)
    if n > self.max_batch_rows:
      raise too_large(f"request holds {n} rows; the limit is {self.max_batch_rows} rows per "
                      "request (--max_batch_rows)")


def _single_input(servable: Servable, signature: str, what: str) -> str:
  specs = servable.input_specs[signature]
  if len(specs) != 1:
    raise invalid(f"signature '{signature}' has {len(specs)} inputs {sorted(specs)}: {what} must "
                  "be objects keyed by input name")
  return next(iter(specs))


def _is_named(value: Any) -> bool:
  return isinstance(value, dict) and not json_codec.is_b64(value)


def _columns_from_instances(servable: Servable, signature: str, instances: Any) -> Dict[str, Any]:
  """Row format: a list of per-example objects (or bare values for one-input signatures)."""
  if not isinstance(instances, list) or not instances:
    raise invalid("'instances' must be a non-empty list")
  named = [_is_named(i) for i in instances]
  if not any(named):
    return {_single_input(servable, signature, "instances"): instances}
  if not all(named):
    raise invalid("'instances' mixes named objects and bare values")
  keys = set(instances[0])
  for i, inst in enumerate(instances):
    if set(inst) != keys:
      diff = sorted(set(inst) ^ keys)
      raise invalid(f"instance {i} has different inputs than instance 0 (differ in {diff})")
  return {k: [inst[k] for inst in instances] for k in keys}


def _columns_from_inputs(servable: Servable, signature: str, inputs: Any) -> Dict[str, Any]:
  """Columnar format: {"inputs": {name: batch}} or, for one-input signatures, the batch itself."""
  if _is_named(inputs):
    return dict(inputs)
  return {_single_input(servable, signature, "'inputs'"): inputs}


def _rows(outputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
  if len(outputs) == 1:
    (k, v), = outputs.items()
    return {"predictions": json_codec.from_ndarray(k, v)}
  sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
  if None in sizes.values() or len(set(sizes.values())) != 1:
    raise invalid(f"outputs have inconsistent batch sizes {sizes}; use the columnar 'inputs' "
                  "format")
  columns = {k: json_codec.from_ndarray(k, v) for k, v in outputs.items()}
  n = next(iter(sizes.values()))
  return {"predictions": [{k: col[i] for k, col in columns.items()} for i in range(n)]}


def _columnar(outputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
  if len(outputs) == 1:
    (k, v), = outputs.items()
    return {"outputs": json_codec.from_ndarray(k, v)}
  return {"outputs": {k: json_codec.from_ndarray(k, v) for k, v in outputs.items()}}


class _Handler(BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
  server_version = "grouped-regression-dev-serving"

  def setup(self):
    self.timeout = self.server.limits.idle_timeout_seconds  # idle or stalled: closed
    super().setup()
    # Headers and body go out as separate writes; with Nagle on, a keep-alive client's delayed
    # ACK would add ~40 ms to every response.
    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

  def do_GET(self):  # noqa: N802 (http.server naming)
    self._reply(*self.server.api.handle("GET", urlsplit(self.path).path, b""))

  def do_POST(self):  # noqa: N802
    body = self._read_body()
    if body is not None:
      self._reply(*self.server.api.handle("POST", urlsplit(self.path).path, body))

  def _read_body(self) -> Optional[bytes]:
    if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
      self._reply(411, {"error": "chunked bodies are not supported; send Content-Length"},
                  close=True)
      return None
    raw = self.headers.get("Content-Length")
    if raw is None or not raw.strip().isdigit():
      self._reply(411, {"error": "a POST needs a valid Content-Length header"}, close=True)
      return None
    length, limit = int(raw), self.server.limits.max_request_bytes
    if length > limit:
      self._reply(413, {"error": f"request body of {length} bytes exceeds the limit of {limit} "
                                 "bytes (--max_request_bytes)"}, close=True)
      self._drain(min(length, 4 * limit))
      return None
    body = self.rfile.read(length)
    if len(body) != length:
      self.close_connection = True
      return None
    return body

  def _drain(self, n: int) -> None:
    """Reads (a bounded part of) an oversized body so the client sees the 413, not a reset."""
    try:
      self.connection.settimeout(5)
      while n > 0:
        chunk = self.rfile.read(min(n, _DRAIN_CHUNK))
        if not chunk:
          break
        n -= len(chunk)
    except (OSError, socket.timeout):
      pass

  def _reply(self, status: int, payload: Any, close: bool = False) -> None:
    try:
      data = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except ValueError:  # a non-finite output: JSON has no NaN; never send an invalid body
      status, data = 500, b'{"error":"the model returned a non-finite value"}'
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    if close:
      self.send_header("Connection", "close")
      self.close_connection = True
    self.end_headers()
    self.wfile.write(data)
    self.wfile.flush()

  def log_message(self, fmt, *args):  # per-request access log only at DEBUG
    log.debug("%s %s", self.address_string(), fmt % args)


class _Server(HTTPServer):
  """An HTTP server with a bounded handler pool and a bounded number of open connections.

  ThreadingHTTPServer starts one thread per connection with no cap (300 stalled connections
  made 318 threads). Here `rest_workers` threads serve connections; up to `max_connections`
  may be open (the rest wait in the pool's queue); beyond that a connection gets 503 and is
  closed at once. Each connection is closed after `idle_timeout_seconds` without a request.
  """
  allow_reuse_address = True
  request_queue_size = 64

  def __init__(self, address, handler, limits):
    super().__init__(address, handler)
    self.limits = limits
    self._pool = futures.ThreadPoolExecutor(max_workers=limits.rest_workers,
                                            thread_name_prefix="rest")
    self._open = threading.BoundedSemaphore(limits.max_connections)

  def process_request(self, request, client_address):
    if not self._open.acquire(blocking=False):
      try:
        request.sendall(_BUSY)
      except OSError:
        pass
      self.shutdown_request(request)
      return
    self._pool.submit(self._serve, request, client_address)

  def _serve(self, request, client_address):
    try:
      self.finish_request(request, client_address)
    except Exception:  # pylint: disable=broad-except
      self.handle_error(request, client_address)
    finally:
      self.shutdown_request(request)
      self._open.release()

  def close_pool(self) -> None:
    self._pool.shutdown(wait=False, cancel_futures=True)

  def handle_error(self, request, client_address):  # dropped/stalled connections: not news
    log.debug("connection from %s ended with an error", client_address, exc_info=True)


_BUSY_BODY = b'{"error":"too many open connections; retry later"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n"
         + _BUSY_BODY)


def make_http_server(registry: ModelRegistry, host: str, port: int, limits) -> HTTPServer:
  server = _Server((host, port), _Handler, limits)
  server.api = RestApi(registry, limits.max_batch_rows)
  return server
