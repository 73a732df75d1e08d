"""Fuzz soak: 100,000 Hypothesis-generated requests over every RPC against a server process.

    .venv/bin/python bench/fuzz_soak.py                    # 100,000 calls, own Postgres + server
    .venv/bin/python bench/fuzz_soak.py --calls 5000 --seed 7
    .venv/bin/python bench/fuzz_soak.py --target 127.0.0.1:50051   # a running server

Starts an embedded Postgres and `partition-deps serve` as a child process (killed by pid at
the end), seeds a namespace, then sends valid, invalid, random and malformed bodies (the
strategies of tests/api/fuzzing.py) round-robin over the RPCs. Every INTERNAL or UNKNOWN answer
is collected (not just the first); at the end the server must still answer health SERVING.
The pools include hostile inputs: formats with a repeated directive, every-minute exclusions,
5,000-character keys, forged page tokens, as_of at the calendar's far end. Prints the
status-code counts, the bad answers, calls answered more than 1 s past their 30 s deadline and
the server's RSS (before, after, sampled peak); exit status 1 if any call was answered
INTERNAL/UNKNOWN or late, the server's RSS passed 1 GiB, or the server died.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "service"), str(REPO)]

import grpc  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.harness import rss_kib, stop_process  # noqa: E402
from partition_deps.api.gen.partitiondeps.v1 import (  # noqa: E402
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
)
from partition_deps.server import SERVICE_NAMES  # noqa: E402
from partition_deps.store.database import EmbeddedPostgres  # noqa: E402
from tests.api.fuzzing import BAD_CODES, Rpc, bodies, outcome, rpcs, seed_events, seed_requests  # noqa: E402
from tests.live import free_port, is_serving, serve_command  # noqa: E402

# Each call's deadline; a call answered more than a second after it counts as late.
CALL_TIMEOUT = 30.0


class Watch:
    """What the soak watches besides status codes: calls that overran their deadline, and the
    server's memory (sampled every few hundred calls)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.calls = 0
        self.late: list[tuple[str, float]] = []
        self.peak_rss_kib = 0

    def record(self, path: str, elapsed: float) -> None:
        self.calls += 1
        if elapsed > CALL_TIMEOUT + 1:
            self.late.append((path, elapsed))
        if self.pid is not None and self.calls % 500 == 0:
            self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(self.pid))


def _fuzzer(
    channel: grpc.Channel,
    rpc: Rpc,
    examples: int,
    codes: collections.Counter[str],
    bad: list[tuple[str, str, list[bytes]]],
    watch: Watch,
) -> Any:
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        payload = data.draw(bodies(rpc))
        started = time.monotonic()
        code = outcome(channel, rpc, payload, CALL_TIMEOUT)
        watch.record(rpc.path, time.monotonic() - started)
        codes[code.name] += 1
        if code in BAD_CODES:
            bad.append((rpc.path, code.name, payload))

    return fuzz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--target", help="address of a running server (default: start one)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fuzz-soak-"))
    work.chmod(0o755)  # pgserver runs Postgres as its own user
    database: EmbeddedPostgres | None = None
    server: subprocess.Popen[bytes] | None = None
    target = args.target
    if target is None:
        database = EmbeddedPostgres(work / "pg")
        port = free_port()
        target = f"127.0.0.1:{port}"
        server = subprocess.Popen(
            serve_command(
                "--listen", target, "--database-url", database.url, "--log-level", "ERROR"
            ),
            env={**os.environ, "PYTHONPATH": str(REPO / "service")},
            stdin=subprocess.DEVNULL,
            stderr=open(work / "server.log", "wb"),  # noqa: SIM115
        )
    channel = grpc.insecure_channel(target)
    try:
        deadline = time.monotonic() + 60
        while not is_serving(channel, timeout=5):
            if time.monotonic() > deadline or (server is not None and server.poll() is not None):
                print("server did not become ready", file=sys.stderr)
                return 1
            time.sleep(0.2)
        apply, dynamic = seed_requests()
        definitions_service_pb2_grpc.DefinitionsServiceStub(channel).ApplyAssets(apply)
        definitions_service_pb2_grpc.DefinitionsServiceStub(channel).AddDynamicPartitions(dynamic)
        events_service_pb2_grpc.EventsServiceStub(channel).ReportEvents(seed_events())

        rss_before = rss_kib(server.pid) if server else 0
        methods = rpcs(SERVICE_NAMES)
        codes: collections.Counter[str] = collections.Counter()
        bad: list[tuple[str, str, list[bytes]]] = []
        watch = Watch(server.pid if server else None)
        started = time.monotonic()
        per_method = max(1, args.calls // len(methods))
        for index, rpc in enumerate(methods):
            fuzz = _fuzzer(channel, rpc, per_method, codes, bad, watch)
            # A seed per method so reruns with --seed reproduce.
            seed(args.seed * 1000 + index)(fuzz)()
            print(
                f"{rpc.path}: {per_method} calls, total {sum(codes.values())},"
                f" {time.monotonic() - started:.0f}s",
                flush=True,
            )
        alive = is_serving(channel, timeout=5)
        rss_after = rss_kib(server.pid) if server else 0
    finally:
        channel.close()
        if server is not None:
            stop_process(server)
        if database is not None:
            database.stop()

    total = sum(codes.values())
    print(f"\ncalls: {total} in {time.monotonic() - started:.0f}s (seed {args.seed})")
    for name, count in codes.most_common():
        print(f"  {name:20} {count}")
    if rss_before:
        print(
            f"server RSS: {rss_before / 1024:.0f} MiB -> {rss_after / 1024:.0f} MiB,"
            f" peak sampled {watch.peak_rss_kib / 1024:.0f} MiB (limit 1024)"
        )
    print(f"server alive and SERVING afterwards: {alive}")
    for path, code, payload in bad[:20]:
        print(f"BAD {code} {path} {payload!r}"[:2000])
    print(f"INTERNAL/UNKNOWN answers: {len(bad)}")
    for path, elapsed in watch.late[:20]:
        print(f"LATE {path} answered after {elapsed:.1f}s (deadline {CALL_TIMEOUT:.0f}s)")
    print(f"calls answered more than 1 s past their deadline: {len(watch.late)}")
    too_big = watch.peak_rss_kib > 1024 * 1024
    return 0 if alive and not bad and not watch.late and not too_big else 1


if __name__ == "__main__":
    sys.exit(main())
