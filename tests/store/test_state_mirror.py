"""The in-memory copies of latest states: caught up exactly to each answer's snapshot.

Each test compares the answer read through the copies (large-ask path, forced with
`mirror_min_keys=0`) with the domain rules over plain index lookups in the same snapshot.
"""

from __future__ import annotations

import gc
import threading
import weakref
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import Evaluation
from partition_deps.domain.events import Materialization
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.staleness import PartitionStatus, Status
from partition_deps.store.events import EventsRepository
from partition_deps.store.staleness import (
    MIRROR_MIN_KEYS,
    StalenessEngine,
    StalenessReader,
    StalenessRepository,
)
from partition_deps.store.state_mirror import Snapshot, array_text, load_assets
from tests.domain.definitions import DAILY
from tests.store.conftest import stored_namespace

AT = Evaluation(datetime(2024, 1, 11, tzinfo=UTC))
GRAPH = {
    "up": AssetDefinition("up", DAILY),
    "down": AssetDefinition("down", DAILY, None, (Dependency("up"),)),
}
KEYS: list[str | None] = list(all_partitions(DAILY, AT))  # 2024-01-01 .. 2024-01-10
T0 = datetime(2024, 1, 11, tzinfo=UTC)


def test_snapshot_visibility() -> None:
    earlier = Snapshot.parse("100:105:100,103")
    assert [xid for xid in range(98, 107) if earlier.sees(xid)] == [98, 99, 101, 102, 104]
    # Later: 100 finished, 103 still running, 105-107 began (106 running).
    later = Snapshot.parse("103:108:103,106")
    assert later.sees_all_of(earlier)
    assert not earlier.sees_all_of(later)
    # 101 was seen by `earlier` but is unfinished here: impossible in Postgres, and refused.
    assert not Snapshot.parse("101:108:101").sees_all_of(earlier)
    assert earlier.sees_all_of(earlier)
    assert Snapshot.parse("7:7:") == Snapshot(7, 7, frozenset())


def test_array_text_prints_as_postgres_does(pool: ConnectionPool) -> None:
    cases = [
        [],
        ["plain", "daily_1", "a.b/c-d:e"],
        ["", "NULL", "null", "Null", "nullish", "with space", "tab\there", "new\nline"],
        ['quote"d', "back\\slash", "{brace}", "com,ma", "é ü", "x\x0by", "x\x0cy", "x\ry"],
    ]
    with pool.connection() as conn:
        for values in cases:
            row = conn.execute("SELECT %s::text[]::text", (values,)).fetchone()
            assert row is not None
            assert array_text(values) == row[0], values


def _setup(pool: ConnectionPool, namespace: str) -> int:
    namespace_id = stored_namespace(pool, namespace, GRAPH.values(), replace_all=True)
    events = [
        Materialization(f"{asset}-{key}", T0, asset, key, "run", "v1")
        for asset in ("up", "down")
        for key in KEYS
        if key is not None
    ]
    EventsRepository(pool).ingest(namespace_id, events)
    return namespace_id


def _answer(reader: StalenessReader) -> dict[int, PartitionStatus]:
    """The answer through the copies, checked against the domain rules in the same snapshot."""
    mirrored = StalenessEngine(GRAPH, reader, AT, mirror_min_keys=0).statuses("down", KEYS)
    expected = StalenessEngine(GRAPH, reader, AT, set_based=False).statuses("down", KEYS)
    assert mirrored == expected
    return mirrored


def _stale_keys(answer: dict[int, PartitionStatus]) -> list[str | None]:
    return [KEYS[p] for p, status in sorted(answer.items()) if status.status is Status.STALE]


