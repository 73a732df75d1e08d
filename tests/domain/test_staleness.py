"""Staleness causes and run planning on the seed scenarios (domain rules, in-memory history)."""

from __future__ import annotations

from datetime import UTC, datetime

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import (
    Dimension,
    DynamicPartitions,
    Evaluation,
    MultiPartitions,
    PartitionsDefinition,
    StaticPartitions,
)
from partition_deps.domain.mappings.kinds import AllMapping
from partition_deps.domain.staleness import (
    CauseKind,
    Semantics,
    StalenessOptions,
    Status,
    partition_status,
    plan_runs,
)
from tests.domain.definitions import DAILY, HOURLY, WEEKLY
from tests.domain.history import MemoryHistory

AT = Evaluation(datetime(2024, 1, 15, tzinfo=UTC))
WEEK = [f"2024-01-{day:02d}" for day in range(7, 14)]
GRAPH = {
    "daily_sales_data": AssetDefinition("daily_sales_data", DAILY),
    "weekly_sales_summary": AssetDefinition(
        "weekly_sales_summary", WEEKLY, dependencies=(Dependency("daily_sales_data"),)
    ),
}


def _planned(history: MemoryHistory) -> set[tuple[str, str | None]]:
    runs = plan_runs(GRAPH, history, AT, latest_window_only=False)
    return {(run.asset_key, key) for run in runs for key in run.partition_keys}


def _ready(history: MemoryHistory) -> set[tuple[str, str | None]]:
    runs = plan_runs(GRAPH, history, AT, latest_window_only=False)
    return {(run.asset_key, key) for run in runs if run.ready for key in run.partition_keys}


def _days_materialized(days: list[str]) -> MemoryHistory:
    """A history in which each of `days` of daily_sales_data is materialized (version v1)."""
    history = MemoryHistory()
    for day in days:
        history.materialize("daily_sales_data", day, data_version="v1")
    return history


def test_weekly_runs_only_once_its_seven_days_exist_then_goes_stale_when_a_day_changes() -> None:
    history = _days_materialized(WEEK[:-1])
    # Six of seven days: the missing day can run now; the week only after it.
    assert ("daily_sales_data", "2024-01-13") in _ready(history)
    assert ("weekly_sales_summary", "2024-01-07") in _planned(history)
    assert ("weekly_sales_summary", "2024-01-07") not in _ready(history)
    history.materialize("daily_sales_data", "2024-01-13", data_version="v1")
    assert ("weekly_sales_summary", "2024-01-07") in _ready(history)

    history.materialize("weekly_sales_summary", "2024-01-07")
    status = partition_status(GRAPH, "weekly_sales_summary", "2024-01-07", history, AT)
    assert status.status is Status.FRESH

    history.materialize("daily_sales_data", "2024-01-09", data_version="v2")
    status = partition_status(GRAPH, "weekly_sales_summary", "2024-01-07", history, AT)
    assert status.status is Status.STALE
    assert [(c.kind, c.upstream_partition) for c in status.causes] == [
        (CauseKind.UPSTREAM_UPDATED, "2024-01-09")
    ]


def test_a_rematerialization_with_the_same_data_version_is_not_a_change() -> None:
    history = _days_materialized(WEEK)
    history.materialize("weekly_sales_summary", "2024-01-07")
    history.materialize("daily_sales_data", "2024-01-09", data_version="v1")
    status = partition_status(GRAPH, "weekly_sales_summary", "2024-01-07", history, AT)
    assert status.status is Status.FRESH


def test_the_week_waits_for_the_run_writing_its_missing_day() -> None:
    history = _days_materialized(WEEK[:-1])
    history.running[("daily_sales_data", "2024-01-13")] = "r1"  # in progress: not planned
    runs = plan_runs(GRAPH, history, AT, latest_window_only=False)
    planned = {(run.asset_key, key): run for run in runs for key in run.partition_keys}
    assert ("daily_sales_data", "2024-01-13") not in planned
    week = planned[("weekly_sales_summary", "2024-01-07")]
    assert (week.ready, week.waiting_for_runs, week.reason) == (False, ("r1",), "missing")
    status = partition_status(GRAPH, "weekly_sales_summary", "2024-01-07", history, AT)
    assert status.status is Status.MISSING


