"""Events over gRPC: idempotent batches, the client stream, dynamic partitions."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.store.database import PoolSettings, open_pool

from .builders import DAILY, asset, keys, materialization, timestamp
from .conftest import Stubs


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
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


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
            queries_pb.GetUpstreamPartitionsRequest(
                namespace=namespace,
                asset_key="clean",
                selection=keys("acme"),
                as_of=timestamp("2024-03-01T00:00:00+00:00"),
                key_paging=queries_pb.KeyPaging(include_keys=True),
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
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    listed = stubs.definitions.ListDynamicPartitions(
        defs_pb.ListDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", show_deleted=True
        )
    )
    assert [(p.partition_key, p.HasField("delete_time")) for p in listed.partitions] == [
        ("acme", True),
        ("globex", False),
    ]