def test_a_copy_catches_up_on_what_committed_since(pool: ConnectionPool, namespace: str) -> None:
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool)
    assert repository.mirror is not None
    with repository.reading(namespace_id) as reader:
        assert _answer(reader) == {}
    loaded = repository.mirror.rows_read
    assert loaded == 2 * len(KEYS)
    # The very next transaction: its id is the copy's xmin (nothing else ran in between).
    EventsRepository(pool).ingest(
        namespace_id, [Materialization("again", T0, "up", "2024-01-03", "run", "v2")]
    )
    with repository.reading(namespace_id) as reader:
        assert _stale_keys(_answer(reader)) == ["2024-01-03"]
    assert repository.mirror.rows_read == loaded + 1  # the changed row only
    # The same data version again: re-read, and not stale for it.
    EventsRepository(pool).ingest(
        namespace_id, [Materialization("same", T0, "up", "2024-01-05", "run", "v1")]
    )
    with repository.reading(namespace_id) as reader:
        assert _stale_keys(_answer(reader)) == ["2024-01-03"]
    assert repository.mirror.rows_read == loaded + 2


def test_an_answer_over_many_partitions_reads_the_copies_for_its_small_assets(
    pool: ConnectionPool, namespace: str
) -> None:
    namespace_id = _setup(pool, namespace)
    EventsRepository(pool).ingest(
        namespace_id, [Materialization("again", T0, "up", "2024-01-03", "run", "v2")]
    )
    repository = StalenessRepository(pool)
    with repository.reading(namespace_id) as reader:
        expected = StalenessEngine(GRAPH, reader, AT, set_based=False).statuses("down", KEYS)
        # Ten keys each, below MIRROR_MIN_KEYS: a query, unless the whole answer is large.
        alone = StalenessEngine(GRAPH, reader, AT).statuses("down", KEYS)
        assert repository.mirror.rows_read == 0
        whole = StalenessEngine(GRAPH, reader, AT, answer_keys=MIRROR_MIN_KEYS).statuses(
            "down", KEYS
        )
    assert repository.mirror.rows_read == 2 * len(KEYS)
    assert whole == alone == expected
    assert _stale_keys(whole) == ["2024-01-03"]


def test_a_transaction_in_flight_when_the_copy_was_taken_is_read_once_it_commits(
    pool: ConnectionPool, namespace: str, database_url: str
) -> None:
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool)
    with psycopg.connect(database_url) as writer:
        # Draws its event id now, commits last: a later commit with a smaller id.
        [(event_id,)] = writer.execute(
            "INSERT INTO events (namespace_id, idempotency_key, kind, event_time, asset_key,"
            " partition_key, data_version) VALUES (%s, 'slow', 1, %s, 'up', '2024-01-07', 'v9')"
            " RETURNING event_id",
            (namespace_id, T0 + timedelta(hours=1)),
        ).fetchall()
        writer.execute(
            "UPDATE latest_state SET materialization_event_id = %s, data_version = 'v9'"
            " WHERE namespace_id = %s AND asset_key = 'up' AND partition_key = '2024-01-07'",
            (event_id, namespace_id),
        )
        EventsRepository(pool).ingest(
            namespace_id, [Materialization("fast", T0, "up", "2024-01-02", "run", "v2")]
        )
        with repository.reading(namespace_id) as reader:
            assert _stale_keys(_answer(reader)) == ["2024-01-02"]
        writer.commit()
    with repository.reading(namespace_id) as reader:
        assert _stale_keys(_answer(reader)) == ["2024-01-02", "2024-01-07"]


def test_an_answer_older_than_the_copy_reads_its_own_snapshot(
    pool: ConnectionPool, namespace: str
) -> None:
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool)
    with repository.reading(namespace_id) as old_reader:
        old_reader.snapshot()  # the snapshot is taken here
        EventsRepository(pool).ingest(
            namespace_id, [Materialization("later", T0, "up", "2024-01-04", "run", "v2")]
        )
        with repository.reading(namespace_id) as new_reader:
            assert _stale_keys(_answer(new_reader)) == ["2024-01-04"]
        assert _answer(old_reader) == {}
    with repository.reading(namespace_id) as reader:
        assert _stale_keys(_answer(reader)) == ["2024-01-04"]


