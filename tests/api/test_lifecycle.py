"""The server's life: readiness follows the database, SIGTERM drains and exits cleanly."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2_grpc
from partition_deps.server import Config, Server
from partition_deps.store.database import EmbeddedPostgres, PoolSettings
from tests.live import (
    NOT_SERVING,
    SERVING,
    eventually,
    free_port,
    health_status,
    kill_if_running,
    serve_process,
)

from .builders import DAILY, asset
from .conftest import local_config


def test_readiness_follows_the_database(tmp_path: Path) -> None:
    # A Postgres this test may stop and restart, apart from the session's.
    own_database = tmp_path / "pg"
    database = EmbeddedPostgres(own_database)
    server = _server_over(database.url)
    try:
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        assert health_status(channel) == SERVING

        database.stop()
        eventually(lambda: health_status(channel, "readiness") == NOT_SERVING, seconds=20)
        assert health_status(channel, "liveness") == SERVING
        with pytest.raises(grpc.RpcError) as raised:
            definitions.ApplyAssets(
                defs_pb.ApplyAssetsRequest(namespace="n", assets=[asset("a", DAILY)]), timeout=10
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

        database = EmbeddedPostgres(own_database)
        eventually(lambda: health_status(channel) == SERVING, seconds=20)
        applied = definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(namespace="n", assets=[asset("a", DAILY)]), timeout=10
        )
        assert applied.generation == 1
        channel.close()
    finally:
        server.stop()
        database.stop()


def _server_over(database_url: str) -> Server:
    """A server whose database may go away: pool waits and connects give up after a second,
    and health follows the database closely."""
    pool = PoolSettings(min_size=1, max_size=2, acquire_timeout=1, connect_timeout=1)
    return Server(local_config(database_url, pool=pool, health_interval_seconds=0.2))


def test_serve_with_no_configuration_then_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = serve_process(
        "--listen",
        f"127.0.0.1:{port}",
        "--grace-seconds",
        "2",
        environment={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        cwd=tmp_path,  # the default data folder ./data/pg lands here
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        eventually(lambda: health_status(channel) == SERVING, seconds=60)
        assert (tmp_path / "data" / "pg").is_dir()
        channel.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)  # a bound for a loaded machine, not a window
    finally:
        kill_if_running(process)
    assert process.returncode == 0, stderr
    assert '"message": "signal received"' in stderr
    assert '"message": "stopped"' in stderr


def test_a_server_started_before_its_database_waits_not_serving(tmp_path: Path) -> None:
    database = EmbeddedPostgres(tmp_path / "pg")
    url = database.url
    database.stop()
    server = _server_over(url)
    abandon = threading.Event()
    starting = threading.Thread(target=server.start, args=(abandon,))
    starting.start()
    try:
        eventually(lambda: server.port != 0, seconds=20)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        eventually(lambda: health_status(channel) == NOT_SERVING, seconds=20)
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