def test_a_partition_whose_upstream_is_neither_fresh_planned_nor_running_is_not_planned() -> None:
    history = _days_materialized(WEEK[:-1])
    runs = plan_runs(GRAPH, history, AT, assets=["weekly_sales_summary"])
    assert runs == []


def test_code_version_change_makes_materialized_partitions_stale() -> None:
    graph = {"a": AssetDefinition("a", DAILY, code_version="2")}
    history = MemoryHistory()
    history.materialize("a", "2024-01-05", code_version="1")
    status = partition_status(graph, "a", "2024-01-05", history, AT)
    assert [cause.kind for cause in status.causes] == [CauseKind.CODE_VERSION_CHANGED]


def test_dagster_non_transitive_rule_and_our_transitive_answer() -> None:
    graph = {
        "up": AssetDefinition("up", DAILY),
        "down": AssetDefinition("down", DAILY, dependencies=(Dependency("up"),)),
        "down2": AssetDefinition("down2", DAILY, dependencies=(Dependency("down"),)),
    }
    history = MemoryHistory()
    for asset in ("up", "down", "down2"):
        history.materialize(asset, "2024-01-05")
    history.materialize("up", "2024-01-05")
    assert partition_status(graph, "down", "2024-01-05", history, AT).status is Status.STALE
    direct = partition_status(graph, "down2", "2024-01-05", history, AT)
    assert direct.status is Status.FRESH  # Dagster's rule: only direct dependencies count
    transitive = partition_status(
        graph, "down2", "2024-01-05", history, AT, StalenessOptions(transitive=True)
    )
    assert transitive.status is Status.STALE
    (cause,) = transitive.causes
    assert cause.kind is CauseKind.UPSTREAM_STALE
    assert cause.path == (("down", "2024-01-05"),)
    assert "up 2024-01-05 was materialized after" in cause.message


def test_unpartitioned_child_of_a_daily_parent_is_stale_without_a_cutoff() -> None:
    graph = {
        "daily": AssetDefinition("daily", DAILY),
        "report": AssetDefinition("report", None, dependencies=(Dependency("daily"),)),
    }
    history = MemoryHistory()
    for day in range(1, 15):
        history.materialize("daily", f"2024-01-{day:02d}")
    history.materialize("report")
    history.materialize("daily", "2024-01-03")
    ours = partition_status(graph, "report", None, history, AT)
    assert ours.status is Status.STALE
    dagster = partition_status(
        graph, "report", None, history, AT, StalenessOptions(dagster_cutoff=True)
    )
    assert dagster.status is Status.FRESH  # Dagster skips a time parent through All


def test_date_by_region_downstream_of_daily() -> None:
    regions = StaticPartitions(("us", "eu"))
    graph = {
        "daily": AssetDefinition("daily", DAILY),
        "regional": AssetDefinition(
            "regional",
            MultiPartitions((Dimension("date", DAILY), Dimension("region", regions))),
            dependencies=(Dependency("daily"),),
        ),
    }
    history = MemoryHistory()
    history.materialize("daily", "2024-01-14")
    planned = {
        (run.asset_key, key) for run in plan_runs(graph, history, AT) for key in run.partition_keys
    }
    assert planned == {("regional", "2024-01-14|us"), ("regional", "2024-01-14|eu")}


def test_dynamic_upstream_through_all() -> None:
    graph = {
        "customers": AssetDefinition("customers", DynamicPartitions("customers")),
        "report": AssetDefinition(
            "report", DAILY, dependencies=(Dependency("customers", AllMapping()),)
        ),
    }
    at = Evaluation(AT.as_of, {"customers": ["acme", "globex"]})
    history = MemoryHistory()
    history.materialize("customers", "acme")
    status = partition_status(graph, "report", "2024-01-14", history, at)
    assert status.status is Status.MISSING
    history.materialize("report", "2024-01-14")
    status = partition_status(graph, "report", "2024-01-14", history, at)
    assert [(c.kind, c.upstream_partition) for c in status.causes] == [
        (CauseKind.UPSTREAM_MISSING, "globex")
    ]


