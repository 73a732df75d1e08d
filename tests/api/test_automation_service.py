"""AutomationService over a real channel: ticks are idempotent by id, one at a time per
namespace, stored with their evaluation trees, paged, and read back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2 as automation_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from tests.automation.replay import load_cases

from .builders import DAILY, asset, condition, materialization, time_window, timestamp
from .conftest import Stubs, serving
from .errors import error_info, field_violations
from .test_automation_cases import CaseReplay, requested

SEED = next(case for case in load_cases() if case["id"] == "a0000-behaviour")
# The seed's tick that requests weekly_sales_summary 2024-01-07 (the week's seventh day is in).
WEEKLY_TICK = 16


def _evaluate(
    stubs: Stubs, namespace: str, tick_id: str, at: str, page_size: int = 0
) -> automation_pb.EvaluateAutomationResponse:
    return stubs.automation.EvaluateAutomation(
        automation_pb.EvaluateAutomationRequest(
            namespace=namespace,
            tick_id=tick_id,
            evaluation_time=timestamp(at),
            page_size=page_size,
        )
    )


def _seed_until(stubs: Stubs, namespace: str, last: int) -> CaseReplay:
    """The seed timeline evaluated up to tick `last - 1`, with tick `last`'s events reported."""
    replay = CaseReplay(stubs, namespace, SEED)
    for index, tick in enumerate(SEED["ticks"][: last + 1]):
        for event in tick["events"]:
            replay.apply(event)
        if index < last:
            replay.evaluate(index, tick["evaluation_time"])
    replay.flush()
    return replay


def test_the_seed_tick_says_why_the_week_was_requested(stubs: Stubs, namespace: str) -> None:
    _seed_until(stubs, namespace, WEEKLY_TICK)
    at = SEED["ticks"][WEEKLY_TICK]["evaluation_time"]
    evaluated = _evaluate(stubs, namespace, "weekly", at).tick

    read = stubs.automation.GetAutomationTick(
        automation_pb.GetAutomationTickRequest(
            namespace=namespace, tick_id="weekly", evaluation_asset_keys=["weekly_sales_summary"]
        )
    )

    assert requested(evaluated) == [
        {"asset": "weekly_sales_summary", "partition_keys": ["2024-01-07"]}
    ]
    assert read.tick == evaluated
    assert [e.asset_key for e in read.evaluations] == ["weekly_sales_summary"]
    root = read.evaluations[0].root
    assert (root.label, root.true_count) == ("eager", 1)
    (week,) = root.true_ranges
    assert (week.first_partition_key, week.last_partition_key, week.count) == (
        "2024-01-07",
        "2024-01-07",
        1,
    )
    assert week.start_time == timestamp("2024-01-07T00:00:00+00:00")
    assert week.end_time == timestamp("2024-01-14T00:00:00+00:00")
    assert [child.label for child in root.children][:2] == ["in_latest_time_window", "since"]
    assert all(child.candidate_count >= child.true_count for child in root.children)
    # Below any_deps_updated, the dependency's own partitions: the day its run just wrote.
    updated = _find(root, "any_deps_updated", "daily_sales_data", "newly_updated")
    (day,) = updated.true_ranges
    assert (day.first_partition_key, day.count) == ("2024-01-13", 1)
    assert day.end_time.seconds - day.start_time.seconds == 86400
    (run,) = evaluated.run_requests
    assert (run.partition_key, list(run.asset_keys)) == ("2024-01-07", ["weekly_sales_summary"])


def _find(
    node: automation_pb.ConditionEvaluation, *labels: str
) -> automation_pb.ConditionEvaluation:
    """The first node below `node` (depth first) with these labels along its path."""
    if not labels:
        return node
    for child in node.children:
        found = _find(child, *labels[1:]) if child.label == labels[0] else _find(child, *labels)
        if found.label == labels[-1]:
            return found
    return automation_pb.ConditionEvaluation()


def test_a_retried_tick_returns_the_stored_answer_and_changes_nothing(
    stubs: Stubs, namespace: str
) -> None:
    replay = CaseReplay(stubs, namespace, SEED)
    ticks = SEED["ticks"]
    for event in ticks[0]["events"]:
        replay.apply(event)
    for index, tick in enumerate(ticks):
        first = replay.evaluate(index, tick["evaluation_time"])
        # Retried once the next tick's events are in: a retry reads none of them, and the
        # next tick still sees them as new.
        for event in ticks[index + 1]["events"] if index + 1 < len(ticks) else []:
            replay.apply(event)
        replay.flush()
        retries = [replay.evaluate(index, tick["evaluation_time"]) for _ in range(2)]
        assert retries == [first, first]
        assert requested(first) == tick["expected"]["requested"], f"tick {index}"

    listed = stubs.automation.ListAutomationTicks(
        automation_pb.ListAutomationTicksRequest(namespace=namespace, page_size=1000)
    )
    assert [t.tick_id for t in listed.ticks] == [
        f"tick-{index}" for index in reversed(range(len(SEED["ticks"])))
    ]
    assert [t.sequence for t in listed.ticks] == list(range(len(SEED["ticks"]), 0, -1))


