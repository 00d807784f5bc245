"""Typed client errors: one class per failure a caller may handle, from gRPC codes or HTTP status.

Both transports raise the same classes, so `except NotFoundError` works for gRPC and REST alike.
"""
from __future__ import annotations

from typing import Optional

import grpc


class ServingError(Exception):
  """Base class; `code` is the gRPC status (REST errors mapped like TF Serving maps them)."""
  code = grpc.StatusCode.UNKNOWN

  def __init__(self, message: str, code: Optional[grpc.StatusCode] = None,
               http_status: Optional[int] = None):
    super().__init__(message)
    self.message = message
    if code is not None:
      self.code = code
    self.http_status = http_status
    self.attempts = 1

  def __str__(self) -> str:
    where = f"HTTP {self.http_status}" if self.http_status else self.code.name
    return f"{where}: {self.message}"


class InvalidArgumentError(ServingError):
  code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(ServingError):
  code = grpc.StatusCode.NOT_FOUND


class ResourceExhaustedError(ServingError):
  code = grpc.StatusCode.RESOURCE_EXHAUSTED


class RequestTooLargeError(ResourceExhaustedError):
  """The request exceeded the server's size limit (gRPC message size or HTTP 413)."""


class UnavailableError(ServingError):
  """Server not reachable or not ready: the only error the clients retry."""
  code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(ServingError):
  code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnimplementedError(ServingError):
  code = grpc.StatusCode.UNIMPLEMENTED


class FailedPreconditionError(ServingError):
  code = grpc.StatusCode.FAILED_PRECONDITION


class InternalError(ServingError):
  code = grpc.StatusCode.INTERNAL


_BY_CODE = {c.code: c for c in (InvalidArgumentError, NotFoundError, ResourceExhaustedError,
                                UnavailableError, DeadlineExceededError, UnimplementedError,
                                FailedPreconditionError, InternalError)}
_BY_HTTP = {400: InvalidArgumentError, 404: NotFoundError, 408: DeadlineExceededError,
            411: InvalidArgumentError, 413: RequestTooLargeError, 429: ResourceExhaustedError,
            500: InternalError, 501: UnimplementedError, 502: UnavailableError,
            503: UnavailableError, 504: DeadlineExceededError}


def from_grpc(error: grpc.RpcError) -> ServingError:
  code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
  message = (error.details() if hasattr(error, "details") else None) or str(error)
  cls = _BY_CODE.get(code, ServingError)
  if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in message:
    cls = RequestTooLargeError
  return cls(message, code=code)


def from_http(status: int, message: str) -> ServingError:
  cls = _BY_HTTP.get(status, ServingError)
  return cls(message, http_status=status)
