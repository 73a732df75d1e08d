"""Bearer tokens scoped to namespaces, over a real channel to a server with auth on.

Every method of every service is found from the descriptors, so RPCs added later are covered:
without a token each answers UNAUTHENTICATED; with a token for namespace A, any request that
names namespace B (at any depth, e.g. `source.asset.namespace`) answers PERMISSION_DENIED.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from partition_deps.api.auth import TokenTable, namespace_paths
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    diagnostics_service_pb2,
    events_service_pb2,
    queries_service_pb2,
)
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.server import Server

from .builders import DAILY, asset, keys
from .conftest import raw_unary, serving
from .errors import error_info

TOKEN_A = "token-for-a"
TOKEN_ALL = "token-for-everything"
NAMESPACE_A = "auth-a"
NAMESPACE_B = "auth-b"

METHODS = [
    (service.full_name, method)
    for module in (defs_pb, events_service_pb2, queries_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
ALL_METHODS = [
    *METHODS,
    *(
        (service.full_name, method)
        for service in diagnostics_service_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ),
]
SCOPED = [(service, method) for service, method in METHODS if namespace_paths(method.input_type)]


@pytest.fixture(scope="module")
def auth_server(database_url: str) -> Iterator[Server]:
    tokens = TokenTable({TOKEN_A: [NAMESPACE_A], TOKEN_ALL: ["*"]})
    with serving(database_url, workers=4, tokens=tokens) as server:
        yield server


@pytest.fixture(scope="module")
def channel(auth_server: Server) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(f"127.0.0.1:{auth_server.port}")
    yield channel
    channel.close()


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _call_raw(
    channel: grpc.Channel, service: str, method: Any, body: bytes, metadata: Any = None
) -> bytes:
    path = f"/{service}/{method.name}"
    if method.client_streaming:
        stream: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(
            path, request_serializer=None, response_deserializer=None
        )
        return stream(iter([body]), metadata=metadata, timeout=10)
    return raw_unary(channel, path)(body, metadata=metadata, timeout=10)


def _request_naming(method: Any, namespace: str) -> bytes:
    message = message_factory.GetMessageClass(method.input_type)()
    for path in namespace_paths(method.input_type):
        target = message
        for name in path[:-1]:
            target = getattr(target, name)
        setattr(target, path[-1], namespace)
    return message.SerializeToString()


@pytest.mark.parametrize(("service", "method"), ALL_METHODS, ids=lambda v: getattr(v, "name", v))
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_without_a_valid_token_every_method_is_unauthenticated(
    channel: grpc.Channel, service: str, method: Any, token: str | None
) -> None:
    metadata = _bearer(token) if token else None
    with pytest.raises(grpc.RpcError) as raised:
        _call_raw(channel, service, method, _request_naming(method, NAMESPACE_A), metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(raised.value).reason == "UNAUTHENTICATED"


@pytest.mark.parametrize(("service", "method"), SCOPED, ids=lambda v: getattr(v, "name", v))
def test_a_token_for_one_namespace_is_denied_every_method_of_another(
    channel: grpc.Channel, service: str, method: Any
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _call_raw(channel, service, method, _request_naming(method, NAMESPACE_B), _bearer(TOKEN_A))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(raised.value).reason == "NAMESPACE_NOT_GRANTED"
    assert NAMESPACE_B in (raised.value.details() or "")


def test_every_stored_rpc_is_scoped() -> None:
    # Inline computations carry no namespace, ListNamespaces answers with the granted ones only
    # (tests/web/test_connect.py); everything else reads or writes one.
    unscoped = {method.name for _, method in METHODS} - {method.name for _, method in SCOPED}
    assert unscoped == {
        "ComputeUpstreamPartitions",
        "ComputeDownstreamPartitions",
        "ListNamespaces",
    }


def test_a_token_reads_and_writes_its_own_namespace(channel: grpc.Channel) -> None:
    definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
    definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=NAMESPACE_A, assets=[asset("daily", DAILY)]),
        metadata=_bearer(TOKEN_A),
    )
    got = definitions.GetAsset(
        defs_pb.GetAssetRequest(namespace=NAMESPACE_A, asset_key="daily"),
        metadata=_bearer(TOKEN_A),
    )
    assert got.asset.asset_key == "daily"
    # A granted namespace that does not exist is NOT_FOUND; an ungranted one never says whether.
    with pytest.raises(grpc.RpcError) as raised:
        definitions.GetAsset(
            defs_pb.GetAssetRequest(namespace=NAMESPACE_B, asset_key="daily"),
            metadata=_bearer(TOKEN_A),
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_wildcard_grant_reaches_every_namespace(channel: grpc.Channel) -> None:
    definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
    for namespace in (NAMESPACE_B, "auth-c"):
        definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)]),
            metadata=_bearer(TOKEN_ALL),
        )


def test_inline_queries_need_a_token_but_no_namespace(channel: grpc.Channel) -> None:
    compute = channel.unary_unary(
        "/partitiondeps.v1.QueriesService/ComputeUpstreamPartitions",
        request_serializer=queries_pb.ComputeUpstreamPartitionsRequest.SerializeToString,
        response_deserializer=queries_pb.ComputeUpstreamPartitionsResponse.FromString,
    )
    request = queries_pb.ComputeUpstreamPartitionsRequest(
        upstream=DAILY, downstream=DAILY, selection=keys("2024-01-02")
    )
    response = compute(request, metadata=_bearer(TOKEN_A))
    assert response.result.partitions.ranges[0].first_partition_key == "2024-01-02"


def test_health_and_reflection_stay_open(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    [response] = list(
        reflection.ServerReflectionInfo(  # type: ignore[operator]  # the stubs' method is untyped
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    )
    assert response.list_services_response.service


def test_tokens_come_from_a_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"t1": ["a", "b"]}))
    from_flag = TokenTable.configured(path, environ={})
    from_env_file = TokenTable.configured(None, environ={"PD_TOKENS_FILE": str(path)})
    inline = TokenTable.configured(None, environ={"PD_TOKENS": json.dumps({"t2": ["c"]})})
    assert from_flag is not None
    assert from_flag.namespaces("t1") == frozenset({"a", "b"})
    assert from_env_file is not None
    assert from_env_file.namespaces("t1") == frozenset({"a", "b"})
    assert inline is not None
    assert inline.namespaces("t2") == frozenset({"c"})
    assert TokenTable.configured(None, environ={}) is None
    for bad in ("[]", '{"t": "a"}', '{"": ["a"]}', "not json"):
        with pytest.raises(ValueError, match="PD_TOKENS"):
            TokenTable.configured(None, environ={"PD_TOKENS": bad})


def test_a_bad_tokens_file_stops_the_cli_with_a_message(tmp_path: Path) -> None:
    from partition_deps import cli

    path = tmp_path / "tokens.json"
    path.write_text('{"t": "not a list"}')
    with pytest.raises(SystemExit, match="bearer tokens"):
        cli._tokens(path)
    with pytest.raises(SystemExit, match="bearer tokens"):
        cli._tokens(tmp_path / "missing.json")