def test_concurrent_ticks_of_one_namespace_request_each_partition_once(
    stubs: Stubs, namespace: str
) -> None:
    _seed_until(stubs, namespace, WEEKLY_TICK)
    at = SEED["ticks"][WEEKLY_TICK]["evaluation_time"]
    callers = 8
    start = threading.Barrier(callers)
    calls: dict[str, list[automation_pb.AutomationTick]] = {}
    lock = threading.Lock()

    def call(tick_id: str) -> None:
        start.wait()
        tick = _evaluate(stubs, namespace, tick_id, at).tick
        with lock:
            calls.setdefault(tick_id, []).append(tick)

    threads = [
        threading.Thread(target=call, args=(f"racer-{index % 4}",)) for index in range(callers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Four tick ids, each called twice: one stored tick per id, each partition requested once.
    assert all(len(ticks) == 2 and ticks[0] == ticks[1] for ticks in calls.values())
    answers = {tick_id: ticks[0] for tick_id, ticks in calls.items()}
    assert len(answers) == 4
    requests = [
        (item["asset"], key)
        for tick in answers.values()
        for item in requested(tick)
        for key in item["partition_keys"] or [None]
    ]
    assert requests == [("weekly_sales_summary", "2024-01-07")]
    assert sorted(tick.sequence for tick in answers.values()) == [
        WEEKLY_TICK + 1,
        WEEKLY_TICK + 2,
        WEEKLY_TICK + 3,
        WEEKLY_TICK + 4,
    ]
    listed = stubs.automation.ListAutomationTicks(
        automation_pb.ListAutomationTicksRequest(namespace=namespace, page_size=4)
    )
    assert sorted(t.tick_id for t in listed.ticks) == sorted(answers)


def test_new_means_committed_after_the_previous_tick_whatever_the_event_time(
    stubs: Stubs, namespace: str
) -> None:
    child = asset("child", DAILY, "parent")
    child.automation_condition.CopyFrom(condition({"type": "eager"}))
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("parent", DAILY), child])
    )
    for index, at in enumerate(["2024-02-01T10:00:00+00:00", "2024-02-02T10:00:00+00:00"]):
        assert not _evaluate(stubs, namespace, f"t{index}", at).tick.requested
    # Reported after the second tick, though it happened before it: new to the third tick.
    stubs.events.ReportEvents(
        events_pb.ReportEventsRequest(
            namespace=namespace,
            events=[materialization("late", "parent", "2024-02-01", "2024-02-02T05:00:00+00:00")],
        )
    )

    third = _evaluate(stubs, namespace, "t2", "2024-02-02T11:00:00+00:00").tick

    assert requested(third) == [{"asset": "child", "partition_keys": ["2024-02-01"]}]
    assert third.event_position > 0


def _lookback_namespace(stubs: Stubs, namespace: str) -> None:
    three_days: dict[str, Any] = {
        "type": "and",
        "operands": [
            {"type": "in_latest_time_window", "lookback_seconds": 3 * 86400},
            {"type": "missing"},
        ],
    }
    assets = [
        asset("a_hourly", time_window("0 * * * *", fmt="%Y-%m-%d-%H:%M")),
        asset("b_daily", DAILY),
    ]
    for message in assets:
        message.automation_condition.CopyFrom(condition(three_days))
    stubs.definitions.ApplyAssets(defs_pb.ApplyAssetsRequest(namespace=namespace, assets=assets))