def test_an_observed_source_is_fresh_and_its_new_data_version_makes_readers_stale() -> None:
    graph = {
        "prices": AssetDefinition("prices", DAILY),  # a source: observed, never materialized
        "report": AssetDefinition("report", DAILY, dependencies=(Dependency("prices"),)),
    }
    history = MemoryHistory()
    history.observe("prices", "2024-01-02", data_version="v1")
    history.materialize("report", "2024-01-02")
    assert partition_status(graph, "prices", "2024-01-02", history, AT).status is Status.FRESH
    assert partition_status(graph, "report", "2024-01-02", history, AT).status is Status.FRESH
    # Observed again with the same data version: nothing changed.
    history.observe("prices", "2024-01-02", data_version="v1")
    assert partition_status(graph, "report", "2024-01-02", history, AT).status is Status.FRESH
    history.observe("prices", "2024-01-02", data_version="v2")
    status = partition_status(graph, "report", "2024-01-02", history, AT)
    assert status.status is Status.STALE
    [cause] = status.causes
    assert cause.kind is CauseKind.UPSTREAM_UPDATED
    assert (
        cause.message
        == "prices 2024-01-02 was observed with a new data version after this partition"
    )
    # Never observed: missing, and so is what reads it.
    assert partition_status(graph, "prices", "2024-01-03", history, AT).status is Status.MISSING
    history.materialize("report", "2024-01-03")
    [cause] = partition_status(graph, "report", "2024-01-03", history, AT).causes
    assert cause.kind is CauseKind.UPSTREAM_MISSING
    # The plan re-runs the stale report and never plans the source's observed partitions.
    planned = {
        (run.asset_key, key)
        for run in plan_runs(graph, history, AT, latest_window_only=False)
        for key in run.partition_keys
    }
    assert ("report", "2024-01-02") in planned
    assert ("prices", "2024-01-02") not in planned


# ----- Dagster's semantics ----------------------------------------------------------------

DAGSTER = StalenessOptions(semantics=Semantics.DAGSTER)


def _daily_pair(upstream: PartitionsDefinition | None = DAILY) -> dict[str, AssetDefinition]:
    return {
        "a": AssetDefinition("a", upstream),
        "b": AssetDefinition("b", DAILY, dependencies=(Dependency("a"),)),
    }


def _kinds(
    graph: dict[str, AssetDefinition],
    history: MemoryHistory,
    key: str,
    options: StalenessOptions,
    asset_key: str = "b",
) -> tuple[Status, list[tuple[CauseKind, str | None]]]:
    status = partition_status(graph, asset_key, key, history, AT, options)
    return status.status, [(cause.kind, cause.upstream_partition) for cause in status.causes]


def test_dagster_never_counts_a_missing_upstream_partition() -> None:
    graph = _daily_pair()
    history = MemoryHistory(dependencies={"b": frozenset({"a"})})
    history.materialize("a", "2024-01-09", "v1")
    history.materialize("b", "2024-01-10", "w1")
    assert _kinds(graph, history, "2024-01-10", DAGSTER) == (Status.FRESH, [])
    assert _kinds(graph, history, "2024-01-10", StalenessOptions()) == (
        Status.STALE,
        [(CauseKind.UPSTREAM_MISSING, "2024-01-10")],
    )


