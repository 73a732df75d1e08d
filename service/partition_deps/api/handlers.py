"""Registers servicer methods on a grpc server, parsing request bytes ourselves.

grpcio turns an unparseable request into INTERNAL before a servicer runs; registering with
`request_deserializer=None` hands us the bytes, so a malformed body becomes INVALID_ARGUMENT
with details of our own. Every exception is mapped through api/errors.py here, in one place;
timing and logging wrap the behaviour function (not the interceptor, which runs on the
polling thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from partition_deps.api.auth import check_namespaces, namespace_paths
from partition_deps.api.errors import failure_of, to_status
from partition_deps.domain.work import abandoned_when
from partition_deps.store.database import statement_budget

logger = logging.getLogger("partition_deps.access")

# A unary call may answer with bytes already serialized (api/response_memo.py).
UnaryCall = Callable[[Any, grpc.ServicerContext], Message | bytes]
StreamCall = Callable[[Iterator[Any], grpc.ServicerContext], Message]


@dataclass(frozen=True)
class Method:
    """A unary method: one request message, one response message."""

    name: str
    request_type: type[Message]
    call: UnaryCall


@dataclass(frozen=True)
class StreamMethod:
    """A client-streaming method: request messages in, one response message out."""

    name: str
    request_type: type[Message]
    call: StreamCall


def _abort(context: grpc.ServicerContext, method: str, error: BaseException) -> NoReturn:
    failure = failure_of(error)
    if failure.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
        logger.warning(
            "call failed",
            extra={"method": method, "code": failure.code.name, "reason": failure.reason},
        )
    context.abort_with_status(to_status(failure))
    raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover


def _unary(
    full_name: str, method: Method
) -> Callable[[bytes, grpc.ServicerContext], Message | bytes]:
    parse = method.request_type.FromString
    call = method.call
    # Thread safety: built at registration, only read by calls after.
    namespaces = namespace_paths(method.request_type.DESCRIPTOR)

    def behaviour(body: bytes, context: grpc.ServicerContext) -> Message | bytes:
        started = time.perf_counter()
        budget = statement_budget.set(context.time_remaining())
        try:
            request = parse(body)
            check_namespaces(request, namespaces)
            # A call whose deadline passed or whose client cancelled it stops computing.
            with abandoned_when(lambda: not context.is_active()):
                return call(request, context)
        except Exception as error:
            _abort(context, full_name, error)
        finally:
            statement_budget.reset(budget)
            if logger.isEnabledFor(logging.DEBUG):
                elapsed_ms = (time.perf_counter() - started) * 1000
                logger.debug("call", extra={"method": full_name, "elapsed_ms": elapsed_ms})

    return behaviour


def _client_stream(
    full_name: str, method: StreamMethod
) -> Callable[[Iterator[bytes], grpc.ServicerContext], Message]:
    parse = method.request_type.FromString
    call = method.call
    # Thread safety: built at registration, only read by calls after.
    namespaces = namespace_paths(method.request_type.DESCRIPTOR)

    def checked(body: bytes) -> Message:
        request = parse(body)
        check_namespaces(request, namespaces)
        return request

    def behaviour(bodies: Iterator[bytes], context: grpc.ServicerContext) -> Message:
        budget = statement_budget.set(context.time_remaining())
        try:
            with abandoned_when(lambda: not context.is_active()):
                return call((checked(body) for body in bodies), context)
        except Exception as error:
            _abort(context, full_name, error)
        finally:
            statement_budget.reset(budget)

    return behaviour


def add_service(
    server: grpc.Server, service_name: str, methods: list[Method | StreamMethod]
) -> None:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in methods:
        full_name = f"/{service_name}/{method.name}"
        if isinstance(method, StreamMethod):
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(
                _client_stream(full_name, method),
                request_deserializer=None,
                response_serializer=_serialize,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(full_name, method),
                request_deserializer=None,
                response_serializer=_serialize,
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service_name, handlers),))
    # The registered-method path skips the generic-handler lookup on every call.
    server.add_registered_method_handlers(service_name, handlers)


def _serialize(message: Message | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()
