"""Bootstrap: config, embedded Postgres, migrations, pool, gRPC services, health, shutdown."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from psycopg_pool import ConnectionPool

from partition_deps import tracing
from partition_deps.api import (
    automation_servicer,
    definitions_servicer,
    diagnostics_servicer,
    events_servicer,
    queries_servicer,
    staleness_servicer,
)
from partition_deps.api.answer_pages import AnswerPages
from partition_deps.api.auth import AuthInterceptor, TokenTable
from partition_deps.api.gen.partitiondeps.v1 import (
    automation_service_pb2,
    definitions_service_pb2,
    diagnostics_service_pb2,
    events_service_pb2,
    queries_service_pb2,
    staleness_service_pb2,
)
from partition_deps.api.handlers import add_service
from partition_deps.api.metrics import Metrics, MetricsInterceptor, parse_listen
from partition_deps.api.paging import PageTokens
from partition_deps.api.response_memo import ResponseMemo
from partition_deps.health_listener import serve_health
from partition_deps.store.answer_snapshots import AnswerSnapshots
from partition_deps.store.automation import KEPT_HISTORIES, AutomationRepository
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.database import DatabaseProbe, EmbeddedPostgres, PoolSettings, migrate
from partition_deps.store.definitions import DefinitionsRepository
from partition_deps.store.events import DEFAULT_RUN_LEASE, EventsRepository
from partition_deps.store.read_routing import (
    DEFAULT_REPLICA_WAIT_SECONDS,
    PRIMARY,
    ReadDatabase,
    ReadRouter,
)
from partition_deps.store.secrets import page_token_key
from partition_deps.store.staleness import DEFAULT_MIRROR_ROWS, StalenessRepository
from partition_deps.tracing import Tracing
from partition_deps.web.listener import HttpListener

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    definitions_service_pb2.DESCRIPTOR.services_by_name["DefinitionsService"].full_name,
    events_service_pb2.DESCRIPTOR.services_by_name["EventsService"].full_name,
    queries_service_pb2.DESCRIPTOR.services_by_name["QueriesService"].full_name,
    diagnostics_service_pb2.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name,
    staleness_service_pb2.DESCRIPTOR.services_by_name["StalenessService"].full_name,
    automation_service_pb2.DESCRIPTOR.services_by_name["AutomationService"].full_name,
)
# Health names that follow the database ("" is the server as a whole; "readiness" is for
# Kubernetes probes). "liveness" is SERVING as long as the process answers.
READINESS_NAMES = ("", "readiness", *SERVICE_NAMES)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's certificate chain and key; with `client_ca`, mutual TLS."""

    cert: Path
    key: Path
    # Clients must present a certificate signed by this CA.
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.client_ca.read_bytes() if self.client_ca else None,
            require_client_auth=self.client_ca is not None,
        )


@dataclass(frozen=True)
class Config:
    listen: str = "127.0.0.1:50051"
    # None: embedded Postgres in `data_dir`.
    database_url: str | None = None
    data_dir: Path = Path("data/pg")
    pool: PoolSettings = field(default_factory=PoolSettings)
    grace_seconds: float = 10.0
    max_message_bytes: int = 4 * 1024 * 1024
    workers: int = 16
    health_interval_seconds: float = 1.0
    # Lets several server processes share one port (the kernel spreads connections).
    reuse_port: bool = False
    # None: auth off (every call allowed). See api/auth.py.
    tokens: TokenTable | None = None
    # None: plaintext.
    tls: TlsFiles | None = None
    # Serialized answers of stored queries kept (api/response_memo.py); 0: none.
    memo_entries: int = 4096
    # Rows of latest state kept in memory for staleness (store/state_mirror.py); 0: none.
    state_cache_rows: int = DEFAULT_MIRROR_ROWS
    # host:port of the Prometheus endpoint (HTTP /metrics); None: no metrics.
    metrics_listen: str | None = None
    # host:port of a plaintext listener serving only grpc.health.v1 (health_listener.py), for
    # probes that cannot speak the main port's TLS; None: none.
    health_listen: str | None = None
    # The lease of a run whose RunStarted gives none (store/events.py).
    run_lease_seconds: float = DEFAULT_RUN_LEASE.total_seconds()
    # host:port of the HTTP listener (Connect JSON calls, status page); None: no HTTP.
    http_listen: str | None = None
    # Automation histories kept in memory, one per namespace (store/automation.py); 0: none,
    # each tick reads its namespace's events from the start.
    automation_histories: int = KEPT_HISTORIES
    # Streaming replicas of `database_url` for the read RPCs (store/read_routing.py).
    read_database_urls: tuple[str, ...] = ()
    # How long a read waits for a replica to replay up to its min_* before the primary answers.
    replica_wait_seconds: float = DEFAULT_REPLICA_WAIT_SECONDS


