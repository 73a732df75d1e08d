"""The embedded Postgres after crashes: a server killed with -9 leaves nothing that outlives
the next graceful stop, and a server whose postmaster died exits non-zero (so that a
supervisor restarts it) instead of staying NOT_SERVING forever."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb
from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2_grpc
from tests.live import eventually, free_port, kill_if_running, serve_process


def _answers(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel).Ping(
                diagnostics_pb.PingRequest(), timeout=5
            )
        except grpc.RpcError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


@contextmanager
def _serving(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """`partition-deps serve` on its own embedded Postgres in `data_dir`, answering."""
    port = free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != "DATABASE_URL" and not name.startswith("PD_")
    }
    process = serve_process("--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
                            "--grace-seconds", "1", environment=environment)  # fmt: skip
    try:
        eventually(lambda: process.poll() is not None or _answers(port), seconds=120, interval=0.1)
        assert process.poll() is None, process.communicate()[1]
        yield process
    finally:
        kill_if_running(process)
        if process.stderr is not None:
            process.stderr.close()


def test_after_a_kill_minus_nine_the_next_graceful_stop_stops_the_postmaster(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "pg"
    with _serving(data_dir) as killed:
        killed.send_signal(signal.SIGKILL)
        killed.communicate()
    with _serving(data_dir) as server:
        postmaster = _postmaster(data_dir)
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=120)
        assert server.returncode == 0, stderr
    # It stayed up for the dead process's handle, and kept the folder busy for good.
    try:
        eventually(lambda: not _alive(postmaster), seconds=30, interval=0.1)
    finally:
        if _alive(postmaster):
            os.kill(postmaster, signal.SIGKILL)


def test_a_server_whose_embedded_postgres_died_exits_non_zero(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    with _serving(data_dir) as server:
        os.kill(_postmaster(data_dir), signal.SIGKILL)
        try:
            _, stderr = server.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the server kept running without its database")
        assert server.returncode == 1, stderr
        assert "embedded postgres is gone" in stderr
        assert "Traceback" not in stderr
