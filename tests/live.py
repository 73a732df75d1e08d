"""What tests and benchmarks that run live servers share: free ports, waiting, health checks,
and `partition-deps serve` as a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# This checkout's service code, for the children tests start.
SERVICE = Path(__file__).resolve().parents[1] / "service"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(condition: Callable[[], bool], seconds: float = 60, interval: float = 0.05) -> None:
    """Wait until `condition` holds, failing the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)


def health_status(channel: grpc.Channel, service: str = "", timeout: float = 2) -> int:
    """The health service's status for `service`, or -1 when the server does not answer."""
    try:
        response = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]  # the stubs' HealthStub has no methods
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    except grpc.RpcError:
        return -1
    return int(response.status)


def is_serving(channel: grpc.Channel, timeout: float = 2) -> bool:
    return health_status(channel, timeout=timeout) == SERVING


def serve_process(
    *flags: str, environment: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """`partition-deps serve` with `flags` as a child running this checkout's code, with
    `environment` (default: this process's) and its log readable on stderr."""
    env = {**(os.environ if environment is None else environment), "PYTHONPATH": str(SERVICE)}
    return subprocess.Popen(
        serve_command(*flags),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def serve_command(*flags: str) -> list[str]:
    """`partition-deps serve` with `flags`, run by this interpreter as a module (the caller's
    PYTHONPATH decides which checkout's code)."""
    return [sys.executable, "-m", "partition_deps.cli", "serve", *flags]


def kill_if_running(process: subprocess.Popen[Any]) -> None:
    """Kill `process` unless it has exited, and reap it: a test's last word on a child."""
    if process.poll() is None:
        process.kill()
        process.wait()
