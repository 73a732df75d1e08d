"""Every error the service returns, from one table: exception type -> gRPC status and reason.

Each error carries a google.rpc.ErrorInfo whose `reason` is a stable machine-readable category
(for domain errors, the Dagster error category upper-cased, e.g. INVALID_PARTITION_KEY), and
INVALID_ARGUMENT carries a google.rpc.BadRequest field violation naming the request field.
Bad input never becomes INTERNAL; only a bug does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import grpc
import psycopg
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.work import WorkAbandoned
from partition_deps.store import errors as store_errors

logger = logging.getLogger(__name__)

ERROR_DOMAIN = "partitiondeps.v1"


class ApiError(Exception):
    """A request the API layer refuses, with its status: by default a bad argument
    (INVALID_ARGUMENT, reason INVALID_ARGUMENT). `field` is the request path of the input."""

    def __init__(
        self,
        message: str,
        field: str = "",
        *,
        reason: str = "INVALID_ARGUMENT",
        code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    reason: str
    message: str
    field: str = ""


# The table. Order matters only for subclasses: the first matching row wins.
_STORE_ERRORS: tuple[tuple[type[store_errors.StoreError], grpc.StatusCode, str], ...] = (
    (store_errors.NamespaceNotFound, grpc.StatusCode.NOT_FOUND, "NAMESPACE_NOT_FOUND"),
    (store_errors.AssetNotFound, grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND"),
    (store_errors.GenerationMismatch, grpc.StatusCode.ABORTED, "GENERATION_MISMATCH"),
    (store_errors.AssetInUse, grpc.StatusCode.FAILED_PRECONDITION, "ASSET_IN_USE"),
    (store_errors.TickNotFound, grpc.StatusCode.NOT_FOUND, "TICK_NOT_FOUND"),
    (
        store_errors.EvaluationTimeBeforeLastTick,
        grpc.StatusCode.FAILED_PRECONDITION,
        "EVALUATION_TIME_BEFORE_LAST_TICK",
    ),
    (store_errors.TickIdConflict, grpc.StatusCode.ALREADY_EXISTS, "TICK_ID_CONFLICT"),
    (store_errors.StoreUnavailable, grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE"),
    (store_errors.UnstorableValue, grpc.StatusCode.INVALID_ARGUMENT, "UNSTORABLE_VALUE"),
)


def failure_of(error: BaseException) -> Failure:
    """The status an exception becomes."""
    if isinstance(error, ApiError):
        return Failure(error.code, error.reason, error.message, error.field)
    if isinstance(error, PartitionDepsError):
        # Every domain refusal is a bad request: definitions, mappings, keys.
        return Failure(
            grpc.StatusCode.INVALID_ARGUMENT, error.category.upper(), error.message, error.field
        )
    if isinstance(error, store_errors.StoreError):
        for kind, code, reason in _STORE_ERRORS:
            if isinstance(error, kind):
                return Failure(code, reason, error.message, error.field)
    if isinstance(error, DecodeError):
        return Failure(
            grpc.StatusCode.INVALID_ARGUMENT,
            "MALFORMED_REQUEST",
            f"the request body is not a valid message: {error}",
        )
    if isinstance(error, WorkAbandoned):
        return Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", str(error))
    if isinstance(error, psycopg.errors.QueryCanceled):
        return Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "query cancelled")
    if isinstance(error, psycopg.OperationalError):
        return Failure(grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE", str(error))
    logger.exception("unexpected error", exc_info=error)
    return Failure(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error")


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# Errors quote user input (keys, crons, formats); the text travels in gRPC metadata, which
# clients cap at 8 KiB, so a 5,000-character key quoted twice made the client see
# RESOURCE_EXHAUSTED instead of the error. Quotes longer than this keep a prefix.
_QUOTE_CHARACTERS = 100
_MESSAGE_CHARACTERS = 1_000
_LONG = _QUOTE_CHARACTERS + 1
_LONG_QUOTE = re.compile(f"'([^'\\n]{{{_LONG},}})'|\"([^\"\\n]{{{_LONG},}})\"")


def _shortened(quote: re.Match[str]) -> str:
    quoted = quote.group(1) if quote.group(1) is not None else quote.group(2)
    mark = quote.group(0)[0]
    return f"{mark}{quoted[:_QUOTE_CHARACTERS]}{mark}... ({len(quoted):,} characters)"


def bounded_message(message: str) -> str:
    """`message` with long quotes cut to a prefix, and at most `_MESSAGE_CHARACTERS`."""
    message = _LONG_QUOTE.sub(_shortened, message)
    if len(message) > _MESSAGE_CHARACTERS:
        message = message[: _MESSAGE_CHARACTERS - 3] + "..."
    return message


def to_status(failure: Failure) -> grpc.Status:
    message = bounded_message(failure.message)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=failure.reason,
                domain=ERROR_DOMAIN,
                metadata={"field": failure.field} if failure.field else {},
            )
        )
    ]
    if failure.code == grpc.StatusCode.INVALID_ARGUMENT:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=failure.field, description=message
                        )
                    ]
                )
            )
        )
    status = status_pb2.Status(code=failure.code.value[0], message=message, details=details)
    return _RichStatus(
        code=failure.code,
        details=message,
        trailing_metadata=((_DETAILS_KEY, status.SerializeToString()),),
    )


# The trailer that carries a serialised google.rpc.Status: every gRPC rich-error client
# (grpcio-status, Go's status.FromError, connect-es) decodes it.
_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class _RichStatus(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]
