"""One error type for both front ends: a gRPC status code plus a message that names the problem.

TF Serving maps its status codes to HTTP statuses the same way for every REST call; keeping the
mapping here means gRPC and REST clients see the same failure for the same bad request.
"""
from __future__ import annotations

import re

import grpc

# As TF Serving's REST front end maps them (model_servers/http_server.cc, ToHTTPStatusCode).
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
# TF error codes are the canonical gRPC code numbers.
_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}

MAX_MESSAGE_CHARS = 600


class ServingError(Exception):
  """A request failed with `code`; `message` is what the client sees."""

  def __init__(self, code: grpc.StatusCode, message: str, http: int = 0):
    message = sanitize(message)
    super().__init__(message)
    self.code = code
    self.message = message
    self._http = http

  @property
  def http_status(self) -> int:
    return self._http or http_status(self.code)


def http_status(code: grpc.StatusCode) -> int:
  return _HTTP_STATUS.get(code, 500)


def invalid(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.NOT_FOUND, message)


def too_large(message: str) -> ServingError:
  """A request over a size limit: RESOURCE_EXHAUSTED on gRPC, 413 on REST (as for bodies)."""
  return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http=413)


INTERNAL_MESSAGE = "internal error while serving the request (details in the server log)"
_ABS_PATH = re.compile(r"(?<![\w.:/])/(?!v1/)(?:[^\s'\"(),;:]+/)*[^\s'\"(),;:]*")
_STACK_LINE = re.compile(r"^\s*(Traceback \(most recent call last\)|File \"|at |During handling)")


def sanitize(message: str) -> str:
  """What a client may see: no stack lines and no absolute paths of the server's disk."""
  lines = [ln for ln in str(message).splitlines() if not _STACK_LINE.match(ln)]
  return _ABS_PATH.sub("<path>", " ".join(ln.strip() for ln in lines if ln.strip()))


_TF_NOISE = re.compile(r"\s*(\[\[\{\{node [^}]*\}\}\]\]|\[Op:[^\]]*\])")


def from_tf_error(e: Exception, where: str) -> ServingError:
  """A tf.errors.OpError raised while running a signature (e.g. unparsable tf.Example).

  TF wraps the op's message in "Graph execution error:", node and stack context; the op's own
  message (the last line that is not node context like "[[{{node ParseExample}}]]") is what
  names the problem.
  """
  code = _BY_NUMBER.get(getattr(e, "error_code", 2), grpc.StatusCode.UNKNOWN)
  text = _TF_NOISE.sub("", getattr(e, "message", None) or str(e))
  lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
  lines = [ln for ln in lines if not ln.startswith(
      ("Graph execution error", "Detected at node", "<stack traces", "File \"", "[["))]
  message = lines[-1] if lines else text.strip()
  return ServingError(code, f"{where}: {message[:MAX_MESSAGE_CHARS]}")
