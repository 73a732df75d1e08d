"""The call policy the Client installs, on a local fake server (no PD_ADDR needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from partition_deps_client import Client, pb


class FlakyDiagnostics(pb.diagnostics_grpc.DiagnosticsServiceServicer):
    """Answers UNAVAILABLE to the first `failures` calls; sleeps `delay` seconds on the others."""

    def __init__(self) -> None:
        self.failures = 0
        self.delay = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def Ping(
        self, request: pb.diagnostics.PingRequest, context: grpc.ServicerContext
    ) -> pb.diagnostics.PingResponse:
        with self._lock:
            self.calls += 1
            calls = self.calls
        if calls <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "database unreachable")
        time.sleep(self.delay)
        return pb.diagnostics.PingResponse()


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FlakyDiagnostics]]:
    servicer = FlakyDiagnostics()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb.diagnostics_grpc.add_DiagnosticsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(0)


def test_unavailable_is_retried(fake: tuple[str, FlakyDiagnostics]) -> None:
    address, servicer = fake
    servicer.calls, servicer.failures, servicer.delay = 0, 2, 0.0
    with Client(address, initial_backoff=0.01) as pd:
        pd.ping()
    assert servicer.calls == 3


def test_retries_stop_at_max_attempts(fake: tuple[str, FlakyDiagnostics]) -> None:
    address, servicer = fake
    servicer.calls, servicer.failures, servicer.delay = 0, 100, 0.0
    with Client(address, max_attempts=3, initial_backoff=0.01) as pd:
        with pytest.raises(grpc.RpcError) as error:
            pd.ping()
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == 3


def test_default_and_per_call_deadlines(fake: tuple[str, FlakyDiagnostics]) -> None:
    address, servicer = fake
    servicer.calls, servicer.failures, servicer.delay = 0, 0, 2.0
    with Client(address, timeout=0.2) as pd:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            pd.ping()
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert 0.15 <= time.monotonic() - started < 1.5  # not early (grpc/grpc#34547)
        with pytest.raises(grpc.RpcError) as shorter:
            pd.ping(timeout=0.05)
        assert shorter.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
