"""Runs over a real channel and Postgres: leases, heartbeats, ends, ListRuns, PlanRuns waiting.

Leases are measured against the `as_of` of each read, so every test sets event times and
as_of and nothing waits for a clock.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps import cli
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.gen.partitiondeps.v1.events_service_pb2_grpc import EventsServiceStub
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import (
    StalenessServiceStub,
)

from .builders import DAILY, asset
from .conftest import Stubs, serving
from .errors import error_info, field_violations
from .test_staleness import apply

# Daily partitions up to 2024-01-14 exist from here on.
T0 = datetime(2024, 1, 15, tzinfo=UTC)
_ids = itertools.count()


@pytest.fixture(scope="module")
def staleness(stubs: Stubs) -> StalenessServiceStub:
    return StalenessServiceStub(stubs.channel)


def at(minutes: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(T0 + timedelta(minutes=minutes))
    return stamp


def event(minutes: float, **kind: object) -> events_pb.Event:
    return events_pb.Event(
        idempotency_key=f"k{next(_ids)}",
        event_time=at(minutes),
        **kind,  # type: ignore[arg-type]
    )


def started(
    run_id: str, minutes: float, targets: list[tuple[str, str]], lease_minutes: float | None
) -> events_pb.Event:
    body = events_pb.RunStarted(
        run_id=run_id,
        targets=[events_pb.PartitionTarget(asset_key=a, partition_key=p) for a, p in targets],
    )
    if lease_minutes is not None:
        body.lease.FromTimedelta(timedelta(minutes=lease_minutes))
    return event(minutes, run_started=body)


def materialized(
    run_id: str, minutes: float, asset_key: str, partition_key: str
) -> events_pb.Event:
    return event(
        minutes,
        materialization=events_pb.Materialization(
            asset_key=asset_key, partition_key=partition_key, run_id=run_id
        ),
    )


def report(stubs: Stubs, namespace: str, *events: events_pb.Event) -> None:
    stubs.events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=events))


def plan(
    staleness: StalenessServiceStub, namespace: str, minutes: float, **fields: object
) -> dict[tuple[str, str], stale_pb.PlannedRun]:
    response = staleness.PlanRuns(
        stale_pb.PlanRunsRequest(
            namespace=namespace,
            as_of=at(minutes),
            include_keys=True,
            **fields,  # type: ignore[arg-type]
        )
    )
    assert not response.next_page_token
    return {(run.asset_key, key): run for run in response.runs for key in run.partition_keys}


def staleness_of(
    staleness: StalenessServiceStub, namespace: str, minutes: float, asset_key: str, key: str
) -> stale_pb.PartitionStaleness:
    response = staleness.GetStaleness(
        stale_pb.GetStalenessRequest(
            namespace=namespace,
            asset_keys=[asset_key],
            as_of=at(minutes),
            include_fresh=True,
        )
    )
    return {p.partition_key: p for p in response.partitions}[key]


def runs_at(stubs: Stubs, namespace: str, minutes: float) -> list[events_pb.RunInProgress]:
    return list(
        stubs.events.ListRuns(
            events_pb.ListRunsRequest(namespace=namespace, as_of=at(minutes))
        ).runs
    )


def test_a_scheduler_loop_relaunches_what_a_crashed_run_held_once_its_lease_expires(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    """A loop that plans every five minutes and launches what is ready. The first run it
    launches crashes without a word; its partition is held (and the downstream waits for it)
    until its ten-minute lease expires, then it is planned again and the loop finishes."""
    apply(stubs, namespace, asset("up", DAILY), asset("down", DAILY, "up"))
    lease_minutes = 10
    launched: list[tuple[float, str, tuple[str, str]]] = []
    waiting_seen: list[tuple[float, tuple[str, ...]]] = []
    for tick in range(12):
        minutes = 5 * tick
        planned = plan(staleness, namespace, minutes)
        if not planned:
            break
        for (asset_key, key), run in sorted(planned.items()):
            if run.waiting_for_runs:
                waiting_seen.append((minutes, tuple(run.waiting_for_runs)))
            if not run.ready:
                continue
            run_id = f"run-{len(launched)}"
            launched.append((minutes, run_id, (asset_key, key)))
            report(stubs, namespace, started(run_id, minutes, [(asset_key, key)], lease_minutes))
            if run_id == "run-0":
                continue  # crashed: no materialization, no end, no heartbeat
            report(
                stubs,
                namespace,
                materialized(run_id, minutes, asset_key, key),
                event(minutes, run_succeeded=events_pb.RunSucceeded(run_id=run_id)),
            )
    else:
        raise AssertionError(f"the loop never settled: {launched}")
    assert launched == [
        (0, "run-0", ("up", "2024-01-14")),
        (10, "run-1", ("up", "2024-01-14")),  # the lease of run-0 ended at minute 10
        (15, "run-2", ("down", "2024-01-14")),
    ]
    assert waiting_seen == [(5, ("run-0",))]
    for asset_key in ("up", "down"):
        status = staleness_of(staleness, namespace, 15, asset_key, "2024-01-14")
        assert status.status == stale_pb.STALE_STATUS_FRESH
    assert runs_at(stubs, namespace, 15) == []


def test_an_expired_lease_is_a_cause_and_frees_the_partition(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("up", DAILY), asset("down", DAILY, "up"))
    report(stubs, namespace, started("r1", 0, [("up", "2024-01-14")], 30))
    held = staleness_of(staleness, namespace, 29, "up", "2024-01-14")
    assert [cause.kind for cause in held.causes] == [stale_pb.STALE_CAUSE_KIND_NEVER_MATERIALIZED]
    assert ("up", "2024-01-14") not in plan(staleness, namespace, 29)
    down = plan(staleness, namespace, 29)[("down", "2024-01-14")]
    assert (down.ready, list(down.waiting_for_runs)) == (False, ["r1"])

    expired = staleness_of(staleness, namespace, 30, "up", "2024-01-14")
    assert expired.status == stale_pb.STALE_STATUS_MISSING
    assert [cause.kind for cause in expired.causes] == [
        stale_pb.STALE_CAUSE_KIND_NEVER_MATERIALIZED,
        stale_pb.STALE_CAUSE_KIND_RUN_LEASE_EXPIRED,
    ]
    assert "'r1'" in expired.causes[1].message
    freed = plan(staleness, namespace, 30)
    assert freed[("up", "2024-01-14")].ready
    assert list(freed[("down", "2024-01-14")].waiting_for_runs) == []
    # A fresh partition says nothing of the run: it needs nothing.
    report(stubs, namespace, materialized("r2", 31, "up", "2024-01-14"))
    fresh = staleness_of(staleness, namespace, 40, "up", "2024-01-14")
    assert (fresh.status, list(fresh.causes)) == (stale_pb.STALE_STATUS_FRESH, [])


def test_a_heartbeat_renews_the_lease_from_its_own_time(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    report(stubs, namespace, started("r1", 0, [("daily", "2024-01-14")], 10))
    report(stubs, namespace, event(8, run_heartbeat=events_pb.RunHeartbeat(run_id="r1")))
    # An older heartbeat arriving late does not shorten the lease.
    report(stubs, namespace, event(3, run_heartbeat=events_pb.RunHeartbeat(run_id="r1")))
    [run] = runs_at(stubs, namespace, 17)
    assert run.run_id == "r1"
    assert run.started_time == at(0)
    assert run.last_heartbeat_time == at(8)
    assert run.lease_expiry_time == at(18)
    assert ("daily", "2024-01-14") not in plan(staleness, namespace, 17)
    assert runs_at(stubs, namespace, 18) == []
    assert ("daily", "2024-01-14") in plan(staleness, namespace, 18)


def test_the_server_default_lease_applies_when_a_run_gives_none(
    stubs: Stubs, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    report(stubs, namespace, started("r1", 0, [("daily", "2024-01-14")], None))
    [run] = runs_at(stubs, namespace, 0)
    assert run.lease_expiry_time == at(60)  # the test server keeps the default: one hour
    assert not run.HasField("last_heartbeat_time")
    assert [(t.asset_key, t.partition_key) for t in run.targets] == [("daily", "2024-01-14")]


def test_a_server_configured_with_another_default_lease_applies_it(
    stubs: Stubs, namespace: str, database_url: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    with (
        serving(database_url, workers=2, run_lease_seconds=120) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        events = EventsServiceStub(channel)
        events.ReportEvents(
            events_pb.ReportEventsRequest(
                namespace=namespace,
                events=[started("r1", 0, [("daily", "2024-01-14")], None)],
            )
        )
        listed = events.ListRuns(events_pb.ListRunsRequest(namespace=namespace, as_of=at(0)))
    assert [run.lease_expiry_time for run in listed.runs] == [at(2)]


def test_the_lease_flag_is_bounded() -> None:
    args = cli._parser().parse_args(["serve", "--run-lease-seconds", "600"])
    assert cli._run_lease_seconds(args.run_lease_seconds) == 600
    assert cli._parser().parse_args(["serve"]).run_lease_seconds == 3600
    for seconds in ("0", "-5", str(31 * 86400)):
        args = cli._parser().parse_args(["serve", "--run-lease-seconds", seconds])
        with pytest.raises(SystemExit):
            cli._run_lease_seconds(args.run_lease_seconds)


@pytest.mark.parametrize(
    "end",
    [
        events_pb.Event(run_succeeded=events_pb.RunSucceeded(run_id="r1")),
        events_pb.Event(run_canceled=events_pb.RunCanceled(run_id="r1", message="by hand")),
        events_pb.Event(run_failed=events_pb.RunFailed(run_id="r1", message="boom")),
    ],
    ids=["succeeded", "canceled", "failed"],
)
def test_a_run_that_ended_holds_nothing_and_stays_ended(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str, end: events_pb.Event
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    targets = [("daily", "2024-01-13"), ("daily", "2024-01-14")]
    report(stubs, namespace, started("r1", 0, targets, 60))
    assert not set(targets) & set(plan(staleness, namespace, 1, catch_up=True))
    report(stubs, namespace, materialized("r1", 1, "daily", "2024-01-14"))
    ending = events_pb.Event()
    ending.CopyFrom(end)
    ending.idempotency_key = f"end-{next(_ids)}"
    ending.event_time.CopyFrom(at(2))
    report(stubs, namespace, ending)
    assert runs_at(stubs, namespace, 3) == []
    planned = plan(staleness, namespace, 3, catch_up=True)
    assert ("daily", "2024-01-13") in planned
    assert ("daily", "2024-01-14") not in planned  # materialized: fresh
    # A RunStarted of the same run arriving after its end does not bring it back.
    report(stubs, namespace, started("r1", 4, targets, 60))
    assert runs_at(stubs, namespace, 5) == []
    assert ("daily", "2024-01-13") in plan(staleness, namespace, 5, catch_up=True)


def test_started_and_ended_in_one_batch_holds_nothing(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    report(
        stubs,
        namespace,
        started("r1", 0, [("daily", "2024-01-14")], 60),
        event(1, run_canceled=events_pb.RunCanceled(run_id="r1")),
    )
    assert runs_at(stubs, namespace, 2) == []
    assert ("daily", "2024-01-14") in plan(staleness, namespace, 2)


def test_list_runs_pages_by_run_id_at_the_first_pages_as_of(stubs: Stubs, namespace: str) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    report(
        stubs,
        namespace,
        *(started(f"r{n}", 0, [("daily", f"2024-01-{n:02d}")], 10 + n) for n in range(1, 8)),
    )
    request = events_pb.ListRunsRequest(namespace=namespace, as_of=at(12), page_size=3)
    pages = []
    while True:
        response = stubs.events.ListRuns(request)
        assert response.as_of == at(12)
        pages.append([run.run_id for run in response.runs])
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    # r1 (lease 11 minutes) and r2 (12) have expired at minute 12.
    assert pages == [["r3", "r4", "r5"], ["r6", "r7"]]
    other = events_pb.ListRunsRequest(
        namespace=namespace, as_of=at(13), page_token=request.page_token
    )
    with pytest.raises(grpc.RpcError) as refused:
        stubs.events.ListRuns(other)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    ("lease", "field"),
    [
        (Duration(seconds=-1), "events[0].run_started.lease"),
        (Duration(seconds=0), "events[0].run_started.lease"),
        (Duration(seconds=31 * 86400), "events[0].run_started.lease"),
        (Duration(seconds=1, nanos=2_000_000_000), "events[0].run_started.lease.nanos"),
    ],
)
def test_a_lease_out_of_bounds_is_refused_naming_it(
    stubs: Stubs, namespace: str, lease: Duration, field: str
) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    bad = started("r1", 0, [("daily", "2024-01-14")], None)
    bad.run_started.lease.CopyFrom(lease)
    with pytest.raises(grpc.RpcError) as refused:
        report(stubs, namespace, bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == [field]
    assert runs_at(stubs, namespace, 0) == []


def test_run_events_need_a_run_id(stubs: Stubs, namespace: str) -> None:
    apply(stubs, namespace, asset("daily", DAILY))
    for kind, body in (
        ("run_succeeded", events_pb.RunSucceeded()),
        ("run_canceled", events_pb.RunCanceled()),
        ("run_heartbeat", events_pb.RunHeartbeat()),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            report(stubs, namespace, event(0, **{kind: body}))
        assert field_violations(refused.value) == [f"events[0].{kind}.run_id"]
