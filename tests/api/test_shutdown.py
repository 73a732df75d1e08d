"""SIGTERM with calls in flight: health NOT_SERVING first, in-flight calls finish, new ones refused.

Calls are held in flight without timing: a unary ApplyAssets waits on a row lock this test
holds in Postgres, and a client-streaming StreamEvents waits for the test's next message. The
order is observed by a Health.Watch stream opened before the signal.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    diagnostics_service_pb2_grpc,
    events_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from tests.live import (
    NOT_SERVING,
    SERVING,
    eventually,
    free_port,
    health_status,
    kill_if_running,
    serve_process,
)

from .builders import DAILY, asset, materialization

# Generous: the in-flight calls end when the test releases them, long before this.
GRACE_SECONDS = 60
WATCH_ENDED = 100


def _serve(database_url: str, port: int, grace: float) -> subprocess.Popen[str]:
    """`partition-deps serve` as a process of its own, its log on stderr."""
    return serve_process("--listen", f"127.0.0.1:{port}", "--database-url", database_url,
                         "--grace-seconds", str(grace), "--log-level", "INFO")  # fmt: skip


def _ping(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel).Ping(
            diagnostics_pb.PingRequest(), timeout=5
        )
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _ready(channel: grpc.Channel) -> bool:
    """Readiness SERVING: the pool is open (a Ping answers before that, without the database)."""
    return health_status(channel, "readiness", timeout=5) == SERVING


def _lock_waiters(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0


def test_sigterm_drains_in_flight_calls_and_refuses_new_ones(
    database_url: str, namespace: str
) -> None:
    port = free_port()
    process = _serve(database_url, port, GRACE_SECONDS)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    locker: psycopg.Connection[tuple[object, ...]] | None = None
    try:
        health = health_pb2_grpc.HealthStub(channel)
        eventually(lambda: _ready(channel))
        definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)])
        )

        # Health, watched from before the signal: every status change arrives on this stream.
        statuses: queue.Queue[int] = queue.Queue()
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods

        def follow(stream: Iterator[health_pb2.HealthCheckResponse]) -> None:
            try:
                for response in stream:
                    statuses.put(response.status)
                statuses.put(WATCH_ENDED)
            except grpc.RpcError:
                statuses.put(-1)  # cancelled with the server

        threading.Thread(target=follow, args=(watch,), daemon=True).start()
        assert statuses.get(timeout=30) == SERVING

        # In flight 1: an apply blocked on the namespace row, locked here.
        locker = psycopg.connect(database_url)
        locker.execute("SELECT 1 FROM namespaces WHERE name = %s FOR UPDATE", (namespace,))
        apply: grpc.Future[defs_pb.ApplyAssetsResponse] = definitions.ApplyAssets.future(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("other", DAILY)]),
            timeout=GRACE_SECONDS * 2,
        )
        with psycopg.connect(database_url, autocommit=True) as observer:
            eventually(lambda: _lock_waiters(observer) >= 1)

        # In flight 2: a client stream that has sent one message and waits to send the next.
        more: queue.Queue[events_pb.StreamEventsRequest | None] = queue.Queue()

        def messages() -> Iterator[events_pb.StreamEventsRequest]:
            while (message := more.get()) is not None:
                yield message

        stream: grpc.Future[events_pb.StreamEventsResponse] = (
            events_service_pb2_grpc.EventsServiceStub(channel).StreamEvents.future(
                messages(), timeout=GRACE_SECONDS * 2
            )
        )
        more.put(
            events_pb.StreamEventsRequest(
                namespace=namespace, events=[materialization("s1", "daily", "2024-01-01")]
            )
        )

        process.send_signal(signal.SIGTERM)

        # Health turns NOT_SERVING first ...
        assert statuses.get(timeout=30) == NOT_SERVING
        # The server ends watch streams (OK) rather than letting them hold it for the grace.
        assert statuses.get(timeout=30) == WATCH_ENDED
        # ... then new calls are refused (a fresh connection, too) ...
        eventually(lambda: _ping(channel) == grpc.StatusCode.UNAVAILABLE)
        fresh = grpc.insecure_channel(f"127.0.0.1:{port}")
        assert _ping(fresh) == grpc.StatusCode.UNAVAILABLE
        fresh.close()
        # ... while the calls in flight are still running, and finish once released.
        assert not apply.done()
        assert not stream.done()
        more.put(
            events_pb.StreamEventsRequest(
                namespace=namespace, events=[materialization("s2", "daily", "2024-01-02")]
            )
        )
        more.put(None)
        locker.rollback()
        locker.close()
        assert apply.result().generation == 2
        assert stream.result().stored_count == 2

        _, stderr = process.communicate(timeout=GRACE_SECONDS * 2)
        assert process.returncode == 0, stderr
        assert stderr.index('"signal received"') < stderr.index('"stopped"')
    finally:
        # A failure above must not leave a connection or a pipe for a later test to trip on.
        if locker is not None:
            locker.close()
        channel.close()
        kill_if_running(process)
        if process.stderr is not None:
            process.stderr.close()


def test_sigterm_ends_the_process_after_the_grace_period_whatever_its_calls_do(
    database_url: str, namespace: str
) -> None:
    # A call blocked on a row lock this test holds (no deadline, so no statement timeout)
    # kept its handler thread, and with it the process, alive past the grace period.
    grace = 1
    port = free_port()
    process = _serve(database_url, port, grace)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    locker = psycopg.connect(database_url)
    try:
        eventually(lambda: _ready(channel))
        definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)])
        )
        locker.execute("SELECT 1 FROM namespaces WHERE name = %s FOR UPDATE", (namespace,))
        stuck = definitions.ApplyAssets.future(
            defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("other", DAILY)])
        )
        with psycopg.connect(database_url, autocommit=True) as observer:
            eventually(lambda: _lock_waiters(observer) >= 1)

        process.send_signal(signal.SIGTERM)
        # Gone within grace + 5 s by design; the bound here only keeps a failing run short
        # (without the deadline the process waits for the lock, which this test holds on).
        _, stderr = process.communicate(timeout=grace + 60)
        assert process.returncode == 1, stderr
        assert "calls still running after the grace period" in stderr
        assert stuck.exception() is not None  # cancelled, not answered
    finally:
        locker.rollback()
        locker.close()
        channel.close()
        kill_if_running(process)
