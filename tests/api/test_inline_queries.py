"""Inline queries: selections (keys, key range, all, time range), paging, unpartitioned sides."""

from __future__ import annotations

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb

from .builders import ALL_KEYS, DAILY, WEEKLY, keys, time_window, timestamp
from .conftest import Stubs

AS_OF = timestamp("2024-01-22T00:00:00+00:00")


def daily_of_weeks(stubs: Stubs, selection: pb.PartitionSelection) -> list[str]:
    result = stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            upstream=DAILY, downstream=WEEKLY, selection=selection, as_of=AS_OF, key_paging=ALL_KEYS
        )
    ).result
    return list(result.partitions.partition_keys)


def test_a_key_range_selects_every_key_between(stubs: Stubs) -> None:
    selection = pb.PartitionSelection(
        key_range=pb.KeyRange(first_partition_key="2024-01-07", last_partition_key="2024-01-14")
    )
    assert daily_of_weeks(stubs, selection) == [f"2024-01-{d:02d}" for d in range(7, 21)]


def test_all_selects_every_existing_partition(stubs: Stubs) -> None:
    # Weeks start on Sunday: 2024-01-07 and 2024-01-14 have ended by the 22nd.
    assert daily_of_weeks(stubs, pb.PartitionSelection(all=True)) == [
        f"2024-01-{d:02d}" for d in range(7, 21)
    ]


def test_a_time_range_selects_overlapping_windows(stubs: Stubs) -> None:
    selection = pb.PartitionSelection(
        time_range=pb.TimeRange(
            start_time=timestamp("2024-01-13T12:00:00+00:00"),
            end_time=timestamp("2024-01-14T12:00:00+00:00"),
        )
    )
    assert daily_of_weeks(stubs, selection) == [f"2024-01-{d:02d}" for d in range(7, 21)]


def test_an_unpartitioned_downstream_needs_the_whole_upstream(stubs: Stubs) -> None:
    result = stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            upstream=DAILY, selection=keys(), as_of=AS_OF, key_paging=ALL_KEYS
        )
    ).result
    # Dagster maps an unpartitioned child to every partition of its parent.
    assert not result.whole_asset
    assert result.partitions.count == 21
    assert [(r.first_partition_key, r.last_partition_key) for r in result.partitions.ranges] == [
        ("2024-01-01", "2024-01-21")
    ]


def test_an_unpartitioned_upstream_is_needed_whole(stubs: Stubs) -> None:
    result = stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            downstream=DAILY, selection=keys("2024-01-03"), as_of=AS_OF
        )
    ).result
    assert result.whole_asset


def test_nonexistent_keys_carry_their_state(stubs: Stubs) -> None:
    late_upstream = time_window("0 0 * * *", start="2024-01-10T00:00:00")
    result = stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            upstream=late_upstream,
            downstream=WEEKLY,
            selection=keys("2024-01-07"),
            as_of=AS_OF,
            key_paging=ALL_KEYS,
        )
    ).result
    assert list(result.partitions.partition_keys) == [
        "2024-01-10",
        "2024-01-11",
        "2024-01-12",
        "2024-01-13",
    ]
    assert list(result.required_but_nonexistent.partition_keys) == [
        "2024-01-07",
        "2024-01-08",
        "2024-01-09",
    ]
    states = {status.partition_key: status.state for status in result.nonexistent}
    assert states == dict.fromkeys(
        ("2024-01-07", "2024-01-08", "2024-01-09"), pb.PARTITION_STATE_NEVER
    )


def test_list_partitions_pages_an_inline_definition(stubs: Stubs) -> None:
    request = queries_pb.ListPartitionsRequest(
        source=queries_pb.DefinitionSource(partitions_definition=DAILY), as_of=AS_OF, page_size=8
    )
    listed: list[str] = []
    while True:
        page = stubs.queries.ListPartitions(request)
        assert page.total_size == 21
        assert [(r.first_partition_key, r.last_partition_key, r.count) for r in page.ranges] == [
            ("2024-01-01", "2024-01-21", 21)
        ]
        listed.extend(page.partition_keys)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert listed == [f"2024-01-{d:02d}" for d in range(1, 22)]


def test_dynamic_keys_travel_in_the_request(stubs: Stubs) -> None:
    customers = pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers"))
    result = stubs.queries.ComputeDownstreamPartitions(
        queries_pb.ComputeDownstreamPartitionsRequest(
            upstream=customers,
            downstream=customers,
            selection=keys("globex"),
            as_of=AS_OF,
            dynamic_partitions={
                "customers": pb.DynamicPartitionKeys(partition_keys=["acme", "globex"])
            },
            key_paging=ALL_KEYS,
        )
    ).result
    assert list(result.partitions.partition_keys) == ["globex"]


def test_a_foreign_page_token_is_refused(stubs: Stubs) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stubs.queries.ComputeUpstreamPartitions(
            queries_pb.ComputeUpstreamPartitionsRequest(
                upstream=DAILY,
                downstream=WEEKLY,
                selection=keys("2024-01-07"),
                as_of=AS_OF,
                key_paging=queries_pb.KeyPaging(include_keys=True, page_token="not-a-token!"),
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
