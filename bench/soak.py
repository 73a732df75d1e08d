"""Soak: a fixed-rate mixed load (queries and ingest) against a server process for N minutes.

    .venv/bin/python bench/soak.py                      # 10 minutes at 200 calls/s
    .venv/bin/python bench/soak.py --minutes 2 --rate 100
    .venv/bin/python bench/soak.py --target 127.0.0.1:50051 --server-pid 1234

Starts an embedded Postgres and `partition-deps serve` as a child process (stopped by pid at
the end) unless --target is given. The load is open-loop: calls are scheduled at a fixed rate
and each latency is measured from its scheduled time, so a stalled server shows up as latency
instead of a lower rate. Mix: 80 % queries (stored upstream and downstream, inline upstream,
ListPartitions), 20 % ingest batches of 50 events with fresh idempotency keys.

Prints per minute: calls, errors, p50 and p99 latency, server RSS. Pass criteria: server RSS at
the end grows less than 10 % over its value after the first minute (the warm-up), and the last
minute's p99 is within 2x of the first minute's. Exit status 1 if either fails or calls fail.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "service"), str(REPO)]

import grpc  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

from bench.harness import rss_kib, stop_process  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import (  # noqa: E402
    definitions_service_pb2_grpc,
    diagnostics_service_pb2_grpc,
    events_service_pb2_grpc,
    queries_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb  # noqa: E402
from partition_deps.store.database import EmbeddedPostgres  # noqa: E402
from tests.live import free_port, is_serving, serve_command  # noqa: E402

NAMESPACE = "soak"
BATCH = 50
AS_OF = Timestamp(seconds=1_767_225_600)  # 2026-01-01


def _window(cron: str, fmt: str = "%Y-%m-%d") -> pb.PartitionsDefinition:
    return pb.PartitionsDefinition(
        time_window=pb.TimeWindowPartitions(
            cron_schedule=cron, start="2024-01-01T00:00:00", timezone="UTC", fmt=fmt
        )
    )


DAILY, WEEKLY = _window("0 0 * * *"), _window("0 0 * * 0")
HOURLY = _window("0 * * * *", "%Y-%m-%d-%H:%M")
DAYS = [f"2025-{month:02d}-{day:02d}" for month in range(1, 13) for day in range(1, 29)]
SUNDAYS = ["2024-01-07", "2024-06-02", "2025-03-02", "2025-11-30"]


def _keys(*keys: str) -> pb.PartitionSelection:
    return pb.PartitionSelection(keys=pb.PartitionKeys(partition_keys=keys))


@dataclass
class Minute:
    latencies: list[float] = field(default_factory=list)
    # By kind of call: "query", "ingest", and "control" (an empty Ping, outside the mix: it
    # shows what the machine itself adds, on a box shared with other work).
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rss_kib: int = 0
    load: str = ""


class Load:
    def __init__(self, channel: grpc.Channel) -> None:
        self.queries = queries_service_pb2_grpc.QueriesServiceStub(channel)
        self.diagnostics = diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel)
        self.events = events_service_pb2_grpc.EventsServiceStub(channel)
        self.batches = itertools.count()
        self.calls = itertools.count()

    def seed(self, channel: grpc.Channel) -> None:
        definitions_service_pb2_grpc.DefinitionsServiceStub(channel).ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=NAMESPACE,
                assets=[
                    defs_pb.Asset(asset_key="daily", partitions_definition=DAILY),
                    defs_pb.Asset(
                        asset_key="weekly",
                        partitions_definition=WEEKLY,
                        dependencies=[defs_pb.Dependency(upstream_asset_key="daily")],
                    ),
                    defs_pb.Asset(
                        asset_key="hourly",
                        partitions_definition=HOURLY,
                        dependencies=[defs_pb.Dependency(upstream_asset_key="daily")],
                    ),
                ],
            )
        )

    def control(self) -> object:
        return self.diagnostics.Ping(diagnostics_pb.PingRequest(), timeout=30)

    def next_call(self) -> tuple[str, Callable[[], object]]:
        n = next(self.calls)
        if n % 10 < 2:
            return "ingest", self._ingest
        return "query", self._query(n)

    def _query(self, n: int) -> Callable[[], object]:
        slot = n % 10
        day, sunday = DAYS[n % len(DAYS)], SUNDAYS[n % len(SUNDAYS)]
        if slot < 5:
            request = queries_pb.GetUpstreamPartitionsRequest(
                namespace=NAMESPACE, asset_key="weekly", selection=_keys(sunday), as_of=AS_OF
            )
            return lambda: self.queries.GetUpstreamPartitions(request, timeout=30)
        if slot < 7:
            down = queries_pb.GetDownstreamPartitionsRequest(
                namespace=NAMESPACE, asset_key="daily", selection=_keys(day), as_of=AS_OF
            )
            return lambda: self.queries.GetDownstreamPartitions(down, timeout=30)
        if slot < 9:
            inline = queries_pb.ComputeUpstreamPartitionsRequest(
                upstream=DAILY, downstream=HOURLY, selection=_keys(f"{day}-05:00"), as_of=AS_OF
            )
            return lambda: self.queries.ComputeUpstreamPartitions(inline, timeout=30)
        listing = queries_pb.ListPartitionsRequest(
            source=queries_pb.DefinitionSource(partitions_definition=DAILY),
            as_of=AS_OF,
            page_size=100,
        )
        return lambda: self.queries.ListPartitions(listing, timeout=30)

    def _ingest(self) -> object:
        batch = next(self.batches)
        return self.events.ReportEvents(
            events_pb.ReportEventsRequest(
                namespace=NAMESPACE,
                events=[
                    events_pb.Event(
                        idempotency_key=f"b{batch}-e{index}",
                        event_time=Timestamp(seconds=1_735_689_600 + batch),
                        materialization=events_pb.Materialization(
                            asset_key="daily",
                            partition_key=DAYS[(batch + index) % len(DAYS)],
                            run_id=f"run-{batch}",
                            data_version=f"v{batch}",
                        ),
                    )
                    for index in range(BATCH)
                ],
            ),
            timeout=30,
        )


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(channel: grpc.Channel, pid: int, minutes: int, rate: float, workers: int) -> list[Minute]:
    load = Load(channel)
    load.seed(channel)
    per_minute = [Minute() for _ in range(minutes)]
    lock = threading.Lock()
    interval = 1.0 / rate
    started = time.monotonic()
    end = started + 60 * minutes

    def one(scheduled: float, kind: str, call: Callable[[], object]) -> None:
        code = "OK"
        try:
            call()
        except grpc.RpcError as error:
            code = error.code().name
        latency = time.monotonic() - scheduled
        minute = min(int((scheduled - started) // 60), minutes - 1)
        with lock:
            bucket = per_minute[minute]
            if code == "OK":
                if kind != "control":
                    bucket.latencies.append(latency)
                bucket.by_kind.setdefault(kind, []).append(latency)
            else:
                bucket.errors[code] = bucket.errors.get(code, 0) + 1

    def sample_rss() -> None:
        for minute in range(minutes):
            while time.monotonic() < started + 60 * (minute + 1):
                time.sleep(min(1.0, max(0.0, started + 60 * (minute + 1) - time.monotonic())))
            per_minute[minute].rss_kib = rss_kib(pid)
            bucket = per_minute[minute]
            bucket.load = Path("/proc/loadavg").read_text().split()[0]
            kinds = " ".join(
                f"{kind} {_p(bucket.by_kind.get(kind, []), 0.99) * 1000:6.1f}"
                for kind in ("query", "ingest", "control")
            )
            print(
                f"minute {minute + 1:3d}: {len(bucket.latencies):6d} ok,"
                f" {sum(bucket.errors.values())} errors {bucket.errors or ''},"
                f" p50 {_p(bucket.latencies, 0.5) * 1000:6.2f} ms,"
                f" p99 {_p(bucket.latencies, 0.99) * 1000:7.2f} ms ({kinds}),"
                f" RSS {bucket.rss_kib / 1024:6.1f} MiB, load {bucket.load}",
                flush=True,
            )

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        n = 0
        while True:
            scheduled = started + n * interval
            if scheduled >= end:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, scheduled, *load.next_call())
            if n % 10 == 0:
                pool.submit(one, scheduled, "control", load.control)
            n += 1
    sampler.join(timeout=120)
    return per_minute


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second")
    parser.add_argument("--workers", type=int, default=16, help="client threads")
    parser.add_argument("--target", help="address of a running server (default: start one)")
    parser.add_argument("--server-pid", type=int, help="pid of --target, for its RSS")
    args = parser.parse_args()

    database: EmbeddedPostgres | None = None
    server: subprocess.Popen[bytes] | None = None
    target, pid = args.target, args.server_pid or 0
    if target is None:
        work = Path(tempfile.mkdtemp(prefix="soak-"))
        work.chmod(0o755)  # pgserver runs Postgres as its own user
        database = EmbeddedPostgres(work / "pg")
        target = f"127.0.0.1:{free_port()}"
        server = subprocess.Popen(
            serve_command("--listen", target,
                          "--database-url", database.url, "--log-level", "WARNING"),
            env={**os.environ, "PYTHONPATH": str(REPO / "service")},
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        pid = server.pid
    channel = grpc.insecure_channel(target)
    try:
        deadline = time.monotonic() + 60
        while not is_serving(channel, timeout=5):
            if time.monotonic() > deadline:
                print("server did not become ready", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"soak: {args.minutes} min at {args.rate:.0f} calls/s against {target} (pid {pid})")
        minutes = run(channel, pid, args.minutes, args.rate, args.workers)
    finally:
        channel.close()
        if server is not None:
            stop_process(server)
        if database is not None:
            database.stop()

    first, last = minutes[0], minutes[-1]
    errors = sum(sum(m.errors.values()) for m in minutes)
    calls = sum(len(m.latencies) for m in minutes) + errors
    growth = (last.rss_kib - first.rss_kib) / first.rss_kib * 100 if first.rss_kib else 0.0
    p99_ratio = _p(last.latencies, 0.99) / _p(first.latencies, 0.99)
    all_latencies = [value for m in minutes for value in m.latencies]
    print(
        f"\ncalls {calls}, errors {errors}; overall p50"
        f" {statistics.median(all_latencies) * 1000:.2f} ms,"
        f" p99 {_p(all_latencies, 0.99) * 1000:.2f} ms"
    )
    print(
        f"RSS after minute 1: {first.rss_kib / 1024:.1f} MiB, at the end:"
        f" {last.rss_kib / 1024:.1f} MiB, growth {growth:+.1f} % (limit +10 %)"
    )
    print(
        f"p99 first minute {_p(first.latencies, 0.99) * 1000:.2f} ms, last minute"
        f" {_p(last.latencies, 0.99) * 1000:.2f} ms, ratio {p99_ratio:.2f} (limit 2.0)"
    )
    control_ratio = _p(last.by_kind.get("control", []), 0.99) / _p(
        first.by_kind.get("control", []), 0.99
    )
    print(
        f"control (empty Ping) p99 ratio last/first minute: {control_ratio:.2f};"
        f" load average first/last minute: {first.load}/{last.load}"
    )
    passed = growth < 10 and p99_ratio <= 2.0 and errors == 0
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
