"""Staleness and planning end to end: real gRPC channel, real Postgres, the seed scenarios."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import (
    StalenessServiceStub,
)

from .builders import DAILY, SALES, asset, keys, timestamp
from .conftest import Stubs
from .errors import field_violations

AS_OF = timestamp("2024-01-15T00:00:00+00:00")
WEEK = [f"2024-01-{day:02d}" for day in range(7, 14)]
FRESH, STALE, MISSING = (
    stale_pb.STALE_STATUS_FRESH,
    stale_pb.STALE_STATUS_STALE,
    stale_pb.STALE_STATUS_MISSING,
)
_ids = itertools.count()


@pytest.fixture(scope="module")
def staleness(stubs: Stubs) -> StalenessServiceStub:
    return StalenessServiceStub(stubs.channel)


def materialize(
    stubs: Stubs,
    namespace: str,
    asset_key: str,
    partition_keys: Sequence[str | None],
    data_version: str = "",
    run_id: str = "run",
) -> None:
    events = []
    for partition_key in partition_keys:
        body = events_pb.Materialization(
            asset_key=asset_key, run_id=run_id, data_version=data_version
        )
        if partition_key is not None:
            body.partition_key = partition_key
        events.append(
            events_pb.Event(
                idempotency_key=f"e{next(_ids)}",
                event_time=AS_OF,  # when the last partition asked about exists
                materialization=body,
            )
        )
    stubs.events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=events))


def apply(stubs: Stubs, namespace: str, *assets: defs_pb.Asset) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=assets, replace_all=True)
    )


def status_of(
    staleness: StalenessServiceStub,
    namespace: str,
    asset_key: str,
    partition_key: str | None,
    **options: bool | int,
) -> stale_pb.PartitionStaleness:
    response = staleness.GetStaleness(
        stale_pb.GetStalenessRequest(
            namespace=namespace,
            asset_keys=[asset_key],
            selection=keys() if partition_key is None else keys(partition_key),
            as_of=AS_OF,
            include_fresh=True,
            options=stale_pb.StalenessOptions(**options),  # type: ignore[arg-type]
        )
    )
    [partition] = response.partitions
    return partition


def planned(
    staleness: StalenessServiceStub, namespace: str, **fields: object
) -> dict[tuple[str, str], bool]:
    """(asset, partition) -> ready, over every page of the plan."""
    result: dict[tuple[str, str], bool] = {}
    token = ""
    while True:
        response = staleness.PlanRuns(
            stale_pb.PlanRunsRequest(
                namespace=namespace,
                as_of=AS_OF,
                include_keys=True,
                page_size=3,
                page_token=token,
                **fields,  # type: ignore[arg-type]
            )
        )
        for run in response.runs:
            for key in run.partition_keys or [""]:
                result[(run.asset_key, key)] = run.ready
        token = response.next_page_token
        if not token:
            return result


def test_weekly_is_runnable_only_with_its_seven_days_fresh_then_stale_when_a_day_changes(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, *SALES)
    week = ("weekly_sales_summary", "2024-01-07")
    materialize(stubs, namespace, "daily_sales_data", WEEK[:-1], "v1")
    plan = planned(staleness, namespace, catch_up=True)
    assert plan[week] is False  # waits for 2024-01-13, planned upstream of it
    assert plan[("daily_sales_data", "2024-01-13")] is True
    assert week not in planned(staleness, namespace, catch_up=True, asset_keys=[week[0]])
    assert status_of(staleness, namespace, *week).status == MISSING

    materialize(stubs, namespace, "daily_sales_data", ["2024-01-13"], "v1")
    assert planned(staleness, namespace, catch_up=True)[week] is True
    # Dagster's eager condition looks at the latest window only: the week is in it here.
    assert planned(staleness, namespace)[week] is True

    materialize(stubs, namespace, "weekly_sales_summary", ["2024-01-07"], "w1")
    assert status_of(staleness, namespace, *week).status == FRESH
    assert week not in planned(staleness, namespace, catch_up=True)

    # Re-materialized with the same data version: not a change.
    materialize(stubs, namespace, "daily_sales_data", ["2024-01-09"], "v1")
    assert status_of(staleness, namespace, *week).status == FRESH

    materialize(stubs, namespace, "daily_sales_data", ["2024-01-09"], "v2")
    stale = status_of(staleness, namespace, *week)
    assert stale.status == STALE
    [cause] = stale.causes
    assert cause.kind == stale_pb.STALE_CAUSE_KIND_UPSTREAM_UPDATED
    assert (cause.upstream_asset_key, cause.upstream_partition_key) == (
        "daily_sales_data",
        "2024-01-09",
    )
    assert cause.upstream_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 15, tzinfo=UTC)
    assert planned(staleness, namespace, catch_up=True)[week] is True


def test_each_missing_day_blocks_the_week(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, *SALES)
    week = ("weekly_sales_summary", "2024-01-07")
    present: list[str | None] = []
    for day in WEEK:
        plan = planned(staleness, namespace, catch_up=True)
        assert plan[week] is False, f"runnable with {day} missing"
        present.append(day)
        materialize(stubs, namespace, "daily_sales_data", [day], "v1")
    assert planned(staleness, namespace, catch_up=True)[week] is True


def test_runs_in_progress_are_not_planned(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily_sales_data", DAILY))
    started = events_pb.Event(
        idempotency_key="start",
        event_time=AS_OF,
        run_started=events_pb.RunStarted(
            run_id="r1",
            targets=[
                events_pb.PartitionTarget(asset_key="daily_sales_data", partition_key="2024-01-14")
            ],
        ),
    )
    stubs.events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=[started]))
    assert ("daily_sales_data", "2024-01-14") not in planned(staleness, namespace)
    assert ("daily_sales_data", "2024-01-13") in planned(staleness, namespace, catch_up=True)
    materialize(stubs, namespace, "daily_sales_data", ["2024-01-14"], "v1", run_id="r1")
    assert status_of(staleness, namespace, "daily_sales_data", "2024-01-14").status == FRESH


def test_runs_in_progress_are_ranges_of_the_summary_until_done_or_failed(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily_sales_data", DAILY))
    materialize(stubs, namespace, "daily_sales_data", ["2024-01-10"])

    def report(**body: object) -> None:
        event = events_pb.Event(idempotency_key=f"e{next(_ids)}", event_time=AS_OF, **body)  # type: ignore[arg-type]
        stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=[event])
        )

    def summary() -> stale_pb.AssetStaleness:
        [answer] = staleness.GetStaleness(
            stale_pb.GetStalenessRequest(namespace=namespace, as_of=AS_OF, page_size=1)
        ).assets
        return answer

    targets = [
        events_pb.PartitionTarget(asset_key="daily_sales_data", partition_key=day)
        for day in ("2024-01-09", "2024-01-10", "2024-01-11", "2024-01-13")
    ]
    report(run_started=events_pb.RunStarted(run_id="r1", targets=targets))
    running = summary()
    assert running.in_progress_count == 4
    assert [
        (r.first_partition_key, r.last_partition_key, r.count) for r in running.in_progress_ranges
    ] == [
        ("2024-01-09", "2024-01-11", 3),
        ("2024-01-13", "2024-01-13", 1),
    ]
    # In progress is beside the status: the partition materialized before stays FRESH.
    assert (running.fresh_count, running.missing_count) == (1, 13)

    materialize(stubs, namespace, "daily_sales_data", ["2024-01-09"], run_id="r1")
    assert [r.first_partition_key for r in summary().in_progress_ranges] == [
        "2024-01-10",
        "2024-01-13",
    ]
    report(run_failed=events_pb.RunFailed(run_id="r1"))
    assert (summary().in_progress_count, list(summary().in_progress_ranges)) == (0, [])


def test_unpartitioned_downstream_of_a_daily_asset(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY), asset("report", None, "daily"))
    days: list[str | None] = [f"2024-01-{day:02d}" for day in range(1, 15)]
    materialize(stubs, namespace, "daily", days[:-1], "v1")
    assert status_of(staleness, namespace, "report", None).status == MISSING
    # A day is missing: the report waits for it (planned upstream in the same plan).
    assert planned(staleness, namespace)[("report", "")] is False
    materialize(stubs, namespace, "daily", days[-1:], "v1")
    assert planned(staleness, namespace)[("report", "")] is True
    materialize(stubs, namespace, "report", [None], "r1")
    assert status_of(staleness, namespace, "report", None).status == FRESH
    materialize(stubs, namespace, "daily", ["2024-01-03"], "v2")
    ours = status_of(staleness, namespace, "report", None)
    assert ours.status == STALE
    assert [c.upstream_partition_key for c in ours.causes] == ["2024-01-03"]
    # Dagster skips a time-partitioned parent read through All: never stale.
    assert status_of(staleness, namespace, "report", None, dagster_cutoff=True).status == FRESH


def test_date_by_region_downstream_of_a_daily_asset(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    regions = pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys=["us", "eu"]))
    date_region = pb.PartitionsDefinition(
        multi=pb.MultiPartitions(
            dimensions=[
                pb.Dimension(name="date", partitions=DAILY),
                pb.Dimension(name="region", partitions=regions),
            ]
        )
    )
    apply(stubs, namespace, asset("daily", DAILY), asset("regional", date_region, "daily"))
    materialize(stubs, namespace, "daily", ["2024-01-14"], "v1")
    plan = planned(staleness, namespace)
    assert {key for key in plan if key[0] == "regional"} == {
        ("regional", "2024-01-14|us"),
        ("regional", "2024-01-14|eu"),
    }
    assert all(plan[("regional", f"2024-01-14|{r}")] for r in ("us", "eu"))
    materialize(stubs, namespace, "regional", ["2024-01-14|us", "2024-01-14|eu"], "r1")
    assert status_of(staleness, namespace, "regional", "2024-01-14|us").status == FRESH
    materialize(stubs, namespace, "daily", ["2024-01-14"], "v2")
    stale = status_of(staleness, namespace, "regional", "2024-01-14|eu")
    assert stale.status == STALE
    assert [(c.upstream_asset_key, c.upstream_partition_key) for c in stale.causes] == [
        ("daily", "2024-01-14")
    ]


def test_dynamic_upstream(stubs: Stubs, staleness: StalenessServiceStub, namespace: str) -> None:
    customers = pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers"))
    all_mapping = pb.PartitionMapping(all=pb.AllMapping())
    apply(
        stubs,
        namespace,
        asset("customers", customers),
        asset("scores", customers, "customers"),
        asset("report", DAILY, ("customers", all_mapping)),
    )
    stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["acme", "globex"]
        )
    )
    materialize(stubs, namespace, "customers", ["acme"], "v1")
    materialize(stubs, namespace, "report", ["2024-01-14"], "r1")
    report = status_of(staleness, namespace, "report", "2024-01-14")
    assert [(c.kind, c.upstream_partition_key) for c in report.causes] == [
        (stale_pb.STALE_CAUSE_KIND_UPSTREAM_MISSING, "globex")
    ]
    plan = planned(staleness, namespace)
    assert plan[("customers", "globex")] is True
    assert plan[("scores", "acme")] is True
    assert plan[("scores", "globex")] is False  # waits for customers globex, planned upstream
    # A key added at run time is a new partition, missing until materialized.
    stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["initech"]
        )
    )
    response = staleness.GetStaleness(
        stale_pb.GetStalenessRequest(namespace=namespace, asset_keys=["customers"], as_of=AS_OF)
    )
    [summary] = response.assets
    assert (summary.fresh_count, summary.missing_count) == (1, 2)
    assert [(r.first_partition_key, r.last_partition_key) for r in summary.missing_ranges] == [
        ("globex", "initech")
    ]


def test_dagster_non_transitive_rule_and_the_transitive_answer_with_its_path(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(
        stubs,
        namespace,
        asset("up", DAILY),
        asset("down", DAILY, "up"),
        asset("down2", DAILY, "down"),
    )
    for asset_key in ("up", "down", "down2"):
        materialize(stubs, namespace, asset_key, ["2024-01-05"])
    materialize(stubs, namespace, "up", ["2024-01-05"])
    assert status_of(staleness, namespace, "down", "2024-01-05").status == STALE
    # Dagster's rule: only direct dependencies count.
    assert status_of(staleness, namespace, "down2", "2024-01-05").status == FRESH
    transitive = status_of(staleness, namespace, "down2", "2024-01-05", transitive=True)
    assert transitive.status == STALE
    [cause] = transitive.causes
    assert cause.kind == stale_pb.STALE_CAUSE_KIND_UPSTREAM_STALE
    assert [(hop.asset_key, hop.partition_key) for hop in cause.path] == [("down", "2024-01-05")]
    assert "up 2024-01-05 was materialized after" in cause.message
    # The same over the whole asset (the set-based path).
    whole = staleness.GetStaleness(
        stale_pb.GetStalenessRequest(
            namespace=namespace,
            asset_keys=["down2"],
            as_of=AS_OF,
            options=stale_pb.StalenessOptions(transitive=True),
        )
    )
    by_key = {p.partition_key: p for p in whole.partitions}
    assert by_key["2024-01-05"] == transitive
    assert whole.assets[0].stale_count == 1


def test_code_version_and_dependency_changes(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("a", DAILY), asset("b", DAILY), asset("c", DAILY, "a"))
    materialize(stubs, namespace, "a", ["2024-01-05"])
    materialize(stubs, namespace, "b", ["2024-01-05"])
    materialize(stubs, namespace, "c", ["2024-01-05"])
    changed_c = asset("c", DAILY, "b")
    changed_c.code_version = "2"
    apply(stubs, namespace, asset("a", DAILY), asset("b", DAILY), changed_c)
    status = status_of(staleness, namespace, "c", "2024-01-05")
    assert [(c.kind, c.upstream_asset_key) for c in status.causes] == [
        (stale_pb.STALE_CAUSE_KIND_CODE_VERSION_CHANGED, ""),
        (stale_pb.STALE_CAUSE_KIND_DEPENDENCY_REMOVED, "a"),
        (stale_pb.STALE_CAUSE_KIND_DEPENDENCY_ADDED, "b"),
    ]


def test_whole_namespace_pages_at_one_event_position(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("up", DAILY), asset("down", DAILY, "up"))
    materialize(stubs, namespace, "up", [f"2024-01-{day:02d}" for day in range(1, 15)])
    materialize(stubs, namespace, "down", ["2024-01-02", "2024-01-03"])
    materialize(stubs, namespace, "up", ["2024-01-03"])

    def page(token: str = "") -> stale_pb.GetStalenessResponse:
        return staleness.GetStaleness(
            stale_pb.GetStalenessRequest(
                namespace=namespace, as_of=AS_OF, page_size=5, page_token=token
            )
        )

    first = page()
    assert first.event_position > 0
    assert [a.asset_key for a in first.assets] == ["up", "down"]
    down = first.assets[1]
    assert (down.fresh_count, down.stale_count, down.missing_count) == (1, 1, 12)
    assert [
        (r.first_partition_key, r.last_partition_key, r.count) for r in down.missing_ranges
    ] == [
        ("2024-01-01", "2024-01-01", 1),
        ("2024-01-04", "2024-01-14", 11),
    ]
    assert down.missing_ranges[1].end_time.ToDatetime(tzinfo=UTC) == datetime(
        2024, 1, 15, tzinfo=UTC
    )
    listed = list(first.partitions)
    token = first.next_page_token
    while token:
        following = page(token)
        assert (following.as_of, following.event_position) == (first.as_of, first.event_position)
        listed.extend(following.partitions)
        token = following.next_page_token
    assert [(p.asset_key, p.partition_key) for p in listed] == [
        ("down", key)
        for key in ["2024-01-01", "2024-01-03", *(f"2024-01-{d:02d}" for d in range(4, 15))]
    ]
    # Events written after the first page change nothing in the pages that follow it: they
    # come from the answer the first page saw.
    second = page(first.next_page_token)
    materialize(stubs, namespace, "down", ["2024-01-07", "2024-01-08"])
    again = page(first.next_page_token)
    assert again == second
    assert ("down", "2024-01-07") in {(p.asset_key, p.partition_key) for p in again.partitions}
    assert page().event_position > first.event_position


def test_unknown_assets_and_bad_requests(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("a", DAILY), asset("b", DAILY))
    with pytest.raises(grpc.RpcError) as unknown:
        staleness.GetStaleness(stale_pb.GetStalenessRequest(namespace=namespace, asset_keys=["x"]))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as two:
        staleness.GetStaleness(
            stale_pb.GetStalenessRequest(
                namespace=namespace, asset_keys=["a", "b"], selection=keys("2024-01-01")
            )
        )
    assert two.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as token:
        staleness.PlanRuns(stale_pb.PlanRunsRequest(namespace=namespace, page_token="nope"))
    assert token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_page_token_keeps_the_server_clock_as_of_exactly(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    request = stale_pb.GetStalenessRequest(namespace=namespace, page_size=2)
    first = staleness.GetStaleness(request)
    assert first.as_of.nanos % 1000 == 0
    assert first.next_page_token
    request.page_token = first.next_page_token
    second = staleness.GetStaleness(request)
    assert second.as_of == first.as_of
    assert second.assets == first.assets
    assert [p.partition_key for p in second.partitions] == ["2024-01-03", "2024-01-04"]


def test_plan_limit_ranges_and_dependency_order(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("up", DAILY), asset("down", DAILY, "up"))
    whole = staleness.PlanRuns(
        stale_pb.PlanRunsRequest(namespace=namespace, as_of=AS_OF, catch_up=True)
    )
    # Everything is missing: all of `up` can run now; `down` waits for it, one run each.
    assert [(r.asset_key, r.ready, r.reason) for r in whole.runs] == [
        ("up", True, "missing"),
        ("down", False, "missing"),
    ]
    [up, _] = whole.runs
    assert (up.range.first_partition_key, up.range.last_partition_key, up.range.count) == (
        "2024-01-01",
        "2024-01-14",
        14,
    )
    assert up.range.end_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 15, tzinfo=UTC)
    assert (whole.total_runs, whole.total_partitions) == (2, 28)
    limited = staleness.PlanRuns(
        stale_pb.PlanRunsRequest(namespace=namespace, as_of=AS_OF, catch_up=True, limit=5)
    )
    assert [(r.asset_key, r.range.count) for r in limited.runs] == [("up", 5)]


def test_an_observed_source_asset_and_its_readers(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("prices", DAILY), asset("report", DAILY, "prices"))

    def observe(data_version: str) -> None:
        event = events_pb.Event(
            idempotency_key=f"e{next(_ids)}",
            event_time=AS_OF,  # when the last partition asked about exists
            observation=events_pb.Observation(
                asset_key="prices", partition_key="2024-01-05", data_version=data_version
            ),
        )
        stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=[event])
        )

    observe("v1")
    materialize(stubs, namespace, "report", ["2024-01-05"])
    # Observed, never materialized: a source that exists, not something to run.
    assert status_of(staleness, namespace, "prices", "2024-01-05").status == FRESH
    assert ("prices", "2024-01-05") not in planned(staleness, namespace, catch_up=True)
    assert status_of(staleness, namespace, "report", "2024-01-05").status == FRESH
    observe("v1")  # the same data version again: nothing changed
    assert status_of(staleness, namespace, "report", "2024-01-05").status == FRESH
    observe("v2")
    report = status_of(staleness, namespace, "report", "2024-01-05")
    assert report.status == STALE
    [cause] = report.causes
    assert cause.message == (
        "prices 2024-01-05 was observed with a new data version after this partition"
    )
    assert planned(staleness, namespace, catch_up=True)[("report", "2024-01-05")] is True


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (
            stale_pb.StalenessOptions(
                transitive=True, semantics=stale_pb.STALENESS_SEMANTICS_DAGSTER
            ),
            "options.transitive",
        ),
        (stale_pb.StalenessOptions(semantics=7), "options.semantics"),  # type: ignore[arg-type]
    ],
)
def test_options_dagster_does_not_have_are_refused_naming_the_field(
    stubs: Stubs,
    staleness: StalenessServiceStub,
    namespace: str,
    options: stale_pb.StalenessOptions,
    field: str,
) -> None:
    apply(stubs, namespace, asset("daily_sales_data", DAILY))
    with pytest.raises(grpc.RpcError) as asked:
        staleness.GetStaleness(stale_pb.GetStalenessRequest(namespace=namespace, options=options))
    with pytest.raises(grpc.RpcError) as planning:
        staleness.PlanRuns(stale_pb.PlanRunsRequest(namespace=namespace, options=options))
    for raised in (asked, planning):
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == [field]


def test_an_observable_source_is_stored_and_fresh_unobserved_while_its_reader_runs(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    source = asset("raw_feed", DAILY)
    source.observable_source = True
    apply(stubs, namespace, source, asset("daily_sales_data", DAILY, "raw_feed"))
    stored = stubs.definitions.GetAsset(
        defs_pb.GetAssetRequest(namespace=namespace, asset_key="raw_feed")
    )
    assert stored.asset.observable_source is True
    for semantics in (stale_pb.STALENESS_SEMANTICS_EXTENDED, stale_pb.STALENESS_SEMANTICS_DAGSTER):
        assert (
            status_of(staleness, namespace, "raw_feed", "2024-01-10", semantics=semantics).status
            == FRESH
        )
    plan = planned(staleness, namespace, catch_up=True)
    assert ("daily_sales_data", "2024-01-10") in plan
    assert not any(asset_key == "raw_feed" for asset_key, _ in plan)
