"""Declarative automation: our evaluation core against Dagster 1.13.29, tick by tick, one run.

Run it from the repository root in the bench virtualenv (bench/README.md), about 15 minutes
with every row (`--rows` picks some):

    bench/.venv-dagster/bin/python -m bench.automation_vs_dagster

Rows:

- `seed`: the longest seed timeline of tests/automation/cases.jsonl (daily_sales_data on
  `on_cron("0 1 * * *")`, weekly_sales_summary eager). Runs are given to both sides as the plain
  materializations they end in, so both read the same events. Every tick is timed on both
  sides from the same previous state; the ratio is Dagster's median tick over ours.
- `17429`: Dagster issue 17429's shape (35 daily assets of about 2,000 partitions, 5 roots on
  a cron, 30 eager), one tick right after the newest day's roots materialize. Storing the
  70,000 past materializations in Dagster takes several minutes (`--skip-dagster-17429`).
- `thousand`: 1,000 daily assets over three years, one tick after a day's materializations
  (ours only).
- `rpc`: the same timelines through a server process (embedded Postgres in a temporary folder):
  ApplyAssets, ReportEvents in batches of 10,000, then AutomationService/EvaluateAutomation:
  the seed timeline tick by tick, and for each large shape one tick after its history, then
  `--rpc-days` more days, each a tick right after the roots materialize that day. Prints the
  median tick and the server's resident memory at the end.

Both sides' requests are compared on every timed tick; a difference prints MISMATCH and the
script exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:
    import dagster as dg
    from dagster._core.test_utils import freeze_time
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("dagster is not installed here: run this from the bench virtualenv (bench/README.md)")


import grpc

from bench.harness import ServerProcess, rss_kib
from partition_deps.api import convert
from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2 as auto_pb
from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2_grpc as auto_grpc
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2_grpc as defs_grpc
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2_grpc as events_grpc
from partition_deps.domain.automation.engine import TickOutcome
from partition_deps.domain.automation.timeline import Timeline, assets_from_json
from partition_deps.domain.codec import definition_from_json, mapping_from_json
from tests.live import free_port

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent


# ----- workloads, in the timelines' JSON form (plain materializations, no runs) ------------


def daily(start: datetime) -> Json:
    return {
        "type": "time_window",
        "cron_schedule": "0 0 * * *",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "end": None,
        "timezone": "UTC",
        "fmt": "%Y-%m-%d",
        "end_offset": 0,
        "exclusions": [],
    }


def _asset(key: str, partitions: Json | None, deps: list[str], condition: Json | None) -> Json:
    return {
        "key": key,
        "partitions": partitions,
        "deps": [{"upstream": dep, "mapping": None} for dep in deps],
        "automation_condition": condition,
        "code_version": None,
    }


def _materialization(asset: str, key: str, at: datetime) -> Json:
    return {
        "type": "materialization",
        "asset": asset,
        "partition_key": key,
        "data_version": None,
        "timestamp": at.isoformat(),
    }


def daily_graph(roots: int, eager: int, days: int, today: datetime, seed: int = 17429) -> Json:
    """`roots` daily assets on `on_cron("0 1 * * *")` and `eager` daily eager assets, each
    depending on one to three earlier assets; every partition materialized up to the day
    before yesterday. Tick 0 at 00:30 (yesterday's partition is new and not materialized),
    then the roots materialize yesterday at 01:10 and tick 1 at 01:30 is the one to time:
    the eager assets request yesterday's partition."""
    rng = random.Random(seed)
    start = today - timedelta(days=days)
    partitions = daily(start)
    cron = {"type": "on_cron", "cron_schedule": "0 1 * * *", "cron_timezone": "UTC"}
    assets = [_asset(f"root_{i:04d}", partitions, [], cron) for i in range(roots)]
    for i in range(eager):
        earlier = [asset["key"] for asset in assets]
        deps = sorted(rng.sample(earlier, min(len(earlier), rng.randint(1, 3))))
        assets.append(_asset(f"asset_{i:04d}", partitions, deps, {"type": "eager"}))
    history = []
    before = today - timedelta(days=1)
    for asset in assets:
        day = start
        while day < before - timedelta(days=0):
            if day + timedelta(days=1) <= before:
                at = day + timedelta(days=1, hours=2)
                history.append(_materialization(asset["key"], day.strftime("%Y-%m-%d"), at))
            day += timedelta(days=1)
    history.sort(key=lambda event: event["timestamp"])
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    roots_done = [
        _materialization(asset["key"], yesterday, today + timedelta(hours=1, minutes=10))
        for asset in assets[:roots]
    ]
    return {
        "id": f"daily-{roots}-{eager}-{days}",
        "assets": assets,
        "ticks": [
            {"events": history, "evaluation_time": (today + timedelta(minutes=30)).isoformat()},
            {"events": roots_done, "evaluation_time": (today + timedelta(minutes=90)).isoformat()},
        ],
    }


def issue_17429() -> Json:
    """Dagster issue 17429's shape: 35 daily assets of about 2,000 partitions, 5 roots on a
    cron, the rest eager."""
    return daily_graph(5, 30, 2000, datetime(2025, 6, 1, tzinfo=UTC))


def thousand_assets() -> Json:
    """1,000 daily assets over three years: 100 roots on a cron, 900 eager."""
    return daily_graph(100, 900, 3 * 365, datetime(2025, 6, 1, tzinfo=UTC))


# ----- the cases' JSON as Dagster objects ---------------------------------------------


def dagster_partitions(data: Json | None) -> Any:
    if data is None:
        return None
    kind = data["type"]
    if kind == "time_window":
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule=data["cron_schedule"],
            start=datetime.fromisoformat(data["start"]),
            timezone=data["timezone"],
            fmt=data["fmt"],
            end=datetime.fromisoformat(data["end"]) if data["end"] else None,
            end_offset=data["end_offset"],
        )
    if kind == "static":
        return dg.StaticPartitionsDefinition(data["partition_keys"])
    raise SystemExit(f"this benchmark builds no {kind} definitions")