def test_a_large_tick_is_paged_through_get_automation_tick(stubs: Stubs, namespace: str) -> None:
    _lookback_namespace(stubs, namespace)
    first = _evaluate(stubs, namespace, "big", "2024-03-01T00:30:00+00:00", page_size=10)
    whole = _evaluate(stubs, namespace, "big", "2024-03-01T00:30:00+00:00", page_size=10_000)

    keys: dict[str, list[str]] = {item.asset_key: [] for item in first.tick.requested}
    runs: list[tuple[str, tuple[str, ...]]] = []
    page: automation_pb.AutomationTick = first.tick
    token = first.next_page_token
    pages = 1
    while True:
        for item in page.requested:
            keys[item.asset_key].extend(item.partitions.partition_keys)
        runs.extend((run.partition_key, tuple(run.asset_keys)) for run in page.run_requests)
        assert len(page.run_requests) <= 10
        assert sum(len(item.partitions.partition_keys) for item in page.requested) <= 10
        if not token:
            break
        pages += 1
        next_page = stubs.automation.GetAutomationTick(
            automation_pb.GetAutomationTickRequest(
                namespace=namespace, tick_id="big", page_size=10, page_token=token
            )
        )
        assert not next_page.evaluations  # on the first page only
        page, token = next_page.tick, next_page.next_page_token

    assert not whole.next_page_token
    assert keys == {
        item.asset_key: list(item.partitions.partition_keys) for item in whole.tick.requested
    }
    assert runs == [(run.partition_key, tuple(run.asset_keys)) for run in whole.tick.run_requests]
    assert len(keys["a_hourly"]) == whole.tick.requested[0].partitions.count > 60
    assert [r.count for r in whole.tick.requested[0].partitions.ranges] == [len(keys["a_hourly"])]
    assert pages == -(-max(sum(len(k) for k in keys.values()), len(runs)) // 10)


def test_a_page_token_serves_only_its_own_tick(stubs: Stubs, namespace: str) -> None:
    _lookback_namespace(stubs, namespace)
    token = _evaluate(stubs, namespace, "one", "2024-03-01T00:30:00+00:00", 5).next_page_token
    _evaluate(stubs, namespace, "two", "2024-03-01T00:40:00+00:00", 5)

    with pytest.raises(grpc.RpcError) as raised:
        stubs.automation.GetAutomationTick(
            automation_pb.GetAutomationTickRequest(
                namespace=namespace, tick_id="two", page_token=token
            )
        )

    assert error_info(raised.value).reason == "INVALID_PAGE_TOKEN"


def _refusal(call: Any) -> tuple[grpc.StatusCode, str, list[str]]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    return error.code(), error_info(error).reason, field_violations(error)


def test_refusals_name_their_reason_and_field(stubs: Stubs, namespace: str) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("a", DAILY)])
    )
    _evaluate(stubs, namespace, "t1", "2024-02-01T00:00:00+00:00")
    automation = stubs.automation

    assert _refusal(lambda: _evaluate(stubs, namespace, "t2", "2024-01-31T23:59:59+00:00")) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "EVALUATION_TIME_BEFORE_LAST_TICK",
        [],
    )
    assert _refusal(lambda: _evaluate(stubs, namespace, "t1", "2024-02-02T00:00:00+00:00")) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "TICK_ID_CONFLICT",
        [],
    )
    assert _refusal(
        lambda: automation.GetAutomationTick(
            automation_pb.GetAutomationTickRequest(namespace=namespace, tick_id="nope")
        )
    ) == (grpc.StatusCode.NOT_FOUND, "TICK_NOT_FOUND", [])
    assert _refusal(
        lambda: automation.EvaluateAutomation(
            automation_pb.EvaluateAutomationRequest(namespace=namespace, tick_id="t3")
        )
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", ["evaluation_time"])
    assert _refusal(lambda: _evaluate(stubs, namespace, "", "2024-02-02T00:00:00+00:00")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["tick_id"],
    )
    assert _refusal(lambda: _evaluate(stubs, f"{namespace}-x", "t", "2024-02-02T00:00:00+00:00"))[
        :2
    ] == (grpc.StatusCode.NOT_FOUND, "NAMESPACE_NOT_FOUND")
    assert _refusal(
        lambda: automation.GetAutomationTick(
            automation_pb.GetAutomationTickRequest(
                namespace=namespace, tick_id="t1", evaluation_asset_keys=["a"]
            )
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND", [])
    # Nothing of the refused calls was stored.
    listed = automation.ListAutomationTicks(
        automation_pb.ListAutomationTicksRequest(namespace=namespace)
    )
    assert [t.tick_id for t in listed.ticks] == ["t1"]


def test_ticks_are_listed_newest_first_in_pages(stubs: Stubs, namespace: str) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("a", DAILY)])
    )
    for day in range(1, 8):
        _evaluate(stubs, namespace, f"day-{day}", f"2024-02-0{day}T00:00:00+00:00")

    seen: list[str] = []
    token = ""
    while True:
        page = stubs.automation.ListAutomationTicks(
            automation_pb.ListAutomationTicksRequest(
                namespace=namespace, page_size=3, page_token=token
            )
        )
        seen.extend(t.tick_id for t in page.ticks)
        token = page.next_page_token
        if not token:
            break

    assert seen == [f"day-{day}" for day in range(7, 0, -1)]


@pytest.fixture
def second_server(database_url: str) -> Iterator[Stubs]:
    """Another server on the same database, with histories of its own."""
    with (
        serving(database_url, workers=4) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield Stubs.of(channel)


def test_ticks_alternating_between_two_servers_read_every_event_once(
    stubs: Stubs, second_server: Stubs, namespace: str
) -> None:
    # Each server keeps the histories it fed; each tick extends its own with what the other
    # server's ticks already read, and marks as new only what came after the previous tick.
    replay = CaseReplay(stubs, namespace, SEED)
    for index, tick in enumerate(SEED["ticks"]):
        for event in tick["events"]:
            replay.apply(event)
        replay.flush()
        server = (stubs, second_server)[index // 2 % 2]  # two ticks on each, in turn
        answer = _evaluate(server, namespace, f"tick-{index}", tick["evaluation_time"]).tick
        assert requested(answer) == tick["expected"]["requested"], f"tick {index}"
