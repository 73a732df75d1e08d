"""The set-based staleness path gives exactly the domain's answers, on mixed graphs.

Real Postgres, real events: for each graph, a seeded random history (materializations with
and without data versions, repeated versions, code versions, runs started and failed, a
dependency added after some materializations), then every partition of every asset is asked
both ways, in every option combination.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import (
    DynamicPartitions,
    Evaluation,
)
from partition_deps.domain.events import (
    Event,
    Materialization,
    Observation,
    PartitionTarget,
    RunFailed,
    RunStarted,
)
from partition_deps.domain.mappings.kinds import IdentityMapping, TimeWindowMapping
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.staleness import (
    CauseKind,
    PlannedRun,
    StalenessOptions,
    Status,
    plan_runs,
)
from partition_deps.domain.staleness_sets import joins_by_key, position_runs
from partition_deps.store.definitions import DefinitionsRepository
from partition_deps.store.events import EventsRepository
from partition_deps.store.staleness import StalenessEngine, StalenessRepository, plan
from partition_deps.store.staleness_candidates import joined_keys
from tests.domain.definitions import DAILY, DATE_BY_REGION, REGIONS, WEEKLY
from tests.store.conftest import stored_namespace

CUSTOMERS = DynamicPartitions("customers")
AT = Evaluation(datetime(2024, 1, 20, 12, tzinfo=UTC), {"customers": ("acme", "globex", "initech")})
T0 = datetime(2024, 1, 10, tzinfo=UTC)

GRAPHS = {
    "time": [
        AssetDefinition("up", DAILY),
        AssetDefinition("config"),
        AssetDefinition("mid", DAILY, "2", (Dependency("up"), Dependency("config", None))),
        AssetDefinition("down", DAILY, None, (Dependency("mid", IdentityMapping()),)),
        AssetDefinition("lag", DAILY, None, (Dependency("up", TimeWindowMapping(-1, 0)),)),
        AssetDefinition("weekly", WEEKLY, None, (Dependency("mid"),)),
        AssetDefinition("report", None, None, (Dependency("down"),)),
    ],
    "multi_static_dynamic": [
        AssetDefinition("daily", DAILY),
        AssetDefinition("regions", REGIONS),
        AssetDefinition("regional", DATE_BY_REGION, None, (Dependency("daily"),)),
        AssetDefinition("regional_clean", DATE_BY_REGION, "1", (Dependency("regional"),)),
        AssetDefinition("per_region", REGIONS, None, (Dependency("regions"),)),
        AssetDefinition("customers", CUSTOMERS),
        AssetDefinition("customer_scores", CUSTOMERS, None, (Dependency("customers"),)),
    ],
}
# Set-based in each graph (every edge joins by equal keys or reads an unpartitioned asset).
SET_BASED = {"mid", "down", "regional_clean", "per_region", "customer_scores"} | {
    "up",
    "daily",
    "regions",
    "customers",  # roots
}


def _without(
    graph: list[AssetDefinition], asset_key: str, upstream_key: str
) -> list[AssetDefinition]:
    return [
        AssetDefinition(
            a.key,
            a.partitions,
            a.code_version,
            tuple(d for d in a.dependencies if d.upstream_key != upstream_key),
        )
        if a.key == asset_key
        else a
        for a in graph
    ]


def _history(
    rng: random.Random, graph: dict[str, AssetDefinition], count: int, offset: int
) -> list[Event]:
    keys = {
        key: [None] if a.partitions is None else list(all_partitions(a.partitions, AT))
        for key, a in graph.items()
    }
    events: list[Event] = []
    for index in range(count):
        asset_key = rng.choice(sorted(graph))
        partition = rng.choice(keys[asset_key][-9:])
        n = offset + index
        time = T0 + timedelta(minutes=n)
        roll = rng.random()
        if roll < 0.08:
            events.append(
                RunStarted(f"s{n}", time, f"run{n}", (PartitionTarget(asset_key, partition),))
            )
        elif roll < 0.1:
            events.append(RunFailed(f"f{n}", time, f"run{n - rng.randint(1, 5)}", "boom"))
        elif roll < 0.2:
            # Observations (of roots mostly: observed sources), same data versions as below.
            events.append(Observation(f"o{n}", time, asset_key, partition, rng.choice(["", "a"])))
        else:
            events.append(
                Materialization(
                    f"m{n}",
                    time,
                    asset_key,
                    partition,
                    f"run{n}",
                    rng.choice(["", "a", "b"]),
                    rng.choice([None, "1", "2"]),
                )
            )
    return events


def test_set_based_answers_equal_the_domain_rules(pool: ConnectionPool, namespace: str) -> None:
    kinds: set[CauseKind] = set()
    for graph_name in sorted(GRAPHS):
        for seed in (1, 2, 3):
            _compare(pool, f"{namespace}-{graph_name}-{seed}", graph_name, seed, kinds)
    # The set-based assets met every cause their edges can give.
    assert kinds >= {
        CauseKind.NEVER_MATERIALIZED,
        CauseKind.UPSTREAM_MISSING,
        CauseKind.UPSTREAM_UPDATED,
        CauseKind.CODE_VERSION_CHANGED,
        CauseKind.DEPENDENCY_ADDED,
        CauseKind.UPSTREAM_STALE,
    }


def _compare(
    pool: ConnectionPool, namespace: str, graph_name: str, seed: int, kinds: set[CauseKind]
) -> None:
    rng = random.Random(seed)
    assets = GRAPHS[graph_name]
    graph = {a.key: a for a in assets}
    definitions = DefinitionsRepository(pool)
    events = EventsRepository(pool)
    # First without one dependency, so that later some partitions have it added since.
    later = "mid" if graph_name == "time" else "regional_clean"
    dropped = "config" if graph_name == "time" else "regional"
    definitions.apply_assets(
        namespace, _without(assets, later, dropped), replace_all=True,
        expected_generation=None, validate=lambda _: None,
    )  # fmt: skip
    for name in ("customers",):
        definitions.add_dynamic_partitions(namespace, name, list(AT.dynamic_keys[name]))
    snapshot = definitions.load_snapshot(namespace)
    events.ingest(snapshot.namespace_id, _history(rng, graph, 150, 0))
    # The in-memory copies of latest states are taken now, so that the answers below read
    # them caught up on the events that follow (derived key sets included).
    repository = StalenessRepository(pool)
    with repository.reading(snapshot.namespace_id) as reader:
        early = StalenessEngine(graph, reader, AT, mirror_min_keys=0)
        for asset in assets:
            if asset.key in SET_BASED and asset.partitions is not None:
                early.statuses(asset.key, list(all_partitions(asset.partitions, AT)))
    definitions.apply_assets(
        namespace, assets, replace_all=True, expected_generation=None, validate=lambda _: None
    )
    events.ingest(snapshot.namespace_id, _history(rng, graph, 80, 1000))

    assert {key for key, a in graph.items() if joins_by_key(graph, a)} == SET_BASED & set(graph)
    seen: set[Status] = set()
    planned_runs: set[PlannedRun] = set()
    for options in (
        StalenessOptions(),
        StalenessOptions(transitive=True),
        StalenessOptions(dagster_cutoff=True),
        StalenessOptions(transitive=True, dagster_cutoff=True),
    ):
        with repository.reading(snapshot.namespace_id) as reader:
            fast = StalenessEngine(graph, reader, AT, options)
            # Large asks: the in-memory copies of latest states.
            whole = StalenessEngine(graph, reader, AT, options, mirror_min_keys=0)
            slow = StalenessEngine(graph, reader, AT, options, set_based=False)
            for asset in assets:
                keys = (
                    [None]
                    if asset.partitions is None
                    else list(all_partitions(asset.partitions, AT))
                )
                expected = slow.statuses(asset.key, keys)
                assert fast.statuses(asset.key, keys) == expected, (asset.key, options)
                assert whole.statuses(asset.key, keys) == expected, (asset.key, options)
                subset = keys[::3]  # asked keys that are not the whole asset
                assert whole.statuses(asset.key, subset) == slow.statuses(asset.key, subset)
                seen.update(status.status for status in expected.values())
                if asset.key in SET_BASED and asset.dependencies:
                    kinds.update(c.kind for status in expected.values() for c in status.causes)
        # Plans: bulk statuses from the engine, the same runs as the rules alone give.
        for latest_window_only, limit in ((True, None), (False, None), (False, 7)):
            with repository.reading(snapshot.namespace_id) as reader:
                planned = plan(
                    graph, reader, AT, latest_window_only=latest_window_only, limit=limit,
                    options=options,
                )  # fmt: skip
            with repository.reading(snapshot.namespace_id) as reader:
                expected_runs = plan_runs(
                    graph, reader.history, AT, latest_window_only=latest_window_only,
                    limit=limit, options=options,
                )  # fmt: skip
            assert planned == expected_runs, (latest_window_only, limit, options)
            planned_runs.update(planned)
    assert seen == {Status.STALE, Status.MISSING}
    assert any(not run.ready for run in planned_runs)
    assert any(run.ready for run in planned_runs)


def test_position_runs_group_consecutive_positions_with_their_windows() -> None:
    keys = list(all_partitions(DAILY, AT))
    runs = position_runs(keys, [0, 1, 2, 5, 9, 10], DAILY)
    assert [(r.first_key, r.last_key, r.count) for r in runs] == [
        ("2024-01-01", "2024-01-03", 3),
        ("2024-01-06", "2024-01-06", 1),
        ("2024-01-10", "2024-01-11", 2),
    ]
    assert runs[0].start == datetime(2024, 1, 1, tzinfo=UTC)
    assert runs[0].end == datetime(2024, 1, 4, tzinfo=UTC)


def test_keys_containing_the_separator_take_the_array_form(
    pool: ConnectionPool, namespace: str
) -> None:
    odd = DynamicPartitions("odd")
    graph = {
        "a": AssetDefinition("a", odd),
        "b": AssetDefinition("b", odd, None, (Dependency("a"),)),
    }
    keys: list[str | None] = ["x\x1fy", "plain", "z"]
    at = Evaluation(AT.as_of, {"odd": tuple(key for key in keys if key is not None)})
    namespace_id = stored_namespace(pool, namespace, graph.values(), replace_all=True)
    EventsRepository(pool).ingest(
        namespace_id,
        [
            Materialization("1", T0, "b", "x\x1fy", "r", "v"),
            Materialization("2", T0, "a", "x\x1fy", "r", "v"),
            Materialization("3", T0, "b", "plain", "r", "v"),
        ],
    )
    with StalenessRepository(pool).reading(namespace_id) as reader:
        fast = StalenessEngine(graph, reader, at).statuses("b", keys)
        whole = StalenessEngine(graph, reader, at, mirror_min_keys=0).statuses("b", keys)
        slow = StalenessEngine(graph, reader, at, set_based=False).statuses("b", keys)
    assert fast == slow
    assert whole == slow
    assert {position: status.status for position, status in fast.items()} == {
        0: Status.STALE,
        1: Status.STALE,
        2: Status.MISSING,
    }
    with StalenessRepository(pool).reading(namespace_id) as reader:
        for key in keys:  # one key alone: joined, or as an array when it holds the separator
            one = StalenessEngine(graph, reader, at).statuses("b", [key])
            assert one == StalenessEngine(graph, reader, at, set_based=False).statuses("b", [key])
            assert set(one) == {0}


def test_keys_travel_joined_where_the_text_splits_back_into_them() -> None:
    assert joined_keys(["2024-01-01", "2024-01-02"]) == "2024-01-01\x1f2024-01-02"
    # One key too, so that its asks share a prepared statement with larger ones.
    assert joined_keys(["2024-01-01"]) == "2024-01-01"
    assert joined_keys(["", ""]) == "\x1f"
    # An empty text splits into no key; a key holding the separator into two.
    assert joined_keys([""]) is None
    assert joined_keys([]) is None
    assert joined_keys(["x\x1fy", "z"]) is None
