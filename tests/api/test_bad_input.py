"""Every kind of bad input gets its own status and names its field; never INTERNAL.

A rejected apply leaves the store exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.message import Message

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb

from .builders import DAILY, WEEKLY, asset, keys, materialization, time_window, timestamp
from .conftest import MAX_MESSAGE_BYTES, Stubs
from .errors import error_info, field_violations

AS_OF = timestamp("2024-03-01T00:00:00+00:00")
STATIC = pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys=["us", "eu"]))


@dataclass(frozen=True)
class BadInput:
    name: str
    call: Callable[[Stubs, str], Message]
    code: grpc.StatusCode
    reason: str
    field: str


def apply(*assets: defs_pb.Asset) -> Callable[[Stubs, str], Message]:
    def call(stubs: Stubs, namespace: str) -> Message:
        return stubs.definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=assets)
        )

    return call


def upstream_of(
    asset_key: str, *partition_keys: str, namespace: str | None = None
) -> Callable[[Stubs, str], Message]:
    def call(stubs: Stubs, seeded_namespace: str) -> Message:
        return stubs.queries.GetUpstreamPartitions(
            queries_pb.GetUpstreamPartitionsRequest(
                namespace=namespace or seeded_namespace,
                asset_key=asset_key,
                selection=keys(*partition_keys),
                as_of=AS_OF,
            )
        )

    return call


def add_dynamic(*partition_keys: str) -> Callable[[Stubs, str], Message]:
    def call(stubs: Stubs, namespace: str) -> Message:
        return stubs.definitions.AddDynamicPartitions(
            defs_pb.AddDynamicPartitionsRequest(
                namespace=namespace, definition_name="customers", partition_keys=partition_keys
            )
        )

    return call


def oversized(stubs: Stubs, namespace: str) -> Message:
    return stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace,
            definition_name="customers",
            partition_keys=[f"{i:08d}" + "x" * 100 for i in range(MAX_MESSAGE_BYTES // 100)],
        )
    )


def event_for_unknown_asset(stubs: Stubs, namespace: str) -> Message:
    return stubs.events.ReportEvents(
        events_pb.ReportEventsRequest(
            namespace=namespace, events=[materialization("e1", "nope", "2024-01-01")]
        )
    )


def inline_mapping_that_does_not_fit(stubs: Stubs, namespace: str) -> Message:
    return stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            upstream=STATIC,
            downstream=DAILY,
            partition_mapping=pb.PartitionMapping(identity=pb.IdentityMapping()),
            selection=keys("2024-01-02"),
            as_of=AS_OF,
        )
    )


def delete_asset_in_use(stubs: Stubs, namespace: str) -> Message:
    return stubs.definitions.DeleteAsset(
        defs_pb.DeleteAssetRequest(namespace=namespace, asset_key="daily")
    )


def apply_at_a_stale_generation(stubs: Stubs, namespace: str) -> Message:
    return stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace, assets=[asset("extra", DAILY)], expected_generation=0
        )
    )


CASES = [
    BadInput(
        "delete an asset others depend on",
        delete_asset_in_use,
        grpc.StatusCode.FAILED_PRECONDITION,
        "ASSET_IN_USE",
        "asset_key",
    ),
    BadInput(
        "apply at a stale generation",
        apply_at_a_stale_generation,
        grpc.StatusCode.ABORTED,
        "GENERATION_MISMATCH",
        "expected_generation",
    ),
    BadInput(
        "malformed key",
        upstream_of("weekly", "2024-1-7"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PARTITION_KEY",
        "selection",
    ),
    BadInput(
        "unknown asset",
        upstream_of("monthly", "2024-01-07"),
        grpc.StatusCode.NOT_FOUND,
        "ASSET_NOT_FOUND",
        "asset_key",
    ),
    BadInput(
        "unknown namespace",
        upstream_of("weekly", "2024-01-07", namespace="no-such-namespace"),
        grpc.StatusCode.NOT_FOUND,
        "NAMESPACE_NOT_FOUND",
        "namespace",
    ),
    BadInput(
        "unknown upstream asset",
        apply(asset("monthly", DAILY, "nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_UPSTREAM_ASSET",
        "assets[0].dependencies[0].upstream_asset_key",
    ),
    BadInput(
        "dependency cycle",
        apply(asset("a", DAILY, "b"), asset("b", DAILY, "a")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "DEPENDENCY_CYCLE",
        "assets[1].dependencies[0].upstream_asset_key",
    ),
    BadInput(
        "invalid cron",
        apply(asset("bad", time_window("0 0 * * 9"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DEFINITION",
        "assets[0].partitions_definition.time_window",
    ),
    BadInput(
        "unknown time zone",
        apply(asset("bad", time_window("0 0 * * *", timezone="Mars/Olympus_Mons"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DEFINITION",
        "assets[0].partitions_definition.time_window.timezone",
    ),
    BadInput(
        "start not a wall time",
        apply(asset("bad", time_window("0 0 * * *", start="yesterday"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DEFINITION",
        "assets[0].partitions_definition.time_window.start",
    ),
    BadInput(
        "end before start",
        apply(asset("bad", time_window("0 0 * * *", end="2023-01-01T00:00:00"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DEFINITION",
        "assets[0].partitions_definition.time_window.end",
    ),
    BadInput(
        "mapping that does not fit the definitions",
        apply(
            asset("regions", STATIC),
            asset("daily", DAILY, ("regions", pb.PartitionMapping(identity=pb.IdentityMapping()))),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_MAPPING",
        "assets[1].dependencies[0].partition_mapping",
    ),
    BadInput(
        "inline mapping that does not fit the definitions",
        inline_mapping_that_does_not_fit,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_MAPPING",
        "partition_mapping",
    ),
    BadInput(
        "duplicate asset in one apply",
        apply(asset("x", DAILY), asset("x", DAILY)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "DUPLICATE_ASSET",
        "assets[1].asset_key",
    ),
    BadInput(
        "duplicate dynamic key in one request",
        add_dynamic("acme", "globex", "acme"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "DUPLICATE_PARTITION_KEY",
        "partition_keys[2]",
    ),
    BadInput(
        "event for an unknown asset",
        event_for_unknown_asset,
        grpc.StatusCode.NOT_FOUND,
        "ASSET_NOT_FOUND",
        "events[0].materialization.asset_key",
    ),
]


@pytest.fixture
def seeded(stubs: Stubs, namespace: str) -> str:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace, assets=[asset("daily", DAILY), asset("weekly", WEEKLY, "daily")]
        )
    )
    return namespace


def stored_state(stubs: Stubs, namespace: str) -> defs_pb.ListAssetsResponse:
    return stubs.definitions.ListAssets(defs_pb.ListAssetsRequest(namespace=namespace))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_with_its_code_and_field(
    stubs: Stubs, seeded: str, case: BadInput
) -> None:
    before = stored_state(stubs, seeded)
    with pytest.raises(grpc.RpcError) as raised:
        case.call(stubs, seeded)
    error = raised.value
    assert error.code() == case.code, error.details()
    info = error_info(error)
    assert info.reason == case.reason
    assert info.metadata["field"].startswith(case.field), info.metadata["field"]
    if case.code == grpc.StatusCode.INVALID_ARGUMENT:
        [violation] = field_violations(error)
        assert violation.startswith(case.field)
    assert stored_state(stubs, seeded) == before


def test_oversized_request_is_resource_exhausted(stubs: Stubs, seeded: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        oversized(stubs, seeded)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stored_state(stubs, seeded).generation == 1


def test_a_rejected_apply_into_a_new_namespace_creates_nothing(
    stubs: Stubs, namespace: str
) -> None:
    with pytest.raises(grpc.RpcError):
        apply(asset("a", DAILY, "nope"))(stubs, namespace)
    with pytest.raises(grpc.RpcError) as raised:
        stored_state(stubs, namespace)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