def dagster_mapping(data: Json | None) -> Any:
    if data is None:
        return None
    if data["type"] == "time_window":
        return dg.TimeWindowPartitionMapping(
            start_offset=data.get("start_offset", 0), end_offset=data.get("end_offset", 0)
        )
    raise SystemExit(f"this benchmark builds no {data['type']} mappings")


def dagster_condition(data: Json) -> Any:
    c = dg.AutomationCondition
    kind = data["type"]
    if kind in ("and", "or"):
        operands = [dagster_condition(item) for item in data["operands"]]
        combined = operands[0]
        for operand in operands[1:]:
            combined = (combined & operand) if kind == "and" else (combined | operand)
        return combined
    if kind == "not":
        return ~dagster_condition(data["operand"])
    if kind == "since":
        return dagster_condition(data["trigger"]).since(dagster_condition(data["reset"]))
    if kind == "since_last_handled":
        return dagster_condition(data["operand"]).since_last_handled()
    if kind == "newly_true":
        return dagster_condition(data["operand"]).newly_true()
    if kind in ("on_cron", "cron_tick_passed", "all_deps_updated_since_cron"):
        return getattr(c, kind)(data["cron_schedule"], data["cron_timezone"])
    if kind in ("any_deps_match", "all_deps_match"):
        return getattr(c, kind)(dagster_condition(data["operand"]))
    if kind == "in_latest_time_window" and data.get("lookback_seconds"):
        from datetime import timedelta

        return c.in_latest_time_window(timedelta(seconds=data["lookback_seconds"]))
    return getattr(c, kind)()


def dagster_definitions(case: Json) -> dg.Definitions:
    assets = []
    for item in case["assets"]:
        condition = item["automation_condition"]

        def compute() -> None:
            return None

        assets.append(
            dg.asset(
                name=item["key"],
                partitions_def=dagster_partitions(item["partitions"]),
                deps=[
                    dg.AssetDep(dep["upstream"], partition_mapping=dagster_mapping(dep["mapping"]))
                    for dep in item["deps"]
                ],
                automation_condition=None if condition is None else dagster_condition(condition),
                code_version=item["code_version"],
            )(compute)
        )
    return dg.Definitions(assets=assets)


def plain_events(events: list[Json], runs: dict[str, Json]) -> list[Json]:
    """Runs become the materializations they end in (both sides get this list); `runs` holds
    the runs started so far."""
    plain = []
    for event in events:
        if event["type"] == "run_started":
            runs[event["run"]] = event
        elif event["type"] == "run_succeeded":
            run = runs[event["run"]]
            for asset in run["assets"]:
                plain.append(
                    {
                        "type": "materialization",
                        "asset": asset,
                        "partition_key": run["partition_key"],
                        "data_version": None,
                        "timestamp": event["timestamp"],
                    }
                )
        elif event["type"] in ("materialization", "observation"):
            plain.append(event)
    return plain


