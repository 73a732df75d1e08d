"""Fuzzing every RPC over a real channel: valid and invalid requests, random and malformed bodies.

The server must never answer INTERNAL or UNKNOWN, and must still be serving afterwards. About
2,000 calls here (deterministic: the Hypothesis profile is derandomised); bench/fuzz_soak.py
runs the same strategies for 100,000.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb
from partition_deps.server import SERVICE_NAMES

from .conftest import Stubs
from .fuzzing import BAD_CODES, Rpc, bodies, outcome, rpcs, seed_events, seed_requests

RPCS = rpcs(SERVICE_NAMES)
# Spread about 2,000 calls over the RPCs.
EXAMPLES_PER_RPC = max(50, 2_100 // len(RPCS))


@pytest.fixture(scope="module")
def seeded(stubs: Stubs) -> Stubs:
    apply, dynamic = seed_requests()
    stubs.definitions.ApplyAssets(apply)
    stubs.definitions.AddDynamicPartitions(dynamic)
    stubs.events.ReportEvents(seed_events())
    return stubs


@pytest.mark.parametrize("rpc", RPCS, ids=[rpc.path.rsplit("/", 2)[-1] for rpc in RPCS])
def test_no_request_is_answered_internal(seeded: Stubs, rpc: Rpc) -> None:
    codes: dict[grpc.StatusCode, int] = {}

    @settings(max_examples=EXAMPLES_PER_RPC, database=None)
    @given(payload=st.data())
    def fuzz(payload: st.DataObject) -> None:
        body = payload.draw(bodies(rpc))
        code = outcome(seeded.channel, rpc, body)
        codes[code] = codes.get(code, 0) + 1
        assert code not in BAD_CODES, f"{rpc.path} answered {code.name} to {body!r}"

    fuzz()
    # Still alive and serving.
    assert seeded.diagnostics.Ping(diagnostics_pb.PingRequest(), timeout=10) is not None
    health = health_pb2_grpc.HealthStub(seeded.channel).Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    # The strategies reach past parsing: some calls succeed, some are refused as bad input.
    assert sum(codes.values()) >= EXAMPLES_PER_RPC
    assert grpc.StatusCode.INVALID_ARGUMENT in codes or grpc.StatusCode.OK in codes
