"""Request limits over a real channel: each refusal has its code and names the limit."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.message import Message

from partition_deps.api import limits
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb

from .builders import DAILY, asset, time_window, timestamp
from .conftest import MAX_MESSAGE_BYTES, Stubs, raw_unary
from .errors import error_info

AS_OF = timestamp("2026-01-01T00:00:00+00:00")
MINUTELY_2025 = time_window("* * * * *", "2025-06-01T00:00:00", fmt="%Y-%m-%d-%H:%M")
FIVE_MINUTES_2025 = time_window("*/5 * * * *", "2025-06-01T00:00:00", fmt="%Y-%m-%d-%H:%M")
MINUTELY_1990 = time_window("* * * * *", "1990-01-01T00:00:00", fmt="%Y-%m-%d-%H:%M")


def _inline(selection: pb.PartitionSelection, upstream: pb.PartitionsDefinition = DAILY) -> Call:
    def call(stubs: Stubs, namespace: str) -> Message:
        return stubs.queries.ComputeUpstreamPartitions(
            queries_pb.ComputeUpstreamPartitionsRequest(
                upstream=upstream, downstream=upstream, selection=selection, as_of=AS_OF
            )
        )

    return call


Call = Callable[[Stubs, str], Message]

CASES: list[tuple[str, Call, grpc.StatusCode, str, int]] = [
    (
        "explicit keys",
        _inline(pb.PartitionSelection(keys=pb.PartitionKeys(partition_keys=["k"] * 100_001))),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "SELECTION_TOO_LARGE",
        limits.MAX_KEYS_PER_REQUEST,
    ),
    (
        "all partitions expanded",
        _inline(pb.PartitionSelection(all=True), MINUTELY_2025),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "SELECTION_TOO_LARGE",
        limits.MAX_KEYS_PER_REQUEST,
    ),
    (
        "definition too large to tabulate",
        _inline(pb.PartitionSelection(all=True), MINUTELY_1990),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "DEFINITION_TOO_LARGE",
        limits.MAX_DEFINITION_PARTITIONS,
    ),
    (
        "range expansion",
        _inline(
            pb.PartitionSelection(
                key_range=pb.KeyRange(
                    first_partition_key="2025-06-01-00:00", last_partition_key="2025-06-01-00:05"
                )
            ),
            MINUTELY_2025,
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RANGE_TOO_LARGE",
        limits.MAX_RANGE_EXPANSION,
    ),
    (
        "page size",
        lambda stubs, namespace: stubs.definitions.ListAssets(
            defs_pb.ListAssetsRequest(namespace=namespace, page_size=limits.MAX_PAGE_SIZE + 1)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "PAGE_SIZE_TOO_LARGE",
        limits.MAX_PAGE_SIZE,
    ),
    (
        "events per request",
        lambda stubs, namespace: stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=[events_pb.Event()] * 50_001)
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_EVENTS",
        limits.MAX_EVENTS_PER_REQUEST,
    ),
    (
        "dynamic keys per request",
        lambda stubs, namespace: stubs.definitions.AddDynamicPartitions(
            defs_pb.AddDynamicPartitionsRequest(
                namespace=namespace, definition_name="d", partition_keys=["k"] * 100_001
            )
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_KEYS",
        limits.MAX_KEYS_PER_REQUEST,
    ),
    (
        "assets per request",
        lambda stubs, namespace: stubs.definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("a")] * 10_001)
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_ASSETS",
        limits.MAX_ASSETS_PER_REQUEST,
    ),
]


@pytest.mark.parametrize(
    ("call", "code", "reason", "limit"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_request_over_a_limit_is_refused_naming_it(
    stubs: Stubs, namespace: str, call: Call, code: grpc.StatusCode, reason: str, limit: int
) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)])
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(stubs, namespace)
    error = raised.value
    assert error.code() == code
    assert error_info(error).reason == reason
    assert str(limit) in (error.details() or "")


def test_a_request_over_the_message_size_is_refused_naming_it(stubs: Stubs) -> None:
    compute = raw_unary(stubs.channel, "/partitiondeps.v1.QueriesService/ComputeUpstreamPartitions")
    with pytest.raises(grpc.RpcError) as raised:
        compute(b"\n" + b"\x00" * (MAX_MESSAGE_BYTES + 10))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_MESSAGE_BYTES) in (raised.value.details() or "")


def test_just_under_the_limits_is_served(stubs: Stubs) -> None:
    # 61,000 partitions to scan for a time range: within the limits.
    response = _inline(
        pb.PartitionSelection(
            time_range=pb.TimeRange(
                start_time=timestamp("2025-06-01T00:00:00+00:00"),
                end_time=timestamp("2025-06-01T00:25:00+00:00"),
            )
        ),
        FIVE_MINUTES_2025,
    )(stubs, "")
    assert isinstance(response, queries_pb.ComputeUpstreamPartitionsResponse)
    assert response.result.partitions.count == 5
