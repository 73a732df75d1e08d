"""Seed scenario 1 end to end over gRPC: daily_sales_data -> weekly_sales_summary."""

from __future__ import annotations

from datetime import UTC, datetime

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.server import Server

from .builders import (
    ALL_KEYS,
    SALES,
    WEEKLY,
    downstream_request,
    keys,
    materialization,
    timestamp,
    upstream_request,
)
from .conftest import Stubs

DAYS = [f"2024-01-{day:02d}" for day in range(7, 14)]
AS_OF = timestamp("2024-03-01T00:00:00+00:00")


def register(stubs: Stubs, namespace: str) -> int:
    response = stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace,
            assets=SALES,
        )
    )
    return response.generation


def test_weekly_needs_its_seven_days_and_a_day_feeds_its_week(stubs: Stubs, namespace: str) -> None:
    assert register(stubs, namespace) == 1
    reported = stubs.events.ReportEvents(
        events_pb.ReportEventsRequest(
            namespace=namespace,
            events=[materialization(f"m-{day}", "daily_sales_data", day) for day in DAYS],
        )
    )
    assert (reported.stored_count, reported.duplicate_count) == (7, 0)

    upstream = stubs.queries.GetUpstreamPartitions(
        upstream_request(
            namespace, "weekly_sales_summary", keys("2024-01-07"), as_of=AS_OF, key_paging=ALL_KEYS
        )
    )
    assert upstream.generation == 1
    [dependency] = upstream.dependencies
    assert dependency.upstream_asset_key == "daily_sales_data"
    assert dependency.partition_mapping.WhichOneof("kind") == "time_window"
    assert list(dependency.partitions.partition_keys) == DAYS
    assert dependency.partitions.count == 7
    assert list(dependency.required_but_nonexistent.partition_keys) == []
    [days] = dependency.partitions.ranges
    assert (days.first_partition_key, days.last_partition_key, days.count) == (
        "2024-01-07",
        "2024-01-13",
        7,
    )
    assert days.start_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 7, tzinfo=UTC)
    assert days.end_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 14, tzinfo=UTC)

    downstream = stubs.queries.GetDownstreamPartitions(
        downstream_request(
            namespace, "daily_sales_data", keys("2024-01-09"), as_of=AS_OF, key_paging=ALL_KEYS
        )
    )
    [dependent] = downstream.dependents
    assert dependent.downstream_asset_key == "weekly_sales_summary"
    assert list(dependent.partitions.partition_keys) == ["2024-01-07"]
    [week] = dependent.partitions.ranges
    assert week.start_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 7, tzinfo=UTC)


def test_keys_are_paged_and_ranges_stay_whole(stubs: Stubs, namespace: str) -> None:
    register(stubs, namespace)
    request = upstream_request(
        namespace,
        "weekly_sales_summary",
        keys("2024-01-07", "2024-01-14"),
        as_of=AS_OF,
        key_paging=queries_pb.KeyPaging(include_keys=True, page_size=5),
    )
    pages: list[str] = []
    while True:
        [dependency] = stubs.queries.GetUpstreamPartitions(request).dependencies
        assert dependency.partitions.count == 14
        assert len(dependency.partitions.ranges) == 1
        pages.extend(dependency.partitions.partition_keys)
        if not dependency.next_page_token:
            break
        request.key_paging.page_token = dependency.next_page_token
    assert pages == [f"2024-01-{day:02d}" for day in range(7, 21)]


def test_without_key_paging_only_ranges_are_returned(stubs: Stubs, namespace: str) -> None:
    register(stubs, namespace)
    [dependency] = stubs.queries.GetUpstreamPartitions(
        upstream_request(namespace, "weekly_sales_summary", keys("2024-01-07"), as_of=AS_OF)
    ).dependencies
    assert list(dependency.partitions.partition_keys) == []
    assert dependency.partitions.count == 7


def test_as_of_decides_what_exists(stubs: Stubs, namespace: str) -> None:
    register(stubs, namespace)
    [dependency] = stubs.queries.GetUpstreamPartitions(
        upstream_request(
            namespace,
            "weekly_sales_summary",
            keys("2024-01-07"),
            as_of=timestamp("2024-01-14T00:00:00+00:00"),
            key_paging=ALL_KEYS,
        )
    ).dependencies
    assert list(dependency.partitions.partition_keys) == DAYS


def test_list_partitions_and_time_windows_of_a_stored_asset(stubs: Stubs, namespace: str) -> None:
    register(stubs, namespace)
    source = queries_pb.DefinitionSource(
        asset=queries_pb.AssetReference(namespace=namespace, asset_key="daily_sales_data")
    )
    listed = stubs.queries.ListPartitions(
        queries_pb.ListPartitionsRequest(
            source=source, as_of=timestamp("2024-01-11T00:00:00+00:00"), page_size=4
        )
    )
    assert list(listed.partition_keys) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert listed.total_size == 10
    assert listed.next_page_token
    window = stubs.queries.GetTimeWindow(
        queries_pb.GetTimeWindowRequest(source=source, partition_key="2024-01-09")
    )
    assert window.start_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 9, tzinfo=UTC)
    assert window.end_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 10, tzinfo=UTC)
    key = stubs.queries.GetPartitionKeyForTimestamp(
        queries_pb.GetPartitionKeyForTimestampRequest(
            source=source, timestamp=timestamp("2024-01-09T13:00:00+00:00")
        )
    )
    assert key.partition_key == "2024-01-09"


def test_get_and_list_assets(stubs: Stubs, namespace: str) -> None:
    register(stubs, namespace)
    got = stubs.definitions.GetAsset(
        defs_pb.GetAssetRequest(namespace=namespace, asset_key="weekly_sales_summary")
    )
    assert got.asset.dependencies[0].upstream_asset_key == "daily_sales_data"
    window = got.asset.partitions_definition.time_window
    assert window.cron_schedule == WEEKLY.time_window.cron_schedule
    assert (window.timezone, window.fmt) == ("UTC", "%Y-%m-%d")  # defaults made explicit
    assert not got.asset.dependencies[0].HasField("partition_mapping")  # inferred
    first = stubs.definitions.ListAssets(
        defs_pb.ListAssetsRequest(namespace=namespace, page_size=1)
    )
    second = stubs.definitions.ListAssets(
        defs_pb.ListAssetsRequest(
            namespace=namespace, page_size=1, page_token=first.next_page_token
        )
    )
    assert [a.asset_key for a in (*first.assets, *second.assets)] == [
        "daily_sales_data",
        "weekly_sales_summary",
    ]
    assert not second.next_page_token


def test_stored_queries_read_no_database_while_nothing_changes(
    stubs: Stubs, server: Server, namespace: str
) -> None:
    register(stubs, namespace)
    request = upstream_request(namespace, "weekly_sales_summary", keys("2024-01-07"), as_of=AS_OF)
    stubs.queries.GetUpstreamPartitions(request)  # loads the snapshot once
    cache = server.definitions_cache
    assert cache is not None
    loads = cache.loads
    for _ in range(20):
        stubs.queries.GetUpstreamPartitions(request)
    assert cache.loads == loads
    register(stubs, namespace)  # a change: the next query reads the new generation
    assert stubs.queries.GetUpstreamPartitions(request).generation == 2
    assert cache.loads == loads + 1
