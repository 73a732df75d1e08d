"""Three server processes on one Postgres behind client-side round robin, one killed midway.

    .venv/bin/python bench/round_robin.py                 # about a minute
    .venv/bin/python bench/round_robin.py --ops 20000     # longer

The client is one gRPC channel over the three addresses with the `round_robin` policy (what
the Go client gets from `dns:///host:port` with a service config naming round_robin). Writer
threads report one materialization per call and keep the event_position each answer gives;
after every write they read GetStaleness or PlanRuns with that min_event_position, so every
answer must be at least as new as the caller's own latest write. After a third of the
operations the first server is killed (SIGKILL). Checked at the end: every acknowledged event
is stored (sending them again finds each a duplicate), no answer was older than its
min_event_position, and every failed call failed UNAVAILABLE (calls in flight on the killed
server). The suite runs the same load, shorter (tests/api/test_round_robin.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as parts_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as st_pb

REPO = Path(__file__).resolve().parents[1]
AS_OF = Timestamp(seconds=1_706_745_600)  # 2024-02-01T00:00:00Z
# Partitions written: January's first 30 days, all complete at the events' times.
DAYS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]  # no method stubs
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


@contextmanager
def servers(database_url: str, count: int) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    """`count` server processes on `database_url`, each on a port of its own, serving."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "service")}
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for _ in range(count):
            port = _free_port()
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "partition_deps.cli", "serve",
                    "--listen", f"127.0.0.1:{port}", "--database-url", database_url,
                    "--pool-size", "4", "--workers", "8", "--grace-seconds", "2",
                    "--log-level", "WARNING",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            started.append((process, port))
        deadline = time.monotonic() + 120
        for _, port in started:
            while not _serving(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server on port {port} did not start")
                time.sleep(0.1)
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def round_robin_channel(ports: list[int]) -> grpc.Channel:
    """One channel over every address, calls spread by the round_robin policy."""
    addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
    return grpc.insecure_channel(
        f"ipv4:{addresses}", options=[("grpc.lb_policy_name", "round_robin")]
    )


@dataclass
class Outcome:
    """What the load saw; lists are appended from many threads (list.append is atomic)."""

    acknowledged: list[events_pb.Event] = field(default_factory=list)
    failures: list[grpc.StatusCode] = field(default_factory=list)
    # (min_event_position asked, event_position answered) of answers older than asked.
    too_old: list[tuple[int, int]] = field(default_factory=list)
    write_seconds: list[float] = field(default_factory=list)
    read_seconds: list[float] = field(default_factory=list)
    # Acknowledged events found not stored afterwards (must be 0).
    unstored: int = 0
    # Thread safety: guarded by `lock`.
    succeeded: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            self.succeeded += 1
            return self.succeeded


def prepare_namespace(channel: grpc.Channel) -> str:
    namespace = f"round-robin-{uuid.uuid4().hex[:10]}"
    daily = parts_pb.PartitionsDefinition(
        time_window=parts_pb.TimeWindowPartitions(
            cron_schedule="0 0 * * *", start="2024-01-01T00:00:00"
        )
    )
    definitions_service_pb2_grpc.DefinitionsServiceStub(channel).ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace,
            assets=[
                defs_pb.Asset(asset_key="raw", partitions_definition=daily),
                defs_pb.Asset(
                    asset_key="clean",
                    partitions_definition=daily,
                    dependencies=[defs_pb.Dependency(upstream_asset_key="raw")],
                ),
            ],
        ),
        wait_for_ready=True,
    )
    return namespace


def _event(worker: int, number: int) -> events_pb.Event:
    day = number % DAYS + 1
    event = events_pb.Event(
        idempotency_key=f"w{worker}-{number}",
        materialization=events_pb.Materialization(
            asset_key="raw" if number % 2 == 0 else "clean",
            partition_key=f"2024-01-{day:02d}",
            run_id=f"run-{worker}",
            data_version=f"v{number}",
        ),
    )
    event.event_time.FromSeconds(AS_OF.seconds - 86_400 + number)
    return event


