"""Postgres stopped and restarted while clients ingest and query, the service left running.

Health goes NOT_SERVING then SERVING again; calls during the outage fail UNAVAILABLE (never
INTERNAL); afterwards every acknowledged event is stored exactly once, including the batches
that clients retried with the same idempotency keys after an UNAVAILABLE (some of which the
database had committed before the answer was lost).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import psycopg

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
    queries_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.server import Server
from partition_deps.store.database import EmbeddedPostgres, PoolSettings, migrate
from tests.live import NOT_SERVING, SERVING, eventually, health_status

from .builders import DAILY, WEEKLY, asset, keys, materialization, timestamp
from .conftest import local_config

NAMESPACE = "faults"
# What a call may answer while the database comes and goes.
EXPECTED = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
BATCH = 25


class Clients:
    """Ingest workers (a batch is retried with the same keys until acknowledged) and a querier."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.events = events_service_pb2_grpc.EventsServiceStub(channel)
        self.queries = queries_service_pb2_grpc.QueriesServiceStub(channel)
        self.definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.codes: Counter[grpc.StatusCode] = Counter()
        self.unexpected: list[str] = []
        self.retried_batches = 0

    def _record(self, code: grpc.StatusCode, what: str) -> None:
        with self.lock:
            self.codes[code] += 1
            if code not in EXPECTED:
                self.unexpected.append(f"{what}: {code.name}")

    def ingest(self, worker: int) -> None:
        batch = 0
        while not self.stop.is_set():
            ids = [f"w{worker}-b{batch}-e{index}" for index in range(BATCH)]
            day = f"2024-01-{batch % 28 + 1:02d}"
            request = events_pb.ReportEventsRequest(
                namespace=NAMESPACE, events=[materialization(key, "daily", day) for key in ids]
            )
            attempts = 0
            while True:  # the same batch, the same idempotency keys, until acknowledged
                attempts += 1
                try:
                    self.events.ReportEvents(request, timeout=10)
                except grpc.RpcError as error:
                    self._record(error.code(), "ReportEvents")
                    time.sleep(0.05)
                    continue
                self._record(grpc.StatusCode.OK, "ReportEvents")
                break
            with self.lock:
                self.acknowledged.extend(ids)
                self.retried_batches += attempts > 1
            batch += 1

    def query(self) -> None:
        """A cached query, reads that go to the database, and writes of definitions."""
        upstream = queries_pb.GetUpstreamPartitionsRequest(
            namespace=NAMESPACE,
            asset_key="weekly",
            selection=keys("2024-01-07"),
            as_of=timestamp("2024-03-01T00:00:00+00:00"),
        )
        calls: list[tuple[str, Callable[[], object]]] = [
            (
                "GetUpstreamPartitions",
                lambda: self.queries.GetUpstreamPartitions(upstream, timeout=10),
            ),
            (
                "ListDynamicPartitions",
                lambda: self.definitions.ListDynamicPartitions(
                    defs_pb.ListDynamicPartitionsRequest(namespace=NAMESPACE, definition_name="d"),
                    timeout=10,
                ),
            ),
            (
                "AddDynamicPartitions",
                lambda: self.definitions.AddDynamicPartitions(
                    defs_pb.AddDynamicPartitionsRequest(
                        namespace=NAMESPACE, definition_name="d", partition_keys=["k"]
                    ),
                    timeout=10,
                ),
            ),
        ]
        while not self.stop.is_set():
            for name, call in calls:
                try:
                    call()
                    self._record(grpc.StatusCode.OK, name)
                except grpc.RpcError as error:
                    self._record(error.code(), name)
            time.sleep(0.01)

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def test_a_database_restart_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    database = EmbeddedPostgres(tmp_path / "pg")
    url = database.url
    migrate(url)
    pool = PoolSettings(min_size=1, max_size=4, acquire_timeout=1, connect_timeout=1)
    server = Server(local_config(url, pool=pool, workers=8, health_interval_seconds=0.2))
    channel: grpc.Channel | None = None
    clients: Clients | None = None
    threads: list[threading.Thread] = []
    try:
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        definitions_service_pb2_grpc.DefinitionsServiceStub(channel).ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=NAMESPACE,
                assets=[asset("daily", DAILY), asset("weekly", WEEKLY, "daily")],
            )
        )
        clients = Clients(channel)
        threads = [threading.Thread(target=clients.ingest, args=(n,)) for n in range(3)]
        threads.append(threading.Thread(target=clients.query))
        for thread in threads:
            thread.start()
        eventually(lambda: clients is not None and clients.acknowledged_count() >= 10 * BATCH)

        database.stop()
        eventually(lambda: health_status(channel, "readiness") == NOT_SERVING)
        eventually(lambda: clients is not None and clients.codes[grpc.StatusCode.UNAVAILABLE] >= 10)
        during_outage = clients.acknowledged_count()

        database = EmbeddedPostgres(tmp_path / "pg")
        eventually(lambda: health_status(channel, "readiness") == SERVING)
        eventually(
            lambda: (
                clients is not None and clients.acknowledged_count() >= during_outage + 10 * BATCH
            )
        )
    finally:
        if clients is not None:
            clients.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if channel is not None:
            channel.close()
        server.stop()

    try:
        assert clients is not None
        assert not clients.unexpected, clients.unexpected[:10]
        assert clients.codes[grpc.StatusCode.UNAVAILABLE] > 0
        assert clients.retried_batches > 0  # retried with the same keys, then acknowledged
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT e.idempotency_key, count(*) FROM events e"
                " JOIN namespaces n USING (namespace_id) WHERE n.name = %s"
                " GROUP BY e.idempotency_key",
                (NAMESPACE,),
            ).fetchall()
        stored: dict[str, int] = dict(rows)
        assert max(stored.values()) == 1  # never twice
        assert set(stored) == set(clients.acknowledged)  # every acknowledged event, no other
        assert len(clients.acknowledged) == len(set(clients.acknowledged))
        print(
            dict(clients.codes), "retried batches:", clients.retried_batches, "events:", len(stored)
        )
    finally:
        database.stop()
