"""API fixtures: one real server on a free port over the session database, one real channel."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import (
    automation_service_pb2_grpc,
    definitions_service_pb2_grpc,
    diagnostics_service_pb2_grpc,
    events_service_pb2_grpc,
    queries_service_pb2_grpc,
)
from partition_deps.server import Config, Server
from partition_deps.store.database import PoolSettings
from partition_deps.tracing import Tracing

MAX_MESSAGE_BYTES = 1024 * 1024


def local_config(database_url: str, **settings: Any) -> Config:
    """A test server's configuration: a free local port over `database_url`, a small pool and a
    one-second grace, with `settings` (Config fields) on top."""
    config = Config(
        listen="127.0.0.1:0",
        database_url=database_url,
        pool=PoolSettings(min_size=1, max_size=2),
        grace_seconds=1,
    )
    return dataclasses.replace(config, **settings)


@contextmanager
def serving(database_url: str, tracing: Tracing | None = None, **settings: Any) -> Iterator[Server]:
    """A started server of its own with `local_config(database_url, **settings)`, stopped on
    leaving."""
    server = Server(local_config(database_url, **settings), tracing)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Stubs:
    channel: grpc.Channel
    definitions: definitions_service_pb2_grpc.DefinitionsServiceStub
    events: events_service_pb2_grpc.EventsServiceStub
    queries: queries_service_pb2_grpc.QueriesServiceStub
    diagnostics: diagnostics_service_pb2_grpc.DiagnosticsServiceStub
    automation: automation_service_pb2_grpc.AutomationServiceStub

    @classmethod
    def of(cls, channel: grpc.Channel) -> Stubs:
        """A stub of every service on `channel`."""
        return cls(
            channel,
            definitions_service_pb2_grpc.DefinitionsServiceStub(channel),
            events_service_pb2_grpc.EventsServiceStub(channel),
            queries_service_pb2_grpc.QueriesServiceStub(channel),
            diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel),
            automation_service_pb2_grpc.AutomationServiceStub(channel),
        )


def raw_unary(channel: grpc.Channel, path: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """Unary method `path` on `channel` with bodies sent and answered as bytes, unparsed."""
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[Server]:
    with serving(
        database_url,
        pool=PoolSettings(min_size=1, max_size=4),
        max_message_bytes=MAX_MESSAGE_BYTES,
        workers=8,
        health_interval_seconds=0.2,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def stubs(server: Server) -> Iterator[Stubs]:
    channel = grpc.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[("grpc.max_send_message_length", 8 * MAX_MESSAGE_BYTES)],
    )
    yield Stubs.of(channel)
    channel.close()
