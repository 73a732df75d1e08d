"""What the benchmark scripts share: a server process of their own, its memory, stopping it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc

from tests.live import is_serving, serve_command

ROOT = Path(__file__).resolve().parent.parent


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
        command = serve_command(
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "WARNING",
            *extra,
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT / "service")}
        env.pop("DATABASE_URL", None)
        self.process = subprocess.Popen(command, env=env)
        self.port = port

    def wait_serving(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"server exited with status {self.process.returncode}")
                if is_serving(channel, timeout=1):
                    return
                time.sleep(0.2)
        raise SystemExit("server did not become SERVING in time")

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM, and SIGKILL if the process has not exited `timeout` seconds later."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
