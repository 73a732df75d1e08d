"""Bearer tokens scoped to namespaces: a server interceptor plus a per-request namespace check.

Configured as JSON `{"<token>": ["namespace", ...]}` (from a file or the environment); `"*"` in
the list grants every namespace. With no token configured, auth is off and no interceptor is
installed. Health and reflection stay open either way.

Flow: the interceptor (on the polling thread) only looks the token up in the call's
`authorization: Bearer <token>` metadata. An unknown or missing token gets a handler that
answers UNAUTHENTICATED; a known one gets the original handler with its behaviour wrapped so
that `granted_namespaces` holds the token's namespaces while the call runs. api/handlers.py
then checks every namespace a parsed request names (`check_namespaces`) and answers
PERMISSION_DENIED for one outside the grant.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from partition_deps.api.errors import ApiError, failure_of, to_status

ALL_NAMESPACES = "*"
# Services under auth; anything else (health, reflection) stays open.
PROTECTED_PREFIX = "/partitiondeps."

# The namespaces the current call's token grants; None: auth is off.
# Thread safety: a ContextVar, set and reset around each call on its own thread.
granted_namespaces: ContextVar[frozenset[str] | None] = ContextVar(
    "granted_namespaces", default=None
)


def _digest(token: str) -> bytes:
    # Looked up by digest, so the comparison time says nothing about a token's prefix.
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """token -> namespaces it grants."""

    def __init__(self, grants: Mapping[str, Iterable[str]]) -> None:
        # Thread safety: filled here, never changed after: a read-only table of frozensets.
        self._grants: dict[bytes, frozenset[str]] = {}
        for token, namespaces in grants.items():
            if not isinstance(token, str) or not token:
                raise ValueError("tokens must be non-empty strings")
            if isinstance(namespaces, str) or not all(isinstance(n, str) for n in namespaces):
                raise ValueError("the grant of a token must be a list of namespace names")
            self._grants[_digest(token)] = frozenset(namespaces)

    def __len__(self) -> int:
        return len(self._grants)

    def namespaces(self, token: str) -> frozenset[str] | None:
        return self._grants.get(_digest(token))

    @classmethod
    def parse(cls, text: str, source: str) -> TokenTable:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{source}: not JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f'{source}: expected {{"token": ["namespace", ...]}}')
        try:
            return cls(data)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def configured(
        cls, tokens_file: Path | None, environ: Mapping[str, str] = os.environ
    ) -> TokenTable | None:
        """From `tokens_file`, else PD_TOKENS_FILE, else PD_TOKENS (inline JSON); None if unset."""
        path = tokens_file or (
            Path(environ["PD_TOKENS_FILE"]) if environ.get("PD_TOKENS_FILE") else None
        )
        if path is not None:
            return cls.parse(path.read_text(), str(path))
        inline = environ.get("PD_TOKENS")
        if inline:
            return cls.parse(inline, "PD_TOKENS")
        return None


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _rejecting(
    handler: grpc.RpcMethodHandler[Any, Any], message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    status = to_status(
        failure_of(
            ApiError(message, reason="UNAUTHENTICATED", code=grpc.StatusCode.UNAUTHENTICATED)
        )
    )

    def reject(_: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(
            reject, handler.request_deserializer, handler.response_serializer
        )
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(
            reject, handler.request_deserializer, handler.response_serializer
        )
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            reject, handler.request_deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        reject, handler.request_deserializer, handler.response_serializer
    )


def _granting(
    handler: grpc.RpcMethodHandler[Any, Any], namespaces: frozenset[str]
) -> grpc.RpcMethodHandler[Any, Any]:
    def wrap(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def granted(request: Any, context: grpc.ServicerContext) -> Any:
            token = granted_namespaces.set(namespaces)
            try:
                return behaviour(request, context)
            finally:
                granted_namespaces.reset(token)

        return granted

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    # Streaming responses are not served by our services; refuse rather than run ungranted.
    return _rejecting(handler, "this method is not available with token auth")


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: TokenTable) -> None:
        self._tokens = tokens

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(PROTECTED_PREFIX):
            return handler
        token = bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            return _rejecting(handler, "a bearer token is required (authorization metadata)")
        namespaces = self._tokens.namespaces(token)
        if namespaces is None:
            return _rejecting(handler, "the bearer token is not valid")
        return _granting(handler, namespaces)


# -- the namespace check, on parsed requests ------------------------------------------------

NamespacePath = tuple[str, ...]


def namespace_paths(descriptor: Any, depth: int = 4) -> list[NamespacePath]:
    """Paths to every `namespace` string field reachable through singular message fields."""
    paths: list[NamespacePath] = []
    for field in descriptor.fields:
        if field.is_repeated:
            continue
        if field.name == "namespace" and field.type == FieldDescriptor.TYPE_STRING:
            paths.append((field.name,))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth > 0:
            paths.extend(
                (field.name, *rest) for rest in namespace_paths(field.message_type, depth - 1)
            )
    return paths


def _namespaces_of(request: Message, paths: list[NamespacePath]) -> Iterable[str]:
    for path in paths:
        message = request
        for name in path[:-1]:
            if not message.HasField(name):
                break
            message = getattr(message, name)
        else:
            yield getattr(message, path[-1])


def check_namespaces(request: Message, paths: list[NamespacePath]) -> None:
    """PERMISSION_DENIED unless the call's token grants every namespace the request names."""
    granted = granted_namespaces.get()
    if granted is None or ALL_NAMESPACES in granted:
        return
    for namespace in _namespaces_of(request, paths):
        # An empty namespace is refused by the servicer as INVALID_ARGUMENT.
        if namespace and namespace not in granted:
            raise ApiError(
                f"the bearer token does not grant namespace {namespace!r}",
                "namespace",
                reason="NAMESPACE_NOT_GRANTED",
                code=grpc.StatusCode.PERMISSION_DENIED,
            )
