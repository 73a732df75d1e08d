"""Prometheus metrics: calls and latency per method and status code, pool use, events ingested.

Served over HTTP on their own address (`--metrics-listen`), never on the gRPC port. A server
interceptor wraps each handler's behaviour function (grpcio runs `intercept_service` itself
on its polling thread, before the call); the wrapped handler is built once per method.
The status code is the one the call ended with: `context.code()` after an abort, UNKNOWN for an
exception that did not set one, OK otherwise.

Each server has a registry of its own, so that several servers in one process (tests) do not
collide on metric names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

# Seconds; unary calls here take from about 0.1 ms (memoised answers) to seconds (big ingests).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
EVENT_METHODS = frozenset(
    {
        "/partitiondeps.v1.EventsService/ReportEvents",
        "/partitiondeps.v1.EventsService/StreamEvents",
    }
)


def parse_listen(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) -> (host, port)."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"address {address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


class Metrics:
    def __init__(self) -> None:
        # Thread safety: prometheus-client's registry and metrics lock their own state.
        self.registry = CollectorRegistry(auto_describe=True)
        self.handled = Counter(
            "grpc_server_handled_total",
            "gRPC calls completed, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Time spent in the handler, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "partition_deps_events_ingested_total",
            "Events reported, by result (stored, or duplicate of an idempotency key).",
            ["result"],
            registry=self.registry,
        )
        self.events.labels("stored")
        self.events.labels("duplicate")
        self.reads = Counter(
            "partition_deps_reads_total",
            "Read RPCs' database reads, by database (primary, replica-1, ...) and why it was"
            " chosen (replica; on the primary: no_replica, replica_behind, replica_failed).",
            ["database", "reason"],
            registry=self.registry,
        )
        self.replica_up = Gauge(
            "partition_deps_read_replica_up",
            "1 while the read replica answers its health probe, else 0.",
            ["database"],
            registry=self.registry,
        )
        self._http: WSGIServer | None = None
        self._http_thread: threading.Thread | None = None
        self.port = 0

    # -- collectors read at scrape time -------------------------------------------------------

    def watch_pool(self, pool: ConnectionPool) -> None:
        self.registry.register(_PoolCollector(pool))

    def watch(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A counter whose value is read from `read()` at scrape time."""
        self.registry.register(_ReadCounter(name, documentation, read))

    # -- the HTTP endpoint ------------------------------------------------------------------

    def serve(self, address: str) -> int:
        host, port = parse_listen(address)
        self._http, self._http_thread = start_http_server(port, host, registry=self.registry)
        self.port = int(self._http.server_port)
        return self.port

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    # -- recording ----------------------------------------------------------------------------

    def recorder(self, full_method: str) -> Callable[[grpc.StatusCode, float], None]:
        """Records one call of `full_method`; label children are looked up once per code."""
        service, _, method = full_method.lstrip("/").rpartition("/")
        lock = threading.Lock()
        # Thread safety: an immutable map, replaced under `lock` by one reference swap; calls
        # of the method read it without the lock.
        children: Mapping[grpc.StatusCode, tuple[Any, Any]] = {}

        def record(code: grpc.StatusCode, seconds: float) -> None:
            nonlocal children
            child = children.get(code)
            if child is None:
                labels = (service, method, code.name)
                with lock:
                    child = children.get(code)
                    if child is None:
                        child = (self.handled.labels(*labels), self.handling.labels(*labels))
                        children = {**children, code: child}
            child[0].inc()  # prometheus-client metrics lock their own values
            child[1].observe(seconds)

        return record

    def count_events(self, response: Any) -> None:
        stored = getattr(response, "stored_count", 0)
        duplicate = getattr(response, "duplicate_count", 0)
        if stored:
            self.events.labels("stored").inc(stored)
        if duplicate:
            self.events.labels("duplicate").inc(duplicate)


class _PoolCollector(Collector):
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def collect(self) -> Iterable[GaugeMetricFamily]:
        stats = self._pool.get_stats()
        size = stats.get("pool_size", 0)
        available = stats.get("pool_available", 0)
        family = GaugeMetricFamily(
            "partition_deps_db_pool_connections",
            "Database connections: open, idle in the pool, in use by calls; max: the limit.",
            labels=["state"],
        )
        family.add_metric(["open"], size)
        family.add_metric(["idle"], available)
        family.add_metric(["in_use"], max(size - available, 0))
        family.add_metric(["max"], self._pool.max_size)
        yield family
        yield GaugeMetricFamily(
            "partition_deps_db_pool_requests_waiting",
            "Calls waiting for a database connection.",
            value=stats.get("requests_waiting", 0),
        )


class _ReadCounter(Collector):
    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterable[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


def _code_of(context: grpc.ServicerContext, failed: bool) -> grpc.StatusCode:
    code = context.code()  # type: ignore[attr-defined]
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK


class MetricsInterceptor(grpc.ServerInterceptor):
    """Outermost interceptor: times every call, including those auth refuses."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()
        # method -> (handler, its wrapped handler). Reused only for the very same handler
        # object (held here, so its identity cannot be recycled); inner interceptors that build
        # a handler per call (auth) get theirs wrapped per call.
        # Thread safety: immutable maps, replaced under self._lock by one reference swap; read
        # without it (grpcio calls interceptors on its polling thread, but nothing relies on it).
        self._wrapped: Mapping[str, tuple[grpc.RpcMethodHandler[Any, Any], Any]] = {}
        self._recorders: Mapping[str, Callable[[grpc.StatusCode, float], None]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]  # type: ignore[no-any-return]
        with self._lock:
            record = self._recorders.get(method)
            if record is None:
                if len(self._recorders) >= 1000:  # unknown methods never get here (None above)
                    return handler
                record = self._metrics.recorder(method)
                self._recorders = {**self._recorders, method: record}
            wrapped = _wrap(handler, method, self._metrics, record)
            self._wrapped = {**self._wrapped, method: (handler, wrapped)}
        return wrapped


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    metrics: Metrics,
    record: Callable[[grpc.StatusCode, float], None],
) -> grpc.RpcMethodHandler[Any, Any]:
    count_events = metrics.count_events if method in EVENT_METHODS else None
    clock = time.perf_counter

    def single(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            started = clock()
            failed = True
            try:
                response = behaviour(request, context)
                failed = False
            finally:
                record(_code_of(context, failed), clock() - started)
            if count_events is not None:
                count_events(response)
            return response

        return timed

    def streaming(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def timed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = clock()
            failed = True
            try:
                yield from behaviour(request, context)
                failed = False
            finally:
                record(_code_of(context, failed), clock() - started)

        return timed

    handlers = {
        "unary_unary": handler.unary_unary,
        "stream_unary": handler.stream_unary,
        "unary_stream": handler.unary_stream,
        "stream_stream": handler.stream_stream,
    }
    replaced = {
        name: (single if name.endswith("unary") else streaming)(behaviour)
        for name, behaviour in handlers.items()
        # Non-blocking streams (Health.Watch) answer through a callback after returning and
        # hold no thread meanwhile; a wrapper would hide the attribute that grpc looks for and
        # turn each open watch into a blocked worker thread. They are not timed.
        if behaviour is not None and not getattr(behaviour, "experimental_non_blocking", False)
    }
    return handler._replace(**replaced)  # type: ignore[attr-defined,no-any-return]
