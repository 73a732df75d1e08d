"""The Connect protocol's unary calls: `POST /<package>.<Service>/<Method>` with a JSON body.

Generic over every unary method of every service of the generated modules: the method is found
in the descriptor pool by the path, the body is read as the request message in proto3 JSON
(or as binary with `application/proto`), and the call is forwarded as bytes over gRPC, so a
method added to a proto file is served without a change here. Errors become Connect's error
JSON with the HTTP status the protocol gives each code, and each detail of the gRPC status
(ErrorInfo, BadRequest) both packed (`value`) and readable (`debug`).
"""

from __future__ import annotations

import base64
import importlib
import json
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from partition_deps.api.gen.partitiondeps import v1 as generated
from partition_deps.client.rpc_errors import RpcFailure, failure_of

SERVED_PACKAGE = "partitiondeps."
JSON = "application/json"
PROTO = "application/proto"

# Connect's HTTP status per code.
HTTP_STATUS = {
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
# As the server's own messages, at most this long.
MESSAGE_CHARACTERS = 1_000
# Detail types shown readable in `debug`.
_READABLE_DETAILS: tuple[type[Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
)


def generated_services() -> list[ServiceDescriptor]:
    """Every service of the generated modules (importing them puts them in the pool)."""
    services: list[ServiceDescriptor] = []
    for module in pkgutil.iter_modules(generated.__path__):
        if module.name.endswith("_pb2"):
            imported = importlib.import_module(f"{generated.__name__}.{module.name}")
            services.extend(imported.DESCRIPTOR.services_by_name.values())
    return services


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    # More headers (name, value).
    headers: tuple[tuple[str, str], ...] = ()


def connect_code(code: grpc.StatusCode) -> str:
    # Connect spells CANCELLED with one L; every other name is the gRPC one in lower case.
    return "canceled" if code == grpc.StatusCode.CANCELLED else code.name.lower()


def _detail_json(detail: any_pb2.Any) -> dict[str, object]:
    shown: dict[str, object] = {
        "type": detail.type_url.rpartition("/")[2],
        "value": base64.b64encode(detail.value).decode().rstrip("="),
    }
    for kind in _READABLE_DETAILS:
        readable = kind()
        if detail.Unpack(readable):
            shown["debug"] = json_format.MessageToDict(readable)
    return shown


def error_answer(failure: RpcFailure) -> Answer:
    body = {
        "code": connect_code(failure.code),
        "message": failure.message,
        "details": [_detail_json(detail) for detail in failure.details],
    }
    return Answer(HTTP_STATUS.get(failure.code, 500), JSON, json.dumps(body).encode())


def malformed(message: str) -> Answer:
    """A body the gateway cannot turn into the request message, as the server says it."""
    message = message[:MESSAGE_CHARACTERS]
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="MALFORMED_REQUEST", domain="partitiondeps.v1"))
    violation = any_pb2.Any()
    violation.Pack(
        error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(description=message)]
        )
    )
    failure = RpcFailure(
        grpc.StatusCode.INVALID_ARGUMENT, message, "MALFORMED_REQUEST", "", (info, violation)
    )
    return error_answer(failure)


def _unserved(path: str, why: str) -> Answer:
    body = {"code": "unimplemented", "message": f"{path}: {why}"}
    return Answer(404, JSON, json.dumps(body).encode())


class ConnectGateway:
    """Answers Connect unary calls by calling the same method over `channel`."""

    def __init__(self, channel: grpc.Channel) -> None:
        generated_services()
        self._channel = channel
        self._pool = descriptor_pool.Default()

    def method(self, path: str) -> MethodDescriptor | None:
        """The unary method at `/<service>/<method>`, if one of ours."""
        service_name, _, method_name = path.strip("/").partition("/")
        if not service_name.startswith(SERVED_PACKAGE):
            return None
        try:
            service = self._pool.FindServiceByName(service_name)
        except KeyError:
            return None
        return service.methods_by_name.get(method_name)

    def call(
        self,
        path: str,
        content_type: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Answer:
        method = self.method(path)
        if method is None:
            return _unserved(path, "no such procedure")
        if method.client_streaming or method.server_streaming:
            return _unserved(path, "a streaming method: call it over gRPC")
        media = content_type.partition(";")[0].strip().lower()
        encoded = _request_bytes(method, media, body)
        if isinstance(encoded, Answer):
            return encoded
        body = encoded
        timeout = headers.get("connect-timeout-ms")
        if timeout is not None and not (timeout.isdigit() and len(timeout) <= 10):
            return malformed("Connect-Timeout-Ms is not a positive integer of at most 10 digits")
        metadata: tuple[tuple[str, str | bytes], ...] = ()
        if "authorization" in headers:
            metadata = (("authorization", headers["authorization"]),)
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=None,
            response_deserializer=None,
        )
        try:
            answer: bytes = call(
                body,
                timeout=int(timeout) / 1000 if timeout is not None else None,
                metadata=metadata,
            )
        except grpc.RpcError as error:
            return error_answer(failure_of(error))
        if media == PROTO:
            return Answer(200, PROTO, answer)
        response = message_factory.GetMessageClass(method.output_type).FromString(answer)
        return Answer(200, JSON, json_format.MessageToJson(response, indent=None).encode())


def _request_bytes(method: MethodDescriptor, media: str, body: bytes) -> bytes | Answer:
    """The request as protobuf bytes, or the answer refusing it."""
    if media not in (JSON, PROTO):
        return Answer(415, "text/plain", b"send application/json or application/proto\n")
    if media == PROTO:
        return body
    request_type = message_factory.GetMessageClass(method.input_type)
    try:
        request = json_format.Parse(body or b"{}", request_type())
    except (json_format.ParseError, UnicodeDecodeError) as error:
        return malformed(f"the body is not a JSON {method.input_type.name}: {error}")
    return request.SerializeToString()
