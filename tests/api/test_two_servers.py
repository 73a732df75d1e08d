"""Two server processes on one database: concurrent applies and ingest stay consistent.

Applies: several clients apply different versions of the same three assets through both
servers at once; every apply gets its own generation, every snapshot either server answers
holds one version (never a mix), and once both settle they answer the version of the highest
generation. Ingest: the same batches are sent through both servers at once; each event is
stored exactly once and the servers' stored counts add up to the distinct events.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from tests.live import eventually, free_port, is_serving, serve_command

from .builders import asset, materialization, time_window

REPO = Path(__file__).resolve().parents[2]
VERSIONS = 8
APPLIES_PER_CLIENT = 6


class Threads:
    """Threads whose exceptions fail the test (instead of being printed and lost)."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def start(self, target: Callable[..., None], *args: object) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as error:
                self.failures.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        return thread


@pytest.fixture(scope="module")
def channels(database_url: str) -> Iterator[list[grpc.Channel]]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "service")}
    processes: list[subprocess.Popen[bytes]] = []
    opened: list[grpc.Channel] = []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    serve_command(
                        "--listen",
                        f"127.0.0.1:{port}",
                        "--database-url",
                        database_url,
                        "--pool-size",
                        "4",
                        "--workers",
                        "8",
                        "--grace-seconds",
                        "2",
                        "--log-level",
                        "WARNING",
                    ),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            )
            opened.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        for channel in opened:
            eventually(functools.partial(is_serving, channel))
        yield opened
    finally:
        for channel in opened:
            channel.close()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _version(number: int) -> list[defs_pb.Asset]:
    """Three assets whose definitions all carry `number` (in the start day and the fmt)."""
    day = f"2024-01-{number + 1:02d}T00:00:00"
    daily = time_window("0 0 * * *", day, fmt=f"v{number}-%Y-%m-%d")
    weekly = time_window("0 0 * * 0", day, fmt=f"v{number}-%Y-%m-%d")
    return [
        asset("a", daily),
        asset("b", weekly, "a"),
        asset("c", daily, "a", "b"),
    ]


def _versions_of(assets: list[defs_pb.Asset]) -> set[str]:
    return {a.partitions_definition.time_window.fmt.split("-")[0] for a in assets}


def test_concurrent_applies_end_in_one_version_never_a_mix(
    channels: list[grpc.Channel], namespace: str
) -> None:
    stubs = [definitions_service_pb2_grpc.DefinitionsServiceStub(c) for c in channels]
    generations: dict[int, int] = {}  # generation -> version applied
    mixes: list[set[str]] = []
    lock = threading.Lock()
    done = threading.Event()

    def apply(client: int) -> None:
        for round_ in range(APPLIES_PER_CLIENT):
            number = (client * APPLIES_PER_CLIENT + round_) % VERSIONS
            request = defs_pb.ApplyAssetsRequest(namespace=namespace, assets=_version(number))
            response = stubs[(client + round_) % 2].ApplyAssets(request, timeout=30)
            with lock:
                assert response.generation not in generations
                generations[response.generation] = number

    def read(stub: definitions_service_pb2_grpc.DefinitionsServiceStub) -> None:
        while not done.is_set():
            try:
                listed = stub.ListAssets(defs_pb.ListAssetsRequest(namespace=namespace))
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                continue
            found = _versions_of(list(listed.assets))
            if len(found) != 1 or len(listed.assets) != 3:
                with lock:
                    mixes.append(found)

    threads = Threads()
    writers = [threads.start(apply, n) for n in range(4)]
    readers = [threads.start(read, stub) for stub in stubs]
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    for thread in readers:
        thread.join(timeout=30)

    assert not threads.failures, threads.failures
    assert len(generations) == 4 * APPLIES_PER_CLIENT
    assert not mixes, mixes[:5]
    last = generations[max(generations)]

    def settled(stub: definitions_service_pb2_grpc.DefinitionsServiceStub) -> bool:
        listed = stub.ListAssets(defs_pb.ListAssetsRequest(namespace=namespace))
        return listed.generation == max(generations) and _versions_of(list(listed.assets)) == {
            f"v{last}"
        }

    for stub in stubs:
        eventually(functools.partial(settled, stub))


def test_concurrent_ingest_through_both_servers_stores_each_event_once(
    channels: list[grpc.Channel], namespace: str, database_url: str
) -> None:
    definitions_service_pb2_grpc.DefinitionsServiceStub(channels[0]).ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace, assets=[asset("a", time_window("0 0 * * *"))]
        )
    )
    stubs = [events_service_pb2_grpc.EventsServiceStub(c) for c in channels]
    batches = [
        events_pb.ReportEventsRequest(
            namespace=namespace,
            events=[
                materialization(f"b{batch}-e{index}", "a", f"2024-01-{index + 1:02d}")
                for index in range(20)
            ],
        )
        for batch in range(30)
    ]
    stored = [0] * 4
    duplicates = [0] * 4

    def send(worker: int) -> None:
        # Every batch goes through both servers, from two workers each: four copies at once.
        stub = stubs[worker % 2]
        order = batches if worker < 2 else list(reversed(batches))
        for batch in order:
            response = stub.ReportEvents(batch, timeout=30)
            stored[worker] += response.stored_count
            duplicates[worker] += response.duplicate_count

    threads = Threads()
    for worker in range(4):
        threads.start(send, worker)
    for thread in threads.threads:
        thread.join(timeout=120)
    assert not threads.failures, threads.failures

    distinct = 30 * 20
    assert sum(stored) == distinct
    assert sum(duplicates) == 3 * distinct
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT e.idempotency_key) FROM events e"
            " JOIN namespaces n USING (namespace_id) WHERE n.name = %s",
            (namespace,),
        ).fetchone()
    assert rows == (distinct, distinct)