def mixed_load(
    channel: grpc.Channel,
    namespace: str,
    workers: int,
    operations: int,
    kill_after: int,
    kill: threading.Event,
) -> Outcome:
    """`workers` threads, each alternating a write and a read with its own floor, until
    `operations` calls succeeded; `kill` is set once `kill_after` have (the caller kills)."""
    events = events_service_pb2_grpc.EventsServiceStub(channel)
    staleness = staleness_service_pb2_grpc.StalenessServiceStub(channel)
    outcome = Outcome()

    def succeeded() -> bool:
        total = outcome.count()
        if total >= kill_after:
            kill.set()
        return total >= operations

    def work(worker: int) -> None:
        position = number = 0
        while True:
            event = _event(worker, number)
            number += 1
            started = time.perf_counter()
            try:
                answer = events.ReportEvents(
                    events_pb.ReportEventsRequest(namespace=namespace, events=[event])
                )
            except grpc.RpcError as error:
                outcome.failures.append(error.code())
                continue
            outcome.write_seconds.append(time.perf_counter() - started)
            outcome.acknowledged.append(event)
            position = answer.event_position
            if succeeded():
                return
            started = time.perf_counter()
            try:
                if number % 4 == 0:
                    read_position = staleness.PlanRuns(
                        st_pb.PlanRunsRequest(
                            namespace=namespace, as_of=AS_OF, min_event_position=position
                        )
                    ).event_position
                else:
                    read_position = staleness.GetStaleness(
                        st_pb.GetStalenessRequest(
                            namespace=namespace, as_of=AS_OF, min_event_position=position
                        )
                    ).event_position
            except grpc.RpcError as error:
                outcome.failures.append(error.code())
                continue
            outcome.read_seconds.append(time.perf_counter() - started)
            if read_position < position:
                outcome.too_old.append((position, read_position))
            if succeeded():
                return

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def unstored(channel: grpc.Channel, namespace: str, acknowledged: list[events_pb.Event]) -> int:
    """How many acknowledged events are not stored: sent again, each must be a duplicate."""
    events = events_service_pb2_grpc.EventsServiceStub(channel)
    missing = 0
    for start in range(0, len(acknowledged), 1000):
        batch = acknowledged[start : start + 1000]
        answer = events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=batch)
        )
        missing += answer.stored_count
    return missing


def run(database_url: str, workers: int, operations: int) -> Outcome:
    with servers(database_url, 3) as started:
        ports = [port for _, port in started]
        with round_robin_channel(ports) as channel:
            namespace = prepare_namespace(channel)
            kill = threading.Event()

            def killer() -> None:
                kill.wait()
                started[0][0].kill()  # SIGKILL: in-flight calls are cut off

            watcher = threading.Thread(target=killer, daemon=True)
            watcher.start()
            outcome = mixed_load(channel, namespace, workers, operations, operations // 3, kill)
            # Re-sent to the two servers left: the killed one's address fails fast.
            with round_robin_channel(ports[1:]) as survivors:
                outcome.unstored = unstored(survivors, namespace, outcome.acknowledged)
    return outcome


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=3000, help="successful calls in all")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    from partition_deps.store.database import EmbeddedPostgres, migrate

    with tempfile.TemporaryDirectory() as folder:
        postgres = EmbeddedPostgres(Path(folder) / "pg")
        try:
            migrate(postgres.url)
            began = time.perf_counter()
            outcome = run(postgres.url, args.workers, args.ops)
            seconds = time.perf_counter() - began
        finally:
            postgres.stop()
    codes = sorted({code.name for code in outcome.failures})
    print(f"calls succeeded      {outcome.succeeded} in {seconds:.1f} s (3 servers, one killed)")
    print(f"acknowledged writes  {len(outcome.acknowledged)}, not stored {outcome.unstored}")
    print(f"failed calls         {len(outcome.failures)} {codes}")
    print(f"answers too old      {len(outcome.too_old)}")
    for name, values in (("write", outcome.write_seconds), ("read", outcome.read_seconds)):
        print(
            f"{name:5} ms p50 / p99   {statistics.median(values) * 1000:.1f} /"
            f" {_percentile(values, 0.99) * 1000:.1f}"
        )


if __name__ == "__main__":
    main()