class DagsterSide:
    def __init__(self, case: Json) -> None:
        self.defs = dagster_definitions(case)
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: Any = None
        self.keys = [item["key"] for item in case["assets"]]

    def apply(self, event: Json, frozen: bool = True) -> None:
        kind = event["type"]
        tags = {"dagster/data_version": event["data_version"]} if event["data_version"] else None
        if kind == "materialization":
            record: Any = dg.AssetMaterialization(
                asset_key=event["asset"], partition=event["partition_key"], tags=tags
            )
        else:
            record = dg.AssetObservation(
                asset_key=event["asset"], partition=event["partition_key"], tags=tags
            )
        if frozen:
            with freeze_time(datetime.fromisoformat(event["timestamp"])):
                self.instance.report_runless_asset_event(record)
        else:
            self.instance.report_runless_asset_event(record)

    def evaluate(self, when: datetime, cursor: Any) -> tuple[Any, dict[str, set[str | None]]]:
        with freeze_time(when):
            result = dg.evaluate_automation_conditions(
                defs=self.defs, instance=self.instance, evaluation_time=when, cursor=cursor
            )
        requested: dict[str, set[str | None]] = {}
        for key in self.keys:
            asset_key = dg.AssetKey(key)
            if result.get_num_requested(asset_key):
                keys = result.get_requested_partitions(asset_key)
                requested[key] = set(keys) if keys else {None}
        return result.cursor, requested


def ours_requested(outcome: TickOutcome) -> dict[str, set[str | None]]:
    return {
        asset: {None} if keys is None else set(keys) for asset, keys in outcome.requested.items()
    }


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def our_timeline(case: Json) -> Timeline:
    return Timeline(assets_from_json(case["assets"], definition_from_json, mapping_from_json))


def time_ours_at(timeline: Timeline, when: datetime, repeats: int) -> tuple[float, TickOutcome]:
    """Median of `repeats` evaluations of one tick from the same previous state (the timeline
    is left as after one evaluation)."""
    state, seen = timeline.state, timeline.seen
    times = []
    outcome = None
    for _ in range(repeats):
        timeline.state, timeline.seen = state, seen
        elapsed, outcome = timed(lambda: timeline.evaluate(when))
        times.append(elapsed)
    assert outcome is not None

    return statistics.median(times), outcome


def report(name: str, ours: list[float], theirs: list[float] | None, target: str) -> None:
    ours_ms = statistics.median(ours) * 1000
    line = f"{name:<10} ours {ours_ms:9.2f} ms"
    if theirs:
        theirs_ms = statistics.median(theirs) * 1000
        line += f"   dagster {theirs_ms:10.2f} ms   ratio {theirs_ms / ours_ms:8.1f}x"
    print(f"{line}   ({len(ours)} timed; target {target})")


def longest_seed() -> Json:
    cases = [
        json.loads(line)
        for line in (ROOT / "tests" / "automation" / "cases.jsonl").read_text().splitlines()
    ]
    return max((c for c in cases if c["category"] == "seed"), key=lambda c: len(c["ticks"]))


def seed_row(repeats: int) -> bool:
    seed = longest_seed()
    timeline, dagster = our_timeline(seed), DagsterSide(seed)
    ours, theirs, same = [], [], True
    runs: dict[str, Json] = {}
    for tick in seed["ticks"]:
        when = datetime.fromisoformat(tick["evaluation_time"])
        for event in plain_events(tick["events"], runs):
            timeline.apply(event)
            dagster.apply(event)
        elapsed, outcome = time_ours_at(timeline, when, repeats)
        ours.append(elapsed)
        their_elapsed, (dagster.cursor, their_requested) = timed(
            functools.partial(dagster.evaluate, when, dagster.cursor)
        )
        theirs.append(their_elapsed)
        if ours_requested(outcome) != their_requested:
            print(f"MISMATCH seed {seed['id']} at {when}: {outcome.requested} vs {their_requested}")
            same = False
    report("seed", ours, theirs, ">= 50x per tick")
    return same


