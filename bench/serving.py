"""Serving cost of a stored query against an empty gRPC method of the same server, in one run.

Run from the repository root with the service's virtualenv (no Dagster needed):

    .venv/bin/python -m bench.serving                  # about a minute
    .venv/bin/python -m bench.serving --processes 2    # the server forks two serving processes

It starts one server (`partition-deps serve`, a child process with its own embedded Postgres on
a free port), registers daily_sales_data <- weekly_sales_summary, and then, round by round with
the order of the methods rotating, times:

- at one call in flight: the p50 latency of each method;
- at eight calls in flight (eight channels, one call outstanding on each): the throughput.

Methods: `DiagnosticsService/Ping` (the control: an empty unary method through the same
handlers), `GetUpstreamPartitions(weekly_sales_summary, 2024-01-07)` repeated as a scheduler
polls it (`repeat`), and the same query with a different week on every call and an explicit
`as_of` one second later on every call (`rotate`: no two requests alike, so no memoised answer
can serve it; the difference between the two is the memo's benefit).

The client sends pre-serialized request bytes and keeps the response bytes (the same for every
method), so client-side protobuf work does not dilute the comparison. Ratios are query over Ping
(latency) and query over Ping (throughput), from the same rounds; `paired` is the median of the
per-round ratios, a check on drift. Targets (service issue): p50 ratio <= 1.1 at one in flight,
throughput ratio >= 0.9 at eight, for `repeat`. Exit status 0 when both are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "service"))

from bench.harness import ServerProcess  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import (  # noqa: E402
    definitions_service_pb2 as defs_pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (  # noqa: E402
    diagnostics_service_pb2 as diag_pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (  # noqa: E402
    partitions_pb2 as pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (  # noqa: E402
    queries_service_pb2 as q_pb,
)
from tests.live import free_port  # noqa: E402

NAMESPACE = "bench"
PING = "/partitiondeps.v1.DiagnosticsService/Ping"
UPSTREAM = "/partitiondeps.v1.QueriesService/GetUpstreamPartitions"
APPLY = "/partitiondeps.v1.DefinitionsService/ApplyAssets"
P50_TARGET = 1.1
THROUGHPUT_TARGET = 0.9
IN_FLIGHT = 8


def _window(cron: str) -> pb.PartitionsDefinition:
    return pb.PartitionsDefinition(
        time_window=pb.TimeWindowPartitions(
            cron_schedule=cron, start="2024-01-01T00:00:00", timezone="UTC", fmt="%Y-%m-%d"
        )
    )


def _apply_request() -> defs_pb.ApplyAssetsRequest:
    daily = defs_pb.Asset(asset_key="daily_sales_data", partitions_definition=_window("0 0 * * *"))
    weekly = defs_pb.Asset(
        asset_key="weekly_sales_summary", partitions_definition=_window("0 0 * * 0")
    )
    weekly.dependencies.add(upstream_asset_key="daily_sales_data")
    return defs_pb.ApplyAssetsRequest(namespace=NAMESPACE, assets=[daily, weekly])


def _upstream(week: str, as_of: datetime | None = None) -> bytes:
    request = q_pb.GetUpstreamPartitionsRequest(
        namespace=NAMESPACE,
        asset_key="weekly_sales_summary",
        selection=pb.PartitionSelection(keys=pb.PartitionKeys(partition_keys=[week])),
    )
    if as_of is not None:
        stamp = Timestamp()
        stamp.FromDatetime(as_of)
        request.as_of.CopyFrom(stamp)
    return request.SerializeToString()


@dataclass
class Workload:
    """One benchmarked method: its path and the request body of the i-th call."""

    name: str
    path: str
    body: Callable[[int], bytes]
    p50s: list[float] = field(default_factory=list)  # per round, microseconds
    rates: list[float] = field(default_factory=list)  # per round, calls per second


def workloads() -> list[Workload]:
    ping = diag_pb.PingRequest().SerializeToString()
    repeat = _upstream("2024-01-07")
    # Every Sunday from 2024-01-07 to 2025-11-30 (all existing at as_of), and as_of moving on.
    weeks = [
        (datetime(2024, 1, 7, tzinfo=UTC) + timedelta(weeks=n)).strftime("%Y-%m-%d")
        for n in range(100)
    ]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rotating = [_upstream(weeks[n % len(weeks)], base + timedelta(seconds=n)) for n in range(60000)]
    return [
        Workload("Ping", PING, lambda _: ping),
        Workload("upstream repeat", UPSTREAM, lambda _: repeat),
        Workload("upstream rotate", UPSTREAM, lambda i: rotating[i % len(rotating)]),
    ]


def _one_in_flight(channel: grpc.Channel, load: Workload, calls: int, offset: int) -> float:
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(load.path)
    timings = []
    clock = time.perf_counter_ns
    for i in range(offset, offset + calls):
        body = load.body(i)
        started = clock()
        call(body)
        timings.append(clock() - started)
    return statistics.median(timings) / 1000


async def _many_in_flight(
    channels: list[grpc.aio.Channel], load: Workload, calls: int, offset: int
) -> float:
    per_channel = calls // len(channels)

    async def worker(index: int, channel: grpc.aio.Channel) -> None:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(load.path)
        first = offset + index * per_channel
        for i in range(first, first + per_channel):
            await call(load.body(i))

    started = time.perf_counter()
    await asyncio.gather(*(worker(n, c) for n, c in enumerate(channels)))
    return per_channel * len(channels) / (time.perf_counter() - started)


async def _until_answered(channel: grpc.aio.Channel, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    upstream: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UPSTREAM)
    while True:
        try:
            await upstream(_upstream("2024-01-07"), timeout=5)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def _check_answers(channel: grpc.Channel) -> None:
    """Outside the timed region: the query answers what the README says (seven days)."""
    upstream: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UPSTREAM)
    raw = upstream(_upstream("2024-01-07"))
    response = q_pb.GetUpstreamPartitionsResponse.FromString(raw)
    (dependency,) = response.dependencies
    (run,) = dependency.partitions.ranges
    assert run.count == 7, run


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300, help="calls per method per round, x1")
    parser.add_argument("--rounds-parallel", type=int, default=30, help="rounds at eight in flight")
    parser.add_argument(
        "--calls-parallel", type=int, default=600, help="calls per method per round, x8"
    )
    parser.add_argument("--processes", type=int, default=0, help="server --processes (0: unset)")
    parser.add_argument("server_args", nargs="*", help="more `serve` flags, after --")
    args = parser.parse_args()

    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-"))
    extra = list(args.server_args)
    if args.processes:
        extra += ["--processes", str(args.processes)]
    server = ServerProcess(port, data_dir / "pg", extra)
    try:
        server.wait_serving()
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            apply: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(APPLY)
            apply(_apply_request().SerializeToString())
            _check_answers(channel)
            loads = workloads()
            for load in loads:  # warm up every path (and every memo) before timing
                _one_in_flight(channel, load, 200, 0)
            gc.disable()
            offset = 200
            for round_ in range(args.rounds):
                order = loads[round_ % len(loads) :] + loads[: round_ % len(loads)]
                for load in order:
                    load.p50s.append(_one_in_flight(channel, load, args.calls, offset))
                offset += args.calls
            gc.enable()
        asyncio.run(_parallel(target, loads, args, offset))
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return _report(loads, args)


async def _parallel(
    target: str, loads: list[Workload], args: argparse.Namespace, offset: int
) -> None:
    # One connection per channel (no shared subchannel), as eight clients would have; with
    # --processes the kernel spreads these connections over the serving processes.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(IN_FLIGHT)
    ]
    try:
        for channel in channels:  # with --processes, every process must be serving first
            await _until_answered(channel)
        for load in loads:
            await _many_in_flight(channels, load, IN_FLIGHT * 50, offset)
        offset += IN_FLIGHT * 50
        gc.disable()
        for round_ in range(args.rounds_parallel):
            order = loads[round_ % len(loads) :] + loads[: round_ % len(loads)]
            for load in order:
                load.rates.append(
                    await _many_in_flight(channels, load, args.calls_parallel, offset)
                )
            offset += args.calls_parallel
        gc.enable()
    finally:
        for channel in channels:
            await channel.close()


def _report(loads: list[Workload], args: argparse.Namespace) -> int:
    ping, *queries = loads
    print(
        f"\nserving benchmark: {args.rounds} rounds of {args.calls} calls x1, "
        f"{args.rounds_parallel} rounds of {args.calls_parallel} calls x{IN_FLIGHT}, per method; "
        f"server processes: {args.processes or 1}; cpus: {os.cpu_count()}"
    )
    header = f"{'method':<18}{'p50 us x1':>11}{'ratio':>8}{'paired':>8}"
    header += f"{'calls/s x8':>12}{'ratio':>8}{'paired':>8}"
    print(header)
    print("-" * len(header))
    ok = True
    for load in loads:
        p50, rate = _median(load.p50s), _median(load.rates)
        row = f"{load.name:<18}{p50:>11.0f}"
        if load is ping:
            row += f"{'':>16}{rate:>12.0f}{'':>16}"
        else:
            p50_ratio = p50 / _median(ping.p50s)
            rate_ratio = rate / _median(ping.rates)
            p50_paired = _median([q / p for q, p in zip(load.p50s, ping.p50s, strict=True)])
            rate_paired = _median([q / p for q, p in zip(load.rates, ping.rates, strict=True)])
            row += f"{p50_ratio:>8.2f}{p50_paired:>8.2f}{rate:>12.0f}{rate_ratio:>8.2f}"
            row += f"{rate_paired:>8.2f}"
            if load is queries[0]:
                met = p50_ratio <= P50_TARGET and rate_ratio >= THROUGHPUT_TARGET
                ok = ok and met
                row += "  target <=1.1 / >=0.9: " + ("met" if met else "MISSED")
        print(row)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
