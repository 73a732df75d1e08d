"""Compaction changes no answer: twin namespaces get the same random events (materializations
with repeating data versions, observations, runs) in random batches; one is compacted with a
zero retention (every superseded event is old enough). Its staleness (both semantics, with
causes, FRESH included), plans and runs are what they were before compaction, and, after more
events reach both, what the twin that was never compacted answers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from psycopg_pool import ConnectionPool

from partition_deps import cli
from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2 as automation_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as st_pb
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import StalenessServiceStub
from partition_deps.store.compaction import compact
from partition_deps.store.database import PoolSettings, open_pool
from tests.automation.replay import load_cases

from .builders import DAILY, asset, timestamp
from .conftest import Stubs, serving
from .test_automation_cases import CaseReplay

AS_OF = timestamp("2024-01-07T00:00:00+00:00")
DAYS = [f"2024-01-0{day}" for day in range(1, 6)]
VERSIONS = ["a", "b", "c"]


def _updates_a_partition_again(case: dict[str, Any]) -> bool:
    """Whether the timeline materializes or observes some partition more than once."""
    seen: set[tuple[str, str, str | None]] = set()
    for tick in case["ticks"]:
        for event in tick["events"]:
            if event["type"] in ("materialization", "observation"):
                key = (event["type"], event["asset"], event["partition_key"])
                if key in seen:
                    return True
                seen.add(key)
    return False


# Timelines with superseded events, so that compaction may have something to delete.
AUTOMATION_CASES = [case for case in load_cases() if _updates_a_partition_again(case)][:20]


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = open_pool(database_url, PoolSettings(min_size=1, max_size=2))
    yield pool
    pool.close()


def _assets() -> list[defs_pb.Asset]:
    source = asset("source", DAILY)
    source.observable_source = True
    return [
        asset("u"),
        asset("p", DAILY),
        source,
        asset("d1", None, "u", "p"),
        asset("d2", DAILY, "p", "u", "source"),
        asset("d3", DAILY, "d2"),
    ]


def _events(rng: random.Random, count: int, prefix: str) -> list[events_pb.Event]:
    """Random events in time order: mostly materializations, some observations and runs."""
    made: list[events_pb.Event] = []
    runs: list[str] = []
    for number in range(count):
        event = events_pb.Event(idempotency_key=f"{prefix}{number}")
        event.event_time.FromSeconds(AS_OF.seconds - 86_400 + number * 60)
        roll = rng.random()
        if roll < 0.1:
            run_id = f"{prefix}run{number}"
            runs.append(run_id)
            target = events_pb.PartitionTarget(asset_key="d2", partition_key=rng.choice(DAYS))
            event.run_started.CopyFrom(events_pb.RunStarted(run_id=run_id, targets=[target]))
        elif roll < 0.18 and runs:
            event.run_succeeded.CopyFrom(events_pb.RunSucceeded(run_id=runs.pop(0)))
        elif roll < 0.3:
            event.observation.CopyFrom(
                events_pb.Observation(
                    asset_key="source",
                    partition_key=rng.choice(DAYS),
                    data_version=rng.choice(VERSIONS),
                )
            )
        else:
            key = rng.choice(["u", "p", "d1", "d2", "d3"])
            materialization = events_pb.Materialization(
                asset_key=key, run_id="r", data_version=rng.choice(VERSIONS), code_version="1"
            )
            if key not in ("u", "d1"):
                materialization.partition_key = rng.choice(DAYS)
            event.materialization.CopyFrom(materialization)
        made.append(event)
    return made


def _send(stubs: Stubs, namespace: str, events: list[events_pb.Event], rng: random.Random) -> None:
    start = 0
    while start < len(events):
        size = rng.randint(1, 5)
        stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=events[start : start + size])
        )
        start += size


def _answers(stubs: Stubs, namespace: str) -> list[Message]:
    staleness = StalenessServiceStub(stubs.channel)
    answers: list[Message] = []
    for semantics in (st_pb.STALENESS_SEMANTICS_EXTENDED, st_pb.STALENESS_SEMANTICS_DAGSTER):
        # Dagster's staleness is not transitive.
        transitives = [False, True] if semantics == st_pb.STALENESS_SEMANTICS_EXTENDED else [False]
        for transitive in transitives:
            options = st_pb.StalenessOptions(semantics=semantics, transitive=transitive)
            answers.append(
                staleness.GetStaleness(
                    st_pb.GetStalenessRequest(
                        namespace=namespace,
                        as_of=AS_OF,
                        options=options,
                        include_fresh=True,
                        page_size=10_000,
                    )
                )
            )
        answers.append(
            staleness.PlanRuns(
                st_pb.PlanRunsRequest(
                    namespace=namespace,
                    as_of=AS_OF,
                    catch_up=True,
                    include_keys=True,
                    options=st_pb.StalenessOptions(semantics=semantics),
                )
            )
        )
    answers.append(
        stubs.events.ListRuns(events_pb.ListRunsRequest(namespace=namespace, as_of=AS_OF))
    )
    return answers


def _without_positions(answers: list[Message]) -> list[Message]:
    """Event ids are drawn from one sequence for every namespace: twins differ only there."""
    cleared = []
    for answer in answers:
        copy = type(answer)()
        copy.CopyFrom(answer)
        for name in ("event_position", "generation"):
            if name in copy.DESCRIPTOR.fields_by_name:
                copy.ClearField(name)
        cleared.append(copy)
    return cleared


def _namespace_id(pool: ConnectionPool, name: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT namespace_id FROM namespaces WHERE name = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _events_stored(pool: ConnectionPool, namespace_id: int) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE namespace_id = %s", (namespace_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("seed", range(8))
def test_compaction_changes_no_answer(
    stubs: Stubs, pool: ConnectionPool, namespace: str, seed: int
) -> None:
    rng = random.Random(seed)
    compacted, twin = f"{namespace}-c", f"{namespace}-t"
    for name in (compacted, twin):
        stubs.definitions.ApplyAssets(defs_pb.ApplyAssetsRequest(namespace=name, assets=_assets()))
    first, later = _events(rng, 120, "e"), _events(rng, 40, "f")
    batches_seed = rng.random()
    for name in (compacted, twin):
        _send(stubs, name, first, random.Random(batches_seed))
    namespace_id = _namespace_id(pool, compacted)
    before = _answers(stubs, compacted)
    stored = _events_stored(pool, namespace_id)

    result = compact(pool, timedelta(0), [namespace_id])

    assert result.superseded_events > 0
    assert _events_stored(pool, namespace_id) < stored
    assert _answers(stubs, compacted) == before
    batches_seed = rng.random()
    for name in (compacted, twin):
        _send(stubs, name, later, random.Random(batches_seed))
    assert _without_positions(_answers(stubs, compacted)) == _without_positions(
        _answers(stubs, twin)
    )


def test_events_younger_than_the_retention_are_kept(
    stubs: Stubs, pool: ConnectionPool, namespace: str
) -> None:
    stubs.definitions.ApplyAssets(defs_pb.ApplyAssetsRequest(namespace=namespace, assets=_assets()))
    _send(stubs, namespace, _events(random.Random(1), 60, "e"), random.Random(2))
    namespace_id = _namespace_id(pool, namespace)
    stored = _events_stored(pool, namespace_id)

    result = compact(pool, timedelta(days=1), [namespace_id])

    assert result.superseded_events == 0
    assert _events_stored(pool, namespace_id) == stored


def test_the_compact_command_compacts_and_refuses_a_negative_retention(database_url: str) -> None:
    assert cli.main(["compact", "--database-url", database_url, "--retention-hours", "24"]) == 0
    with pytest.raises(SystemExit, match="retention-hours"):
        cli.main(["compact", "--database-url", database_url, "--retention-hours", "-1"])


@pytest.fixture(scope="module")
def forgetful(database_url: str) -> Iterator[Stubs]:
    """A server that keeps no automation history: every tick rebuilds it from the events."""
    with (
        serving(
            database_url, pool=PoolSettings(min_size=1, max_size=4), automation_histories=0
        ) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield Stubs.of(channel)


def _comparable(tick: automation_pb.AutomationTick) -> automation_pb.AutomationTick:
    copy = automation_pb.AutomationTick()
    copy.CopyFrom(tick)
    for name in ("event_position", "generation"):
        if name in copy.DESCRIPTOR.fields_by_name:
            copy.ClearField(name)
    return copy


def test_automation_ticks_are_the_same_when_compacted_before_each(
    forgetful: Stubs, pool: ConnectionPool, namespace: str
) -> None:
    deleted = 0
    for number, case in enumerate(AUTOMATION_CASES):
        compacted = CaseReplay(forgetful, f"{namespace}-{number}-c", case)
        twin = CaseReplay(forgetful, f"{namespace}-{number}-t", case)
        namespace_id = _namespace_id(pool, compacted.namespace)
        for index, tick in enumerate(case["ticks"]):
            for replay in (compacted, twin):
                for event in tick["events"]:
                    replay.apply(event)
                replay.flush()
            deleted += compact(pool, timedelta(0), [namespace_id]).superseded_events
            at = tick["evaluation_time"]
            assert _comparable(compacted.evaluate(index, at)) == _comparable(
                twin.evaluate(index, at)
            ), f"{case['id']} tick {index}"
    assert deleted > 0
