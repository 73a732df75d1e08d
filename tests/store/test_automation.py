"""Automation ticks in the store: the histories a repository keeps between ticks stay exact
while namespaces tick concurrently and push each other's histories out."""

from __future__ import annotations

import functools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.automation.history import EventHistory
from partition_deps.domain.automation.ticks import TickSummary
from partition_deps.domain.events import Materialization
from partition_deps.store.automation import AutomationRepository
from partition_deps.store.events import EventsRepository
from tests.store.conftest import stored_namespace
from tests.threads import run_concurrently

T0 = datetime(2024, 1, 8, tzinfo=UTC)
NAMESPACES = 6
ROUNDS = 4
EVENTS_PER_ROUND = 3


def _namespace_id(pool: ConnectionPool, name: str) -> int:
    return stored_namespace(pool, name, [AssetDefinition("daily")], replace_all=False)


@pytest.mark.parametrize("kept_histories", [2, 32])
def test_kept_histories_see_every_event_once_under_concurrent_ticks(
    pool: ConnectionPool, namespace: str, kept_histories: int
) -> None:
    # With 2 kept for 6 namespaces, histories are dropped and rebuilt from Postgres all the
    # time; with 32, each is extended tick after tick. Either way each tick must see every
    # event stored so far, and exactly those of its round as new.
    ticks = AutomationRepository(pool, kept_histories=kept_histories)
    events = EventsRepository(pool)
    ids = [_namespace_id(pool, f"{namespace}-{index}") for index in range(NAMESPACES)]
    seen: dict[int, list[tuple[frozenset[Any], frozenset[Any]]]] = {}
    lock = threading.Lock()

    def worker(namespace_id: int) -> None:
        for round_ in range(ROUNDS):
            keys = [f"r{round_}-{i}" for i in range(EVENTS_PER_ROUND)]
            events.ingest(
                namespace_id,
                [Materialization(key, T0, "daily", key, "", "v") for key in keys],
            )

            def evaluate(
                history: EventHistory, previous: dict[str, Any] | None
            ) -> tuple[TickSummary, dict[str, Any]]:
                with lock:
                    seen.setdefault(namespace_id, []).append(
                        (history.materialized("daily", False), history.updated("daily", False))
                    )
                return TickSummary((), (), ()), {}

            ticks.run_tick(namespace_id, f"t{round_}", T0 + timedelta(hours=round_), 1, evaluate)

    run_concurrently([functools.partial(worker, namespace_id) for namespace_id in ids])

    for namespace_id in ids:
        assert len(seen[namespace_id]) == ROUNDS
        for round_, (materialized, updated) in enumerate(seen[namespace_id]):
            new = {f"r{round_}-{i}" for i in range(EVENTS_PER_ROUND)}
            every = {f"r{r}-{i}" for r in range(round_ + 1) for i in range(EVENTS_PER_ROUND)}
            assert (set(materialized), set(updated)) == (every, new), (namespace_id, round_)
