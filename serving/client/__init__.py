"""Clients for TF Serving (or the dev server): gRPC over the real stubs, and REST.

    from serving.client import GrpcClient, RestClient
    GrpcClient("localhost:8500", "ames").predict_examples(rows)["prediction"]
    RestClient("http://localhost:8501", "ames").predict(instances=rows, signature_name="serving_raw")
"""
from serving.client.errors import (DeadlineExceededError, FailedPreconditionError, InternalError,
                                   InvalidArgumentError, NotFoundError, RequestTooLargeError,
                                   ResourceExhaustedError, ServingError, UnavailableError,
                                   UnimplementedError)
from serving.client.grpc_client import GrpcClient, Prediction
from serving.client.rest_client import RestClient

__all__ = [
    "GrpcClient", "RestClient", "Prediction", "ServingError", "InvalidArgumentError",
    "NotFoundError", "ResourceExhaustedError", "RequestTooLargeError", "UnavailableError",
    "DeadlineExceededError", "UnimplementedError", "FailedPreconditionError", "InternalError",
]