def one_tick_row(name: str, case: Json, with_dagster: bool, repeats: int) -> bool:
    setup, timed_tick = case["ticks"]
    timeline = our_timeline(case)
    for event in setup["events"]:
        timeline.apply(event)
    timeline.evaluate(datetime.fromisoformat(setup["evaluation_time"]))
    for event in timed_tick["events"]:
        timeline.apply(event)
    when = datetime.fromisoformat(timed_tick["evaluation_time"])
    elapsed, outcome = time_ours_at(timeline, when, repeats)
    ours = [elapsed]
    theirs: list[float] = []
    same = True
    if with_dagster:
        dagster = DagsterSide(case)
        started = time.perf_counter()
        for event in setup["events"]:
            dagster.apply(event, frozen=False)
        print(
            f"  ({name}: Dagster stored {len(setup['events'])} events in "
            f"{time.perf_counter() - started:.0f} s)"
        )
        cursor, _ = dagster.evaluate(datetime.fromisoformat(setup["evaluation_time"]), None)
        for event in timed_tick["events"]:
            dagster.apply(event)
        for _ in range(max(1, repeats // 3)):
            elapsed, (_, their_requested) = timed(lambda: dagster.evaluate(when, cursor))
            theirs.append(elapsed)
        if ours_requested(outcome) != their_requested:
            print(f"MISMATCH {name}: {len(outcome.requested)} vs {len(their_requested)} assets")
            same = False
    report(name, ours, theirs or None, "< 100 ms over RPC" if name == "17429" else "< 1 s over RPC")
    print(f"  ({name}: {len(outcome.requested)} assets requested on the timed tick)")
    return same


# ----- over gRPC ----------------------------------------------------------------------------


class Service:
    """A server process and stubs for it."""

    def __init__(self, folder: Path) -> None:
        self.server = ServerProcess(free_port(), folder / "pg", [])
        self.server.wait_serving()
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{self.server.port}",
            options=[("grpc.max_receive_message_length", 64 << 20)],
        )
        self.definitions = defs_grpc.DefinitionsServiceStub(self.channel)
        self.events = events_grpc.EventsServiceStub(self.channel)
        self.automation = auto_grpc.AutomationServiceStub(self.channel)
        self._serial = 0

    def apply(self, namespace: str, case: Json) -> None:
        assets = assets_from_json(case["assets"], definition_from_json, mapping_from_json)
        self.definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=namespace,
                assets=[convert.asset_to_proto(asset, 0) for asset in assets.values()],
            ),
            timeout=600,
        )

    def report(self, namespace: str, events: list[Json], runs: dict[str, Json]) -> None:
        batch: list[events_pb.Event] = []
        for event in plain_events(events, runs):
            self._serial += 1
            message = events_pb.Event(idempotency_key=f"e{self._serial}")
            message.event_time.CopyFrom(
                convert.instant_to_proto(datetime.fromisoformat(event["timestamp"]))
            )
            body = (
                message.materialization
                if event["type"] == "materialization"
                else (message.observation)
            )
            body.asset_key = event["asset"]
            if event["partition_key"] is not None:
                body.partition_key = event["partition_key"]
            if event["data_version"]:
                body.data_version = event["data_version"]
            batch.append(message)
            if len(batch) == 10_000:
                self._send(namespace, batch)
                batch = []
        if batch:
            self._send(namespace, batch)

    def _send(self, namespace: str, batch: list[events_pb.Event]) -> None:
        self.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=batch), timeout=600
        )

    def tick(self, namespace: str, when: datetime) -> tuple[float, set[tuple[str, str | None]]]:
        request = auto_pb.EvaluateAutomationRequest(
            namespace=namespace, tick_id=when.isoformat(), page_size=10_000
        )
        request.evaluation_time.CopyFrom(convert.instant_to_proto(when))
        elapsed, response = timed(
            functools.partial(self.automation.EvaluateAutomation, request, timeout=600)
        )
        requested: set[tuple[str, str | None]] = set()
        for item in response.tick.requested:
            if item.HasField("partitions"):
                requested |= {(item.asset_key, key) for key in item.partitions.partition_keys}
            else:
                requested.add((item.asset_key, None))
        return elapsed, requested

    def close(self) -> int:
        """Stop the server; its resident memory just before, in KiB."""
        memory = rss_kib(self.server.process.pid)
        self.channel.close()
        self.server.stop()
        return memory


