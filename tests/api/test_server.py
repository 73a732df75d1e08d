"""The server as a process component: health, reflection, the empty method, raw bodies."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb
from partition_deps.server import SERVICE_NAMES

from .conftest import Stubs, raw_unary
from .errors import error_info


def test_ping_answers(stubs: Stubs) -> None:
    assert stubs.diagnostics.Ping(diagnostics_pb.PingRequest()) == diagnostics_pb.PingResponse()


@pytest.mark.parametrize("service", ["", "readiness", "liveness", *SERVICE_NAMES])
def test_health_is_serving_once_started(stubs: Stubs, service: str) -> None:
    response = health_pb2_grpc.HealthStub(stubs.channel).Check(  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
        health_pb2.HealthCheckRequest(service=service)
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_every_service(stubs: Stubs) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(stubs.channel)
    [response] = list(
        reflection.ServerReflectionInfo(  # type: ignore[operator]  # the stubs' method is untyped
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    )
    names = {service.name for service in response.list_services_response.service}
    assert set(SERVICE_NAMES) <= names
    assert "grpc.health.v1.Health" in names


def test_a_malformed_body_is_invalid_argument_not_internal(stubs: Stubs) -> None:
    ping = raw_unary(stubs.channel, "/partitiondeps.v1.QueriesService/ComputeUpstreamPartitions")
    with pytest.raises(grpc.RpcError) as raised:
        ping(b"\xff\xff\xff\xff")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).reason == "MALFORMED_REQUEST"
