"""Reading the rich error details of a failed call."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"


def _status(error: grpc.RpcError) -> status_pb2.Status:
    key: str
    value: bytes
    # At run time each metadatum is a (key, value) pair; the stubs declare attributes instead.
    for key, value in error.trailing_metadata() or ():  # type: ignore[misc]
        if key == DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no {DETAILS_KEY} trailer on {error!r}")


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    for detail in _status(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo detail")


def field_violations(error: grpc.RpcError) -> list[str]:
    for detail in _status(error).details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            return [violation.field for violation in bad_request.field_violations]
    return []
