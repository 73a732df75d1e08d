"""`error_details`: what the server says about a failed call, read from its rich status.

Every error the service returns carries a `google.rpc.Status` in the `grpc-status-details-bin`
trailer with a `google.rpc.ErrorInfo` (a stable `reason` such as INVALID_PARTITION_KEY and, for
bad input, the request `field` in its metadata) and, for INVALID_ARGUMENT, a
`google.rpc.BadRequest` field violation. The trailer is decoded here with a few lines of protobuf
wire reading, so the client needs no googleapis package (whose protobuf pins would raise the
client's floor).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# The one code the client's own policy retries: the server answers it before doing any work.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


@dataclass(frozen=True)
class ErrorDetails:
    code: grpc.StatusCode
    message: str
    # Stable machine-readable category ("" when the status has none, e.g. from a proxy).
    reason: str
    # The request field at fault, in the request's own names ("" when none is named).
    field: str
    # Whether the same call may simply be sent again later.
    retryable: bool


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """The code, message, reason, field and retryability of a failed call."""
    call: Any = error  # a failed call is also a grpc.Call, which the stubs do not say
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    reason = field = ""
    for key, value in call.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        for number, status_field in _fields(value):
            if number != 3 or not isinstance(status_field, bytes):  # Status.details: Any
                continue
            any_fields = dict(_fields(status_field))
            type_url, payload = any_fields.get(1, b""), any_fields.get(2, b"")
            if not isinstance(payload, bytes):
                continue
            if type_url == _ERROR_INFO_TYPE.encode():
                reason, field = _error_info(payload, field)
            elif type_url == _BAD_REQUEST_TYPE.encode() and not field:
                field = _bad_request_field(payload)
    return ErrorDetails(code, message, reason, field, code in RETRYABLE_CODES)


def _error_info(payload: bytes, field: str) -> tuple[str, str]:
    reason = ""
    for number, value in _fields(payload):
        if number == 1 and isinstance(value, bytes):  # ErrorInfo.reason
            reason = value.decode()
        elif number == 3 and isinstance(value, bytes):  # ErrorInfo.metadata entry
            entry = dict(_fields(value))
            if entry.get(1) == b"field" and isinstance(entry.get(2), bytes):
                field = bytes(entry[2]).decode()
    return reason, field


def _bad_request_field(payload: bytes) -> str:
    for number, violation in _fields(payload):
        if number == 1 and isinstance(violation, bytes):  # BadRequest.field_violations
            named = dict(_fields(violation)).get(1, b"")
            if isinstance(named, bytes):
                return named.decode()
    return ""


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field: an int for varints and fixed widths, bytes for
    length-delimited fields. Stops quietly at a malformed tail."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                return
            yield number, data[position : position + length]
            position += length
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            yield number, int.from_bytes(data[position : position + width], "little")
            position += width
        else:
            return


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    return value, len(data)
