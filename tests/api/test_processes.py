"""`serve --processes 2`: two serving processes on one port, health, metrics, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import grpc

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    queries_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from tests.live import SERVING, eventually, free_port, health_status, kill_if_running, serve_process

from .builders import DAILY, WEEKLY, asset, keys


def _serve(*flags: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return serve_process("--grace-seconds", "2", *flags, environment=environment)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _metrics_port() -> int:
    """A free port whose successor is free too (child i serves metrics on port + i)."""
    while True:
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def test_two_processes_share_the_port_and_stop_on_sigterm(
    database_url: str, namespace: str
) -> None:
    port, metrics, http = free_port(), _metrics_port(), free_port()
    process = _serve(
        "--listen",
        f"127.0.0.1:{port}",
        "--database-url",
        database_url,
        "--processes",
        "2",
        "--metrics-listen",
        f"127.0.0.1:{metrics}",
        "--http-listen",
        f"127.0.0.1:{http}",
    )
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(8)
    ]
    try:
        eventually(lambda: len(_children(process.pid)) == 2, seconds=60)
        children = _children(process.pid)
        for channel in channels:  # each its own connection, spread over the processes

            def serving(channel: grpc.Channel = channel) -> bool:
                return health_status(channel) == SERVING

            eventually(serving, seconds=60)
        definitions_service_pb2_grpc.DefinitionsServiceStub(channels[0]).ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=namespace,
                assets=[asset("daily", DAILY), asset("weekly", WEEKLY, "daily")],
            )
        )
        request = queries_pb.GetUpstreamPartitionsRequest(
            namespace=namespace, asset_key="weekly", selection=keys("2024-01-07")
        )
        for channel in channels:
            answer = queries_service_pb2_grpc.QueriesServiceStub(channel).GetUpstreamPartitions(
                request
            )
            assert answer.generation == 1
            assert answer.dependencies[0].partitions.count == 7
        handled = 0.0
        for offset in (0, 1):
            url = f"http://127.0.0.1:{metrics + offset}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("grpc_server_handled_total{") and "Health" in line:
                        handled += float(line.rsplit(" ", 1)[1])
        assert handled >= 8
        # Both processes share the HTTP port too; each answers over its own loopback socket.
        for _ in range(8):
            ping = urllib.request.Request(
                f"http://127.0.0.1:{http}/partitiondeps.v1.DiagnosticsService/Ping",
                data=b"{}",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(ping, timeout=10) as response:
                assert (response.status, response.read()) == (200, b"{}")
        for channel in channels:
            channel.close()

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        for channel in channels:
            channel.close()
        kill_if_running(process)
    assert process.returncode == 0, stderr
    assert stderr.count('"message": "stopped"') == 3  # two servers, then the supervisor
    for child in children:
        assert not Path(f"/proc/{child}").exists()


def test_processes_need_a_fixed_port() -> None:
    process = _serve("--listen", "127.0.0.1:0", "--processes", "2")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "fixed port" in stderr


def test_a_dying_process_stops_the_others(database_url: str) -> None:
    port = free_port()
    process = _serve(
        "--listen", f"127.0.0.1:{port}", "--database-url", database_url, "--processes", "2"
    )
    try:
        eventually(lambda: len(_children(process.pid)) == 2, seconds=60)
        first, second = _children(process.pid)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            eventually(lambda: health_status(channel) == SERVING, seconds=60)
        os.kill(first, signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        kill_if_running(process)
    assert process.returncode == 1, stderr
    assert "serving process exited" in stderr
    assert not Path(f"/proc/{second}").exists()
