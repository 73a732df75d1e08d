"""The rich error of a failed call: status, message, and the details of its google.rpc.Status."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

# The trailer that carries a serialised google.rpc.Status.
DETAILS_TRAILER = "grpc-status-details-bin"


@dataclass(frozen=True)
class RpcFailure:
    code: grpc.StatusCode
    message: str
    # The ErrorInfo reason and the field it names ("" when the call carried none).
    reason: str
    field: str
    # Every detail as sent (ErrorInfo, BadRequest...).
    details: tuple[any_pb2.Any, ...]

    def describe(self) -> str:
        """One line: status, reason, field and message."""
        parts = [self.code.name]
        if self.reason:
            parts.append(self.reason)
        if self.field:
            parts.append(f"field {self.field}")
        return f"{' '.join(parts)}: {self.message}"


def failure_of(error: grpc.RpcError) -> RpcFailure:
    call: grpc.Call = error  # type: ignore[assignment]  # a failed unary call is also its Call
    details: tuple[any_pb2.Any, ...] = ()
    for key, value in call.trailing_metadata() or ():
        if key == DETAILS_TRAILER and isinstance(value, bytes):
            details = tuple(status_pb2.Status.FromString(value).details)
    reason = field = ""
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason, field = info.reason, info.metadata.get("field", "")
    return RpcFailure(call.code(), call.details() or "", reason, field, details)
