"""Errors with TF Serving's status codes, and the HTTP codes its REST API maps them to."""

from __future__ import annotations

import grpc

# tensorflow_serving/model_servers/http_rest_api_util.cc: ToHTTPStatusCode
HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """A request the server refuses, with the status TF Serving would answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    @property
    def error_code(self) -> int:
        """The numeric code as in tensorflow.error.Code / StatusProto.error_code."""
        return self.code.value[0]


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


class Admission:
    """How many inference requests may be inside the server at once (both protocols share it, on the
    event loop). Past the limit a request is refused with UNAVAILABLE (503) before its body is parsed:
    under overload the server spends its CPU on requests it can answer in time, not on parsing ones
    that will wait past their deadline."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0

    def __enter__(self) -> "Admission":
        if self.inside >= self.limit:
            raise unavailable(
                f"server overloaded: {self.inside} requests in progress (the limit is {self.limit}); retry later"
            )
        self.inside += 1
        return self

    def __exit__(self, *exc) -> None:
        self.inside -= 1
