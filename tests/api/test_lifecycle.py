"""The server's life: readiness follows the database, SIGTERM drains and exits cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2_grpc
from partition_deps.server import Config, Server
from partition_deps.store.database import EmbeddedPostgres, PoolSettings

from .builders import DAILY, asset

REPO = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def eventually(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def health_status(channel: grpc.Channel, service: str = "") -> int:
    try:
        response = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    except grpc.RpcError:
        return -1
    return int(response.status)


def test_readiness_follows_the_database(tmp_path: Path) -> None:
    # A Postgres this test may stop and restart, apart from the session's.
    own_database = tmp_path / "pg"
    database = EmbeddedPostgres(own_database)
    server = Server(
        Config(
            listen="127.0.0.1:0",
            database_url=database.url,
            pool=PoolSettings(min_size=1, max_size=2, acquire_timeout=1, connect_timeout=1),
            grace_seconds=1,
            health_interval_seconds=0.2,
        )
    )
    try:
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        assert health_status(channel) == SERVING

        database.stop()
        eventually(lambda: health_status(channel, "readiness") == NOT_SERVING)
        assert health_status(channel, "liveness") == SERVING
        with pytest.raises(grpc.RpcError) as raised:
            definitions.ApplyAssets(
                defs_pb.ApplyAssetsRequest(namespace="n", assets=[asset("a", DAILY)]), timeout=10
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

        database = EmbeddedPostgres(own_database)
        eventually(lambda: health_status(channel) == SERVING)
        applied = definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace="n", assets=[asset("a", DAILY)]), timeout=10
        )
        assert applied.generation == 1
        channel.close()
    finally:
        server.stop()
        database.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_no_configuration_then_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO / "service")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "partition_deps.cli",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--grace-seconds",
            "2",
        ],
        cwd=tmp_path,  # the default data folder ./data/pg lands here
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        eventually(lambda: health_status(channel) == SERVING, seconds=60)
        assert (tmp_path / "data" / "pg").is_dir()
        channel.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)  # a bound for a loaded machine, not a window
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert '"message": "signal received"' in stderr
    assert '"message": "stopped"' in stderr


def test_a_server_started_before_its_database_waits_not_serving(tmp_path: Path) -> None:
    database = EmbeddedPostgres(tmp_path / "pg")
    url = database.url
    database.stop()
    server = Server(
        Config(
            listen="127.0.0.1:0",
            database_url=url,
            pool=PoolSettings(min_size=1, max_size=2, acquire_timeout=1, connect_timeout=1),
            grace_seconds=1,
            health_interval_seconds=0.2,
        )
    )
    abandon = threading.Event()
    starting = threading.Thread(target=server.start, args=(abandon,))
    starting.start()
    try:
        eventually(lambda: server.port != 0)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        eventually(lambda: health_status(channel) == NOT_SERVING)
        assert health_status(channel, "liveness") == SERVING
        database = EmbeddedPostgres(tmp_path / "pg")
        eventually(lambda: health_status(channel) == SERVING, seconds=30)
        channel.close()
    finally:
        abandon.set()
        starting.join(timeout=30)
        server.stop()
        database.stop()


def test_a_server_abandoned_before_its_database_came_up_stops_cleanly(tmp_path: Path) -> None:
    database = EmbeddedPostgres(tmp_path / "pg")
    url = database.url
    database.stop()
    server = Server(Config(listen="127.0.0.1:0", database_url=url, grace_seconds=0))
    abandon = threading.Event()
    abandon.set()
    server.start(abandon)
    server.stop()
