"""The domain path's prefetch reads, in a few queries, everything the rules then ask for.

A daily asset reading an hourly one (24 hourly partitions a day) goes through the domain rules,
which ask the data version of every hourly partition materialized after its day: one query
each before it was looked up in bulk. After `prefetch`, the rules must read nothing more, and
answer as they do over plain lookups.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.events import Materialization, Observation
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.staleness import (
    CauseKind,
    Semantics,
    StalenessOptions,
    Status,
    statuses,
)
from partition_deps.store.events import EventsRepository
from partition_deps.store.staleness import (
    StalenessRepository,
    StoreHistory,
    prefetch,
)
from tests.store.conftest import stored_namespace

START = datetime(2024, 1, 1)
HOURLY = TimeWindowPartitions("0 * * * *", START, fmt="%Y-%m-%d-%H:%M")
DAILY = TimeWindowPartitions("0 0 * * *", START)
AT = Evaluation(datetime(2024, 1, 4, tzinfo=UTC))
GRAPH = {
    "hours": AssetDefinition("hours", HOURLY),
    "config": AssetDefinition("config"),
    "days": AssetDefinition("days", DAILY, None, (Dependency("hours"), Dependency("config"))),
}
T0 = datetime(2024, 1, 4, tzinfo=UTC)


class _CountingConnection:
    """A connection that counts the statements run through it."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self._conn.execute(*args, **kwargs)


def _events() -> list[Materialization | Observation]:
    hours = [key for key in all_partitions(HOURLY, AT) if key is not None]
    days = [key for key in all_partitions(DAILY, AT) if key is not None]
    first = [Materialization(f"h1-{key}", T0, "hours", key, "run-1", "a") for key in hours]
    config = [Materialization("c1", T0, "config", None, "run-1", "x")]
    built = [
        Materialization(f"d-{key}", T0 + timedelta(minutes=1), "days", key, "run-2", "")
        for key in days
    ]
    # Then the first day's hours come back with a new data version, the second day's with the
    # same one, the third day's without any; config is observed with its old version.
    later = T0 + timedelta(minutes=2)
    again = [
        Materialization(f"h2-{key}", later, "hours", key, "run-3", version)
        for key in hours
        for version in ("b" if key < "2024-01-02" else "a" if key < "2024-01-03" else "",)
    ]
    observed = [Observation("c2", later, "config", None, "x")]
    return [*first, *config, *built, *again, *observed]


@pytest.mark.parametrize("semantics", [Semantics.EXTENDED, Semantics.DAGSTER])
def test_after_the_prefetch_the_rules_read_nothing_more(
    pool: ConnectionPool, namespace: str, semantics: Semantics
) -> None:
    namespace_id = stored_namespace(pool, namespace, GRAPH.values(), replace_all=True)
    EventsRepository(pool).ingest(namespace_id, _events())
    options = StalenessOptions(semantics=semantics)
    asset = GRAPH["days"]
    keys = list(all_partitions(DAILY, AT))
    with StalenessRepository(pool).reading(namespace_id) as reader:
        expected = statuses(
            GRAPH, "days", keys, StoreHistory(reader.conn, namespace_id), AT, options
        )
        counting = _CountingConnection(reader.conn)
        history = StoreHistory(counting, namespace_id)  # type: ignore[arg-type]
        prefetch(history, GRAPH, asset, keys, AT, options=options)
        # One query per asset for the states, one per upstream asset for the versions.
        assert counting.statements <= 5
        before = counting.statements
        answer = statuses(GRAPH, "days", keys, history, AT, options)
        assert counting.statements == before
    assert answer == expected
    stale = [status.partition_key for status in answer if status.status is Status.STALE]
    if semantics is Semantics.EXTENDED:
        # New version, and no version at all: updated; the same version: not.
        assert stale == ["2024-01-01", "2024-01-03"]
        assert all(
            cause.kind is CauseKind.UPSTREAM_UPDATED for status in answer for cause in status.causes
        )
    else:
        assert stale
