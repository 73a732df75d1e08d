"""Bulk event ingest: idempotency, latest state, runs in progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.events import (
    Materialization,
    Observation,
    PartitionTarget,
    RunFailed,
    RunStarted,
)
from partition_deps.store.events import EventsRepository
from tests.store.conftest import stored_namespace

T0 = datetime(2024, 1, 8, tzinfo=UTC)


@pytest.fixture
def namespace_id(pool: ConnectionPool, namespace: str) -> int:
    return stored_namespace(pool, namespace, [AssetDefinition("daily")], replace_all=False)


def materialization(key: str, partition: str, version: str, run: str = "r1") -> Materialization:
    return Materialization(key, T0, "daily", partition, run, version, "c1")


def test_a_retried_batch_is_stored_once(pool: ConnectionPool, namespace_id: int) -> None:
    events = EventsRepository(pool)
    batch = [materialization(f"m{i}", f"2024-01-0{i}", "v1") for i in range(1, 8)]
    first = events.ingest(namespace_id, batch)
    second = events.ingest(namespace_id, batch)
    assert (first.stored, first.duplicates) == (7, 0)
    assert (second.stored, second.duplicates) == (0, 7)
    assert events.count_events(namespace_id) == 7
    assert len(events.latest_states(namespace_id, "daily")) == 7


def test_latest_state_follows_the_newest_event(pool: ConnectionPool, namespace_id: int) -> None:
    events = EventsRepository(pool)
    events.ingest(namespace_id, [materialization("a", "2024-01-01", "v1")])
    events.ingest(
        namespace_id,
        [
            materialization("b", "2024-01-01", "v2"),
            materialization("c", "2024-01-01", "v3"),
            Observation("d", T0 + timedelta(hours=1), "daily", "2024-01-01", "seen"),
        ],
    )
    [state] = events.latest_states(namespace_id, "daily")
    assert (state.partition_key, state.data_version, state.observed_data_version) == (
        "2024-01-01",
        "v3",
        "seen",
    )


def test_runs_in_progress_until_materialized_or_failed(
    pool: ConnectionPool, namespace_id: int
) -> None:
    events = EventsRepository(pool)
    targets = (PartitionTarget("daily", "2024-01-01"), PartitionTarget("daily", "2024-01-02"))
    events.ingest(namespace_id, [RunStarted("s1", T0, "r1", targets)])
    assert {
        s.partition_key: s.in_progress_run_id for s in events.latest_states(namespace_id, "daily")
    } == {
        "2024-01-01": "r1",
        "2024-01-02": "r1",
    }
    events.ingest(namespace_id, [materialization("m1", "2024-01-01", "v1", run="r1")])
    events.ingest(namespace_id, [RunFailed("f1", T0, "r1", "boom")])
    states = {s.partition_key: s for s in events.latest_states(namespace_id, "daily")}
    assert states["2024-01-01"].in_progress_run_id is None
    assert states["2024-01-01"].run_id == "r1"
    assert states["2024-01-02"].in_progress_run_id is None
    assert states["2024-01-02"].materialization_event_id is None


def test_unpartitioned_assets_have_one_state(pool: ConnectionPool, namespace_id: int) -> None:
    events = EventsRepository(pool)
    events.ingest(namespace_id, [Materialization("u1", T0, "daily", None, "r", "v")])
    [state] = events.latest_states(namespace_id, "daily")
    assert state.partition_key is None