class Server:
    """One serving process.

    `start()` returns once the server answers and is healthy, or early (not ready) when the
    `abandon` event is set while it waits for the database.
    """

    def __init__(self, config: Config, tracing: Tracing | None = None) -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        self.config = config
        # None: no tracing (tracing.py: on only when OTEL_* variables ask for it).
        self._tracing = tracing
        # None: no metrics. Made here, before the interceptor, read router, memo and health
        # checker that count into it; start() adds the collectors of the pool and the cache
        # once they exist, then serves the endpoint. Thread safety: prometheus-client's
        # metrics lock their own state.
        self.metrics = Metrics() if config.metrics_listen is not None else None
        # Thread safety: these are set once by start(), before any call is served or any of our
        # threads starts, and never replaced; the objects they hold are themselves thread-safe.
        self.port = 0
        self.health_port = 0
        self._health_server: grpc.Server | None = None
        self._embedded: EmbeddedPostgres | None = None
        self._pool: ConnectionPool | None = None
        self._url: str | None = None
        self._abandon: threading.Event | None = None
        # 1 once the server stopped itself because its embedded Postgres died. Thread safety:
        # written by the health thread before it sets `abandon`; read after stop() joined it.
        self.exit_status = 0
        self._cache: DefinitionsCache | None = None
        self._reads: ReadRouter | None = None
        self._grpc: grpc.Server | None = None
        # Thread safety: set once by start() before it serves, like `port`.
        self.http: HttpListener | None = None
        # Thread safety: grpcio's HealthServicer guards its statuses with its own lock.
        self._health = health.HealthServicer()
        # Thread safety: stop() tests and sets it under self._stop_lock (it runs once).
        self._stop_lock = threading.Lock()
        self._stopping = threading.Event()
        self._checker: threading.Thread | None = None

    @property
    def definitions_cache(self) -> DefinitionsCache | None:
        return self._cache

    def start(self, abandon: threading.Event | None = None) -> int:
        """Serve; `abandon` is set to stop (by a signal, or by the server itself when its
        embedded Postgres is gone: then `exit_status` is 1)."""
        self._abandon = abandon
        config = self.config
        self._url = url = self._database_url()
        # The pool opens after migrations: calls before then find it closed -> UNAVAILABLE.
        self._pool = self._unopened_pool(url, "partition-deps")
        definitions = DefinitionsRepository(self._pool)
        # Definitions are read from the primary: generation notifications (LISTEN/NOTIFY)
        # exist there only, and a snapshot is read once per generation.
        self._cache = DefinitionsCache(definitions, url)
        pool = self._pool
        tokens = PageTokens(lambda: page_token_key(pool))
        if self.metrics is not None:
            self._serve_metrics(self.metrics, self._pool, self._cache)

        for name in READINESS_NAMES:
            self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self._health.set("liveness", health_pb2.HealthCheckResponse.SERVING)
        server = grpc.server(
            ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="rpc"),
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.so_reuseport", 1 if config.reuse_port else 0),
            ],
            interceptors=self._interceptors(),
        )
        self._reads = self._read_router(self._pool)
        for replica in self._reads.replicas:
            self._health.set(replica.name, health_pb2.HealthCheckResponse.NOT_SERVING)
        add_service(
            server,
            definitions_servicer.SERVICE_NAME,
            list(
                definitions_servicer.DefinitionsServicer(definitions, self._cache, tokens).methods()
            ),
        )
        add_service(
            server,
            events_servicer.SERVICE_NAME,
            events_servicer.EventsServicer(
                self._reads.primary.events,
                self._reads,
                self._cache,
                tokens,
            ).methods(),
        )
        add_service(
            server,
            queries_servicer.SERVICE_NAME,
            list(queries_servicer.QueriesServicer(self._cache, tokens, self._memo()).methods()),
        )
        add_service(
            server,
            staleness_servicer.SERVICE_NAME,
            list(
                staleness_servicer.StalenessServicer(
                    self._reads,
                    self._cache,
                    AnswerPages(AnswerSnapshots(self._pool), tokens),
                ).methods()
            ),
        )
        add_service(
            server,
            automation_servicer.SERVICE_NAME,
            list(
                automation_servicer.AutomationServicer(
                    AutomationRepository(self._pool, config.automation_histories),
                    self._cache,
                    tokens,
                ).methods()
            ),
        )
        add_service(
            server,
            diagnostics_servicer.SERVICE_NAME,
            list(diagnostics_servicer.DiagnosticsServicer().methods()),
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        try:
            self.port = (
                server.add_secure_port(config.listen, config.tls.credentials())
                if config.tls is not None
                else server.add_insecure_port(config.listen)
            )
        except RuntimeError as error:
            raise RuntimeError(f"cannot listen on {config.listen}: {error}") from error
        if config.http_listen is not None:
            self.http = HttpListener(
                server,
                parse_listen(config.http_listen),
                config.max_message_bytes,
                config.reuse_port,
            )
        server.start()
        self._grpc = server
        if self.http is not None:
            self.http.start()
            logger.info(
                "http listening", extra={"address": config.http_listen, "port": self.http.port}
            )
        if config.health_listen is not None:
            self._health_server, self.health_port = serve_health(
                config.health_listen, self._health, config.reuse_port
            )
            logger.info(
                "health probes listening",
                extra={"address": config.health_listen, "port": self.health_port},
            )
        logger.info(
            "listening",
            extra={
                "address": config.listen,
                "port": self.port,
                "tls": "mutual" if config.tls and config.tls.client_ca else bool(config.tls),
                "auth": config.tokens is not None,
            },
        )

        if not self._prepare_database(url, abandon):
            return self.port
        self._cache.start()
        replica_probes = self._replica_probes()
        self._check_replicas(replica_probes)
        self._set_ready(True)
        self._checker = threading.Thread(
            target=self._check_database, args=(replica_probes,), name="health", daemon=True
        )
        self._checker.start()
        logger.info("serving", extra={"port": self.port})
        return self.port

    def _database_url(self) -> str:
        """`database_url`, or else that of an embedded Postgres started in `data_dir`."""
        if self.config.database_url is not None:
            return self.config.database_url
        self._embedded = EmbeddedPostgres(self.config.data_dir)
        logger.info("embedded postgres started", extra={"data_dir": str(self.config.data_dir)})
        return self._embedded.url

    def _prepare_database(self, url: str, abandon: threading.Event | None) -> bool:
        """Migrate and fill the pool, retrying while the database is unreachable.

        Health stays NOT_SERVING meanwhile (an orchestrator keeps traffic away rather than
        restarting us in a loop). Returns False if `abandon` is set first.
        """
        assert self._pool is not None
        backoff = 0.2
        while True:
            try:
                applied = migrate(url)
                logger.info("migrations done", extra={"applied": applied})
                self._pool.open(wait=True, timeout=self.config.pool.acquire_timeout * 6)
                return True
            except psycopg.OperationalError as error:  # includes PoolTimeout
                logger.warning("database not reachable yet", extra={"error": str(error)})
            if self._embedded_gone():
                return False
            if abandon is not None and abandon.wait(backoff):
                return False
            if abandon is None:
                time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _embedded_gone(self) -> bool:
        """Whether the embedded Postgres died; if so, stop serving with exit status 1.

        Nothing here restarts it: a supervisor restarts the whole service, where staying up
        NOT_SERVING would wait forever.
        """
        if self._embedded is None or self._embedded.running():
            return False
        logger.error("embedded postgres is gone: stopping")
        self.exit_status = 1
        self._set_ready(False)
        if self._abandon is not None:
            self._abandon.set()
        return True

    def _set_ready(self, ready: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in READINESS_NAMES:
            self._health.set(name, status)

    def _check_database(self, replica_probes: list[tuple[ReadDatabase, DatabaseProbe]]) -> None:
        """Flip readiness with the database: NOT_SERVING while it is unreachable. Read
        replicas are probed too: each has its own health name, and reads skip it while down."""
        assert self._url is not None
        assert self._pool is not None
        wait = max(1.0, self.config.health_interval_seconds * 2)
        probe = DatabaseProbe(self._url, wait)
        ready = True
        while not self._stopping.wait(self.config.health_interval_seconds):
            try:
                # While ready, a probe of its own: a pool busy with writes is still serving.
                # Back to ready only once the pool hands out a working connection too.
                probe.check()
                if not ready:
                    with self._pool.connection(timeout=wait) as conn:
                        conn.execute("SELECT 1")
                now_ready = True
            except Exception as error:  # any failure to reach the database means not ready
                now_ready = False
                if ready:
                    logger.warning("database unreachable", extra={"error": str(error)})
                if self._embedded_gone():
                    break
            if now_ready != ready and not self._stopping.is_set():
                logger.info("readiness changed", extra={"ready": now_ready})
                self._set_ready(now_ready)
            ready = now_ready
            self._check_replicas(replica_probes)
        probe.close()
        for _, replica_probe in replica_probes:
            replica_probe.close()

    def _replica_probes(self) -> list[tuple[ReadDatabase, DatabaseProbe]]:
        assert self._reads is not None
        wait = max(1.0, self.config.health_interval_seconds * 2)
        return [
            (replica, DatabaseProbe(url, wait))
            for replica, url in zip(
                self._reads.replicas, self.config.read_database_urls, strict=True
            )
        ]

    def _check_replicas(self, probes: list[tuple[ReadDatabase, DatabaseProbe]]) -> None:
        """Mark each read replica up or down by a probe of its own (never its busy pool)."""
        for replica, probe in probes:
            try:
                probe.check()
                up = True
            except Exception as error:  # any failure to reach the replica means down
                up = False
                if replica.up.is_set():
                    logger.warning(
                        "read replica unreachable",
                        extra={"replica": replica.name, "error": str(error)},
                    )
            if up and not replica.up.is_set():
                logger.info("read replica up", extra={"replica": replica.name})
            if up:
                replica.up.set()
            else:
                replica.up.clear()
            if self.metrics is not None:
                self.metrics.replica_up.labels(replica.name).set(1 if up else 0)
            if not self._stopping.is_set():
                self._health.set(
                    replica.name,
                    health_pb2.HealthCheckResponse.SERVING
                    if up
                    else health_pb2.HealthCheckResponse.NOT_SERVING,
                )

    def wait(self) -> None:
        if self._grpc is not None:
            self._grpc.wait_for_termination()

    def _interceptors(self) -> list[grpc.ServerInterceptor]:
        """Tracing outermost (a span for every call, refused ones too), then metrics (so
        refused calls are counted too), then auth."""
        interceptors: list[grpc.ServerInterceptor] = []
        if self._tracing is not None:
            interceptors.append(self._tracing.interceptor())
        if self.metrics is not None:
            interceptors.append(MetricsInterceptor(self.metrics))
        if self.config.tokens is not None:
            interceptors.append(AuthInterceptor(self.config.tokens))
        return interceptors

    def _serve_metrics(
        self, metrics: Metrics, pool: ConnectionPool, cache: DefinitionsCache
    ) -> None:
        """Count the pool and the cache's snapshot loads, and open the /metrics endpoint."""
        assert self.config.metrics_listen is not None  # metrics exist only with an address
        metrics.watch_pool(pool)
        metrics.watch(
            "partition_deps_snapshot_loads",
            "Namespace snapshots read from the database (definition cache misses).",
            lambda: cache.loads,
        )
        port = metrics.serve(self.config.metrics_listen)
        logger.info(
            "metrics listening", extra={"address": self.config.metrics_listen, "port": port}
        )

    def _read_router(self, primary_pool: ConnectionPool) -> ReadRouter:
        """The primary and each --read-database-url, with their own pools and state copies."""
        config = self.config
        lease = timedelta(seconds=config.run_lease_seconds)

        def database(name: str, pool: ConnectionPool) -> ReadDatabase:
            return ReadDatabase(
                name, pool, self._staleness(pool, name), EventsRepository(pool, lease)
            )

        primary = database(PRIMARY, primary_pool)
        primary.up.set()  # reads fall back to it whatever its health: it is the last resort
        replicas = [
            database(f"read-replica-{number}", self._replica_pool(url))
            for number, url in enumerate(config.read_database_urls, start=1)
        ]
        metrics = self.metrics
        return ReadRouter(
            primary,
            replicas,
            config.replica_wait_seconds,
            on_route=(
                (lambda name, reason: metrics.reads.labels(name, reason).inc())
                if metrics is not None
                else None
            ),
        )

    def _unopened_pool(self, url: str, name: str) -> ConnectionPool:
        settings = self.config.pool
        return ConnectionPool(
            url,
            min_size=settings.min_size,
            max_size=settings.max_size,
            timeout=settings.acquire_timeout,
            kwargs={"connect_timeout": settings.connect_timeout},
            # One cheap check per checkout: after a database restart, stale connections are
            # replaced instead of failing the call that drew them.
            check=ConnectionPool.check_connection,
            configure=self._tracing.trace_connection if self._tracing else None,
            open=False,
            name=name,
        )

    def _replica_pool(self, url: str) -> ConnectionPool:
        """Opened without waiting: a replica that is down at start is only skipped."""
        pool = self._unopened_pool(url, "partition-deps-replica")
        pool.open(wait=False)
        return pool

    def _staleness(self, pool: ConnectionPool, name: str) -> StalenessRepository:
        repository = StalenessRepository(pool, self.config.state_cache_rows)
        mirror = repository.mirror
        if self.metrics is not None and name == PRIMARY:
            self.metrics.watch(
                "partition_deps_state_cache_rows_read",
                "Rows of latest state read into the in-memory copies (loads and catch-ups).",
                lambda: mirror.rows_read,
            )
        return repository

    def _memo(self) -> ResponseMemo | None:
        if self.config.memo_entries <= 0:
            return None
        memo = ResponseMemo(self.config.memo_entries)
        if self.metrics is not None:
            self.metrics.watch(
                "partition_deps_response_memo_hits",
                "Stored queries answered from the response memo.",
                lambda: memo.hits,
            )
            self.metrics.watch(
                "partition_deps_response_memo_misses",
                "Stored queries computed (and memoised).",
                lambda: memo.misses,
            )
        return memo

    def _end_health_watches(self) -> None:
        """End every Health.Watch stream (status OK) once it has been sent NOT_SERVING.

        A watch never ends by itself, so one open watch (gRPC client-side health checking
        keeps one per connection) would hold every shutdown for the whole grace period.
        grpcio's servicer keeps the streams' send callbacks; None completes a stream.
        """
        health: Any = self._health  # private state: there is no public way to end watches
        with health._lock:
            callbacks = [
                callback
                for per_service in health._send_response_callbacks.values()
                for callback in per_service
            ]
        for callback in callbacks:
            callback(None)

    def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING first, then finish in-flight calls within the grace period."""
        with self._stop_lock:  # two threads stopping at once: the second returns at once
            if self._stopping.is_set():
                return
            self._stopping.set()
        self._health.enter_graceful_shutdown()
        self._end_health_watches()
        self._stop_listening(self.config.grace_seconds if grace is None else grace)
        self._release()
        logger.info("stopped")

    def _stop_listening(self, grace: float) -> None:
        """Close the HTTP and health listeners, then let gRPC calls finish within `grace`."""
        if self.http is not None:
            self.http.stop()
        if self._health_server is not None:
            self._health_server.stop(0)
        if self._grpc is not None:
            self._grpc.stop(grace).wait()

    def _release(self) -> None:
        """Stop the health checker, the caches, the pool, the embedded Postgres, the metrics
        endpoint and tracing, in that order."""
        if self._checker is not None and self._checker.is_alive():
            self._checker.join(timeout=5)
        if self._cache is not None:
            self._cache.stop()
        if self._pool is not None:
            self._pool.close()
        for replica in self._reads.replicas if self._reads is not None else ():
            replica.pool.close()
        if self._embedded is not None:
            self._embedded.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self._tracing is not None:
            self._tracing.shutdown()


# CPython's cyclic collector, tuned for a heap of millions of long-lived objects (the kept
# automation histories and definitions): with the default (700, 10, 10), a 1,000-asset tick
# ran about 380 young collections, and the objects alive during them, promoted, set off a full
# collection of the whole heap (2.4 million objects, 1-2 s) most ticks. A young collection every
# 50,000 allocations keeps full ones to about one per hundred ticks; garbage without cycles is
# freed by reference counting whatever the thresholds.
GC_THRESHOLDS = (50_000, 20, 100)


# How often the main thread wakes to run Python's signal handlers while it waits to stop.
SIGNAL_POLL_SECONDS = 0.2


def wait_for_stop(stop_requested: threading.Event) -> None:
    """Block the main thread until `stop_requested` is set, by a signal handler or the server.

    A signal handler runs only when the main thread executes bytecode. The kernel may deliver
    SIGTERM to any thread (a gRPC or pool thread), and then a main thread blocked in an
    untimed wait never wakes to run the handler: seen as a SIGTERM ignored for good, about one
    time in twenty on a loaded machine. Waking every 0.2 s bounds that delay.
    """
    while not stop_requested.wait(SIGNAL_POLL_SECONDS):
        pass


# What the process may take beyond the grace period to stop the database pool, the embedded
# Postgres and the metrics endpoint before it exits whatever still runs.
EXIT_MARGIN_SECONDS = 4.5


def exit_within(seconds: float) -> None:
    """End the process `seconds` from now if it has not ended by then (status 1).

    A call past the grace period is cancelled, but its handler thread runs on (Python cannot
    stop a thread): one stuck in a long computation or a database wait held the process
    for as long, 80 s and more after SIGTERM.
    """

    def force() -> None:
        time.sleep(seconds)
        logger.warning("calls still running after the grace period: exiting")
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=force, name="exit-deadline", daemon=True).start()


def stop_on_signals(*, supervised: bool = False) -> threading.Event:
    """An event that SIGTERM and SIGINT set, each logged.

    `supervised`: a serving process of `serve --processes`. Its supervisor logs the signal and
    sends it SIGTERM, so it ignores SIGINT (a terminal's ^C reaches the whole process group)
    and does not log the SIGTERM again.
    """
    stop_requested = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        if not supervised:
            logger.info("signal received", extra={"signal": signal.Signals(signum).name})
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN if supervised else request_stop)
    return stop_requested


def serve_until_stopped(config: Config, *, supervised: bool = False) -> int:
    """Serve in this process until a signal (see stop_on_signals) or the server itself stops
    it; returns the exit status. Tracing is what the OTEL_* variables ask for (cli.main
    checked them)."""
    stop_requested = stop_on_signals(supervised=supervised)
    server = Server(config, tracing.from_environment())
    try:
        server.start(abandon=stop_requested)
        wait_for_stop(stop_requested)
    finally:
        exit_within(config.grace_seconds + EXIT_MARGIN_SECONDS)
        server.stop()
    return server.exit_status
