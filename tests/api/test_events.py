"""Events over gRPC: idempotent batches, the client stream, dynamic partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.store.database import PoolSettings, open_pool

from .builders import ALL_KEYS, DAILY, asset, keys, materialization, timestamp, upstream_request
from .conftest import Stubs
from .errors import error_info, field_violations


@pytest.fixture
def registered(stubs: Stubs, namespace: str) -> str:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace, assets=[asset("daily", DAILY), asset("table")]
        )
    )
    return namespace


def stored_events(database_url: str, namespace: str) -> int:
    pool = open_pool(database_url, PoolSettings(min_size=1, max_size=1))
    try:
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM events JOIN namespaces USING (namespace_id) WHERE name = %s",
                (namespace,),
            ).fetchone()
    finally:
        pool.close()
    assert row is not None
    return int(row[0])


def test_a_retried_batch_is_stored_exactly_once(
    stubs: Stubs, registered: str, database_url: str
) -> None:
    batch = events_pb.ReportEventsRequest(
        namespace=registered,
        events=[materialization(f"k{day}", "daily", f"2024-01-{day:02d}") for day in range(1, 11)]
        + [materialization("t1", "table", None)],
    )
    first = stubs.events.ReportEvents(batch, timeout=30)  # a deadline bounds its SQL too
    retried = stubs.events.ReportEvents(batch)
    assert (first.stored_count, first.duplicate_count) == (11, 0)
    assert (retried.stored_count, retried.duplicate_count) == (0, 11)
    assert stored_events(database_url, registered) == 11


def test_the_client_stream_commits_every_batch(
    stubs: Stubs, registered: str, database_url: str
) -> None:
    def batches() -> Iterator[events_pb.StreamEventsRequest]:
        for batch in range(3):
            yield events_pb.StreamEventsRequest(
                namespace=registered,
                events=[
                    materialization(f"s{batch}-{day}", "daily", f"2024-01-{day:02d}")
                    for day in range(1, 6)
                ],
            )
        # A repeated batch: its keys are known, nothing is stored twice.
        yield events_pb.StreamEventsRequest(
            namespace=registered, events=[materialization("s0-1", "daily", "2024-01-01")]
        )

    response = stubs.events.StreamEvents(batches())
    assert (response.stored_count, response.duplicate_count) == (15, 1)
    assert stored_events(database_url, registered) == 15


def test_a_partition_key_on_an_unpartitioned_asset_is_refused(
    stubs: Stubs, registered: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(
                namespace=registered, events=[materialization("x", "table", "2024-01-01")]
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_dynamic_partitions_added_through_the_api_are_queried(stubs: Stubs, namespace: str) -> None:
    customers = pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers"))
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace,
            assets=[asset("raw", customers), asset("clean", customers, "raw")],
        )
    )
    added = stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["acme", "globex"]
        )
    )
    assert added.added_count == 2

    def upstream_of_acme() -> queries_pb.UpstreamPartitions:
        [dependency] = stubs.queries.GetUpstreamPartitions(
            upstream_request(
                namespace,
                "clean",
                keys("acme"),
                as_of=timestamp("2024-03-01T00:00:00+00:00"),
                key_paging=ALL_KEYS,
            )
        ).dependencies
        return dependency

    assert list(upstream_of_acme().partitions.partition_keys) == ["acme"]
    stubs.definitions.DeleteDynamicPartitions(
        defs_pb.DeleteDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["acme"]
        )
    )
    with pytest.raises(grpc.RpcError) as raised:
        upstream_of_acme()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = stubs.definitions.ListDynamicPartitions(
        defs_pb.ListDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", show_deleted=True
        )
    )
    assert [(p.partition_key, p.HasField("delete_time")) for p in listed.partitions] == [
        ("acme", True),
        ("globex", False),
    ]


def _observation(key: str, partition_key: str) -> events_pb.Event:
    return events_pb.Event(
        idempotency_key=key,
        event_time=timestamp("2024-02-01T00:00:00+00:00"),
        observation=events_pb.Observation(asset_key="daily", partition_key=partition_key),
    )


def _run_started(key: str, partition_key: str) -> events_pb.Event:
    return events_pb.Event(
        idempotency_key=key,
        event_time=timestamp("2024-02-01T00:00:00+00:00"),
        run_started=events_pb.RunStarted(
            run_id=key,
            targets=[events_pb.PartitionTarget(asset_key="daily", partition_key=partition_key)],
        ),
    )


@pytest.mark.parametrize(
    "partition_key",
    [
        "2024/01/05",  # another format
        "2023-12-31",  # before the start
        "2099-01-01",  # a window that starts decades after the event
        "garbage",
    ],
)
@pytest.mark.parametrize(
    ("kind", "event", "field"),
    [
        ("materialization", lambda key: materialization("bad", "daily", key), "materialization"),
        ("observation", lambda key: _observation("bad", key), "observation"),
        ("run target", lambda key: _run_started("bad", key), "run_started.targets[0]"),
    ],
)
def test_an_event_for_a_partition_that_did_not_exist_is_refused_and_nothing_is_stored(
    stubs: Stubs,
    registered: str,
    database_url: str,
    partition_key: str,
    kind: str,
    event: Callable[[str], events_pb.Event],
    field: str,
) -> None:
    # They were stored ("stored_count: 1"), though every query refuses such keys.
    good = materialization("good", "daily", "2024-01-05")
    with pytest.raises(grpc.RpcError) as raised:
        stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=registered, events=[good, event(partition_key)])
        )
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_info(error).reason == "INVALID_PARTITION_KEY"
    assert field_violations(error) == [f"events[1].{field}.partition_key"]
    assert stored_events(database_url, registered) == 0


def test_an_event_for_a_window_not_ended_yet_is_stored(
    stubs: Stubs, registered: str, database_url: str
) -> None:
    # Dagster records a run writing today's partition before the day ends (or tomorrow's);
    # the key is a partition once its window ends.
    not_ended = [
        materialization("today", "daily", "2024-02-01", at="2024-02-01T22:40:00+00:00"),
        _observation("seen", "2024-02-01"),
        _run_started("run", "2024-02-02"),
        materialization("tomorrow", "daily", "2024-02-02", at="2024-02-01T22:40:00+00:00"),
    ]
    report = stubs.events.ReportEvents(
        events_pb.ReportEventsRequest(namespace=registered, events=not_ended)
    )
    assert report.stored_count == 4
    assert stored_events(database_url, registered) == 4


def test_an_event_for_a_dynamic_key_never_added_or_deleted_is_refused(
    stubs: Stubs, namespace: str
) -> None:
    customers = pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers"))
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("by_customer", customers)])
    )
    stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["acme", "gone"]
        )
    )
    stubs.definitions.DeleteDynamicPartitions(
        defs_pb.DeleteDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["gone"]
        )
    )
    report = stubs.events.ReportEvents(
        events_pb.ReportEventsRequest(
            namespace=namespace, events=[materialization("ok", "by_customer", "acme")]
        )
    )
    assert report.stored_count == 1
    for index, key in enumerate(["never-added", "gone"]):
        with pytest.raises(grpc.RpcError) as raised:
            stubs.events.ReportEvents(
                events_pb.ReportEventsRequest(
                    namespace=namespace, events=[materialization(f"e{index}", "by_customer", key)]
                )
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "INVALID_PARTITION_KEY"