@pytest.mark.parametrize("mirror_rows", [0, 5])
def test_without_room_for_the_copy_answers_are_the_same(
    pool: ConnectionPool, namespace: str, mirror_rows: int
) -> None:
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool, mirror_rows=mirror_rows)
    EventsRepository(pool).ingest(
        namespace_id, [Materialization("again", T0, "up", "2024-01-09", "run", "v2")]
    )
    for _ in range(2):
        with repository.reading(namespace_id) as reader:
            assert _stale_keys(_answer(reader)) == ["2024-01-09"]
    if repository.mirror is not None:
        assert repository.mirror.held_rows() <= mirror_rows


def test_remembered_data_versions_are_dropped_for_partitions_with_late_commits(
    pool: ConnectionPool, namespace: str, database_url: str
) -> None:
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool)
    events = EventsRepository(pool)
    with psycopg.connect(database_url) as writer:
        # An upstream event drawn before `down` is materialized again, committed after: as of
        # that materialization, `up` then had data version v9, not v1.
        writer.execute(
            "INSERT INTO events (namespace_id, idempotency_key, kind, event_time, asset_key,"
            " partition_key, data_version) VALUES (%s, 'late', 1, %s, 'up', '2024-01-06', 'v9')",
            (namespace_id, T0),
        )
        events.ingest(
            namespace_id, [Materialization("down-again", T0, "down", "2024-01-06", "run", "v1")]
        )
        events.ingest(
            namespace_id, [Materialization("up-again", T0, "up", "2024-01-06", "run", "v1")]
        )
        with repository.reading(namespace_id) as reader:
            # Same version (v1) as of down's materialization: looked up, remembered, FRESH.
            assert _answer(reader) == {}
        writer.commit()
    with repository.reading(namespace_id) as reader:
        assert _stale_keys(_answer(reader)) == ["2024-01-06"]


def test_concurrent_answers_and_ingests_agree_with_the_rules(
    pool: ConnectionPool, namespace: str
) -> None:
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool)
    events = EventsRepository(pool)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for step in range(8):
                day = f"2024-01-{1 + (worker * 3 + step) % 10:02d}"
                asset_key = "up" if step % 3 else "down"
                events.ingest(
                    namespace_id,
                    [
                        Materialization(
                            f"w{worker}-{step}", T0, asset_key, day, "run", f"v{step % 2}"
                        )
                    ],
                )
                with repository.reading(namespace_id) as reader:
                    _answer(reader)  # asserts equality with the rules in the same snapshot
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.parametrize("mirror_min_keys", [0, MIRROR_MIN_KEYS], ids=["copies", "query"])
def test_an_answer_is_freed_without_the_cyclic_collector(
    pool: ConnectionPool, namespace: str, mirror_min_keys: int
) -> None:
    """A reader and what it read (states, records) go as soon as the answer is done: a
    reference cycle would keep them until the cyclic collector runs, which a server runs
    rarely (its thresholds are raised), so memory and collection time would grow instead."""
    namespace_id = _setup(pool, namespace)
    repository = StalenessRepository(pool)
    gc.collect()
    gc.disable()
    try:
        with repository.reading(namespace_id) as reader:
            engine = StalenessEngine(GRAPH, reader, AT, mirror_min_keys=mirror_min_keys)
            assert engine.statuses("down", KEYS) == {}
            alive = weakref.ref(reader)
            del engine, reader
        assert alive() is None
    finally:
        gc.enable()


def test_copied_rows_are_left_to_reference_counting(pool: ConnectionPool, namespace: str) -> None:
    """The copy holds a tuple per partition, hundreds of thousands in a large namespace: once
    the cyclic collector has seen them, it stops tracking them (a tuple of plain values cannot
    be part of a cycle), so they add nothing to later collections."""
    namespace_id = _setup(pool, namespace)
    with pool.connection() as conn:
        copied = load_assets(conn, namespace_id, ["up", "down"])
    rows = [row for asset in copied.values() for row in asset.values()]
    assert len(rows) == 2 * len(KEYS)
    gc.collect()
    assert not any(gc.is_tracked(row) for row in rows)