def test_dagster_compares_with_the_upstream_assets_latest_event_when_the_partition_was_stored() -> (
    None
):
    graph = _daily_pair()
    history = MemoryHistory(dependencies={"b": frozenset({"a"})})
    history.materialize("b", "2024-01-10", "w1")  # `a` has no event at all yet
    history.materialize("a", "2024-01-10", "v1")
    assert _kinds(graph, history, "2024-01-10", DAGSTER) == (Status.FRESH, [])
    assert _kinds(graph, history, "2024-01-10", StalenessOptions())[0] is Status.STALE

    # Once `a` has any event before `b` is stored, a later new version of the partition counts.
    history.materialize("b", "2024-01-10", "w2")
    history.materialize("a", "2024-01-10", "v2")
    assert _kinds(graph, history, "2024-01-10", DAGSTER) == (
        Status.STALE,
        [(CauseKind.UPSTREAM_UPDATED, "2024-01-10")],
    )
    # The same data version again changes nothing.
    history.materialize("b", "2024-01-10", "w3")
    history.materialize("a", "2024-01-10", "v2")
    assert _kinds(graph, history, "2024-01-10", DAGSTER) == (Status.FRESH, [])


def test_dagster_compares_an_unpartitioned_upstream_by_version_even_without_an_earlier_event() -> (
    None
):
    graph = _daily_pair(upstream=None)
    history = MemoryHistory(dependencies={"b": frozenset({"a"})})
    history.materialize("b", "2024-01-10", "w1")
    history.materialize("a", None, "v1")
    assert _kinds(graph, history, "2024-01-10", DAGSTER) == (
        Status.STALE,
        [(CauseKind.UPSTREAM_UPDATED, None)],
    )


def test_dagster_gives_a_new_dependency_per_upstream_partition_and_compares_no_data() -> None:
    graph = {
        "daily_sales_data": GRAPH["daily_sales_data"],
        "weekly_sales_summary": GRAPH["weekly_sales_summary"],
    }
    history = MemoryHistory(dependencies={"weekly_sales_summary": frozenset()})
    history.materialize("weekly_sales_summary", "2024-01-07", "w1")
    for day in WEEK:
        history.materialize("daily_sales_data", day, "v1")
    status, causes = _kinds(graph, history, "2024-01-07", DAGSTER, "weekly_sales_summary")
    assert status is Status.STALE
    assert causes == [(CauseKind.DEPENDENCY_ADDED, day) for day in WEEK]
    _, extended = _kinds(graph, history, "2024-01-07", StalenessOptions(), "weekly_sales_summary")
    assert (CauseKind.DEPENDENCY_ADDED, None) in extended
    assert (CauseKind.UPSTREAM_UPDATED, "2024-01-07") in extended


def test_dagster_cut_off_skips_the_whole_edge_new_dependency_included() -> None:
    graph = {
        "a": AssetDefinition("a", HOURLY),
        "b": AssetDefinition("b", WEEKLY, dependencies=(Dependency("a"),)),
    }
    history = MemoryHistory(dependencies={"b": frozenset()})  # `a` is a new dependency
    history.materialize("a", "2024-01-07-05:00", "v1")
    history.materialize("b", "2024-01-07", "w1")
    history.materialize("a", "2024-01-07-05:00", "v2")
    assert _kinds(graph, history, "2024-01-07", DAGSTER) == (Status.FRESH, [])


def test_an_observable_source_is_fresh_unobserved_and_its_readers_never_call_it_missing() -> None:
    graph = {
        "a": AssetDefinition("a", DAILY, observable_source=True),
        "b": AssetDefinition("b", DAILY, dependencies=(Dependency("a"),)),
    }
    history = MemoryHistory(dependencies={"b": frozenset({"a"})})
    history.materialize("b", "2024-01-10", "w1")
    for options in (StalenessOptions(), DAGSTER):
        assert _kinds(graph, history, "2024-01-10", options, "a") == (Status.FRESH, [])
        assert _kinds(graph, history, "2024-01-10", options) == (Status.FRESH, [])
    history.observe("a", "2024-01-10", "o1")
    assert _kinds(graph, history, "2024-01-10", StalenessOptions())[0] is Status.STALE
    assert not any(run.asset_key == "a" for run in plan_runs(graph, history, AT))