def flat(requested: dict[str, set[str | None]]) -> set[tuple[str, str | None]]:
    return {(asset, key) for asset, keys in requested.items() for key in keys}


def rpc_seed(service: Service) -> bool:
    seed = longest_seed()
    timeline, runs, same = our_timeline(seed), dict[str, Json](), True
    service.apply("seed", seed)
    times = []
    for tick in seed["ticks"]:
        when = datetime.fromisoformat(tick["evaluation_time"])
        for event in plain_events(tick["events"], dict(runs)):
            timeline.apply(event)
        service.report("seed", tick["events"], runs)
        elapsed, requested = service.tick("seed", when)
        times.append(elapsed)
        if requested != flat(ours_requested(timeline.evaluate(when))):
            print(f"MISMATCH rpc seed at {when}")
            same = False
    report("rpc seed", times, None, "per tick, >= 50x Dagster's")
    return same


def next_days(case: Json, days: int) -> list[tuple[list[Json], datetime]]:
    """`days` more days after the timed tick: the roots materialize the day, then a tick."""
    roots = [a["key"] for a in case["assets"] if a["automation_condition"]["type"] == "on_cron"]
    last = datetime.fromisoformat(case["ticks"][-1]["evaluation_time"])
    more = []
    for day in range(1, days + 1):
        today = last + timedelta(days=day)
        key = (today - timedelta(days=1)).strftime("%Y-%m-%d")
        at = today - timedelta(minutes=20)
        more.append(([_materialization(root, key, at) for root in roots], today))
    return more


def rpc_one_tick(service: Service, name: str, case: Json, days: int, target: str) -> bool:
    setup, timed_tick = case["ticks"]
    service.apply(name, case)
    started = time.perf_counter()
    service.report(name, setup["events"], {})
    print(
        f"  (rpc {name}: {len(setup['events']):,} events stored in "
        f"{time.perf_counter() - started:.0f} s)"
    )
    first, _ = service.tick(name, datetime.fromisoformat(setup["evaluation_time"]))
    timeline = our_timeline(case)
    for event in setup["events"]:
        timeline.apply(event)
    timeline.evaluate(datetime.fromisoformat(setup["evaluation_time"]))
    same = True
    times = []
    for events, when in [
        (timed_tick["events"], datetime.fromisoformat(timed_tick["evaluation_time"])),
        *next_days(case, days),
    ]:
        for event in events:
            timeline.apply(event)
        service.report(name, events, {})
        elapsed, requested = service.tick(name, when)
        times.append(elapsed)
        expected = flat(ours_requested(timeline.evaluate(when)))
        if requested != expected or not requested:
            print(f"MISMATCH rpc {name} at {when}: {len(requested)} vs {len(expected)}")
            same = False
    report(f"rpc {name}", times, None, target)
    print(
        f"  (rpc {name}: the server's first tick of the namespace, which reads every event: "
        f"{first * 1000:.0f} ms)"
    )
    return same


def rpc_rows(rows: set[str], days: int) -> bool:
    same = True
    with tempfile.TemporaryDirectory(prefix="pd-automation-bench-") as folder:
        service = Service(Path(folder))
        try:
            same &= rpc_seed(service)
            if "17429" in rows:
                same &= rpc_one_tick(service, "17429", issue_17429(), days, "< 100 ms")
            if "thousand" in rows:
                same &= rpc_one_tick(service, "thousand", thousand_assets(), days, "< 1 s")
        finally:
            with contextlib.suppress(Exception):
                print(
                    f"  (rpc: server resident memory at the end {service.close() / 1024:.0f} MiB)"
                )
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="seed,17429,thousand,rpc")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--skip-dagster-17429", action="store_true")
    parser.add_argument("--rpc-days", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="dagster")
    logging.getLogger("dagster").setLevel(logging.ERROR)
    rows = set(args.rows.split(","))
    same = True
    if "seed" in rows:
        same &= seed_row(args.repeats)
    if "17429" in rows:
        case = issue_17429()
        same &= one_tick_row("17429", case, not args.skip_dagster_17429, args.repeats)
    if "thousand" in rows:
        same &= one_tick_row("thousand", thousand_assets(), False, 3)
    if "rpc" in rows:
        same &= rpc_rows(rows, args.rpc_days)
    return 0 if same else 2


if __name__ == "__main__":
    sys.exit(main())
