"""What the benchmark scripts share: a server process of their own, free ports, its memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (0 once it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class ServerProcess:
    """`partition-deps serve` as a child process: embedded Postgres in `data_dir`, this
    checkout's code, logs at WARNING; stopped by pid."""

    def __init__(self, port: int, data_dir: Path, extra: list[str]) -> None:
        command = [
            sys.executable,
            "-m",
            "partition_deps.cli",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "WARNING",
            *extra,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "service")}
        env.pop("DATABASE_URL", None)
        self.process = subprocess.Popen(command, env=env)
        self.port = port

    def wait_serving(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"server exited with status {self.process.returncode}")
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
                    if status.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise SystemExit("server did not become SERVING in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
