"""Sixteen writers on one namespace at once: every batch is stored, none deadlocks, and
readiness keeps saying SERVING (write contention is not an unreachable database)."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb

from .builders import DAILY, asset, materialization, timestamp
from .conftest import Stubs

WRITERS = 16
ROUNDS = 20
PARTITIONS = [(date(2024, 1, 1) + timedelta(days=day)).isoformat() for day in range(500)]


def _batch(round_number: int, writer: int) -> list[events_pb.Event]:
    """500 materializations of the same partitions as every other writer, in an order of its
    own, and one run started on some of them."""
    order = list(PARTITIONS)
    random.Random(round_number * WRITERS + writer).shuffle(order)
    prefix = f"r{round_number}-w{writer}"
    events = [
        materialization(f"{prefix}-{index}", "daily", key, at="2026-01-01T00:00:00+00:00")
        for index, key in enumerate(order)
    ]
    started = events_pb.RunStarted(
        run_id=f"{prefix}-run",
        targets=[
            events_pb.PartitionTarget(asset_key="daily", partition_key=key) for key in order[:50]
        ],
    )
    events.append(
        events_pb.Event(
            idempotency_key=f"{prefix}-run",
            event_time=timestamp("2026-01-01T00:00:00+00:00"),
            run_started=started,
        )
    )
    return events


def test_sixteen_concurrent_batches_on_one_namespace_are_all_stored_and_ready_stays_serving(
    stubs: Stubs, namespace: str
) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)])
    )
    done = threading.Event()
    readiness: list[int] = []

    def watch_readiness() -> None:
        health = health_pb2_grpc.HealthStub(stubs.channel)
        while not done.is_set():
            answer = health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=30)  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
            readiness.append(answer.status)

    def report(round_number: int, writer: int) -> int | grpc.StatusCode:
        try:
            response = stubs.events.ReportEvents(
                events_pb.ReportEventsRequest(
                    namespace=namespace, events=_batch(round_number, writer)
                ),
                timeout=120,
            )
        except grpc.RpcError as error:
            return error.code()
        return response.stored_count

    watcher = threading.Thread(target=watch_readiness)
    watcher.start()
    try:
        outcomes = []
        with ThreadPoolExecutor(WRITERS) as pool:
            for round_number in range(ROUNDS):
                outcomes += list(
                    pool.map(lambda writer: report(round_number, writer), range(WRITERS))  # noqa: B023
                )
    finally:
        done.set()
        watcher.join()

    assert outcomes == [len(PARTITIONS) + 1] * (WRITERS * ROUNDS)
    assert readiness, "readiness was never read"
    not_serving = [
        status for status in readiness if status != health_pb2.HealthCheckResponse.SERVING
    ]
    assert not_serving == [], f"{len(not_serving)} of {len(readiness)} readiness checks failed"
