"""Connecting to Postgres: the connection pool, embedded Postgres, and schema migrations."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from partition_deps.store.errors import StoreUnavailable, UnstorableValue

logger = logging.getLogger(__name__)

# JSON and JSONB values (automation tick summaries and state, run details, conditions) go
# through orjson: a 1,000-asset tick's summary encodes in 15 ms instead of 80 ms. Process-wide:
# psycopg keeps one default per process, and the store is its only user here.
set_json_dumps(orjson.dumps)
set_json_loads(orjson.loads)

# Any constant works; it only has to be the same in every replica that migrates this schema.
MIGRATION_LOCK_ID = 0x7061727464657073  # "partdeps"


@dataclass(frozen=True)
class PoolSettings:
    min_size: int = 2
    max_size: int = 10
    # Seconds a request waits for a free connection before the store is called unavailable.
    acquire_timeout: float = 5.0
    connect_timeout: int = 5


class EmbeddedPostgres:
    """A local Postgres 16 (PyPI `pgserver`) in a data folder, for zero-configuration runs.

    pgserver runs the server as its own system user when we are root. The server is stopped
    by `stop()` (or at exit) unless another process still holds a handle on the same folder.
    """

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI);
            # pgserver then uses /tmp, which is fine.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import PostgresServer, get_server  # embedded only

        data_dir.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:
            _forget_dead_handles(data_dir / _HANDLES)
        self._server: Any = get_server(data_dir.resolve(), cleanup_mode="stop")

    @property
    def url(self) -> str:
        return str(self._server.get_uri())

    def running(self) -> bool:
        """Whether the postmaster this handle started (or found) still runs."""
        try:
            process = self._server.get_postmaster_info().process
            # A killed postmaster whose parent has not reaped it yet is a zombie: not running.
            return bool(process.is_running() and process.status() != "zombie")
        except Exception:  # no postmaster known, or its process is gone
            return False

    def stop(self) -> None:
        try:
            self._server.cleanup()
        except Exception:
            if self.running():
                raise
            # pgserver fails to signal a postmaster that died first: nothing is left to stop.
            logger.warning("the embedded postgres had stopped already")


# pgserver stops the postmaster when the last process holding a handle on the folder ends,
# and lists those processes here. A process killed with -9 never leaves the list, so the
# postmaster then outlived every later graceful stop: dead processes are dropped first.
_HANDLES = ".handle_pids.json"


def _forget_dead_handles(handles: Path) -> None:
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def open_pool(url: str, settings: PoolSettings, *, wait: bool = True) -> ConnectionPool:
    """Open a pool of non-autocommit connections; with `wait`, block until it is filled."""
    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=settings.min_size,
        max_size=settings.max_size,
        timeout=settings.acquire_timeout,
        kwargs={"connect_timeout": settings.connect_timeout, "application_name": "partition-deps"},
        check=ConnectionPool.check_connection,
        open=False,
        name="partition-deps",
    )
    pool.open(wait=wait, timeout=settings.acquire_timeout * 6)
    return pool


class DatabaseProbe:
    """Whether the database answers, on a connection of its own: a pool busy with long
    writes says nothing about reachability, so readiness must not wait for one of its
    connections.

    Thread safety: used by the one health thread only.
    """

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self._url = url
        self._timeout_seconds = timeout_seconds
        self._connection: psycopg.Connection[Any] | None = None

    def check(self) -> None:
        """One `SELECT 1`, reconnecting first if the last one failed; raises what failed."""
        milliseconds = max(1, int(self._timeout_seconds * 1000))
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=max(1, int(self._timeout_seconds)),
                    options=f"-c statement_timeout={milliseconds}",
                    application_name="partition-deps-health",
                )
            self._connection.execute("SELECT 1")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def migration_scripts() -> list[tuple[str, str]]:
    """(version, sql) of every migration, in order of their file names."""
    folder = resources.files("partition_deps.store") / "migrations"
    return sorted(
        (entry.name.removesuffix(".sql"), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )


def migrate(url: str) -> list[str]:
    """Apply the migrations not applied yet, under an advisory lock; return their versions.

    The session-level advisory lock serialises replicas that start at the same time: the second
    one waits, then finds everything applied. Each migration commits with its version row.
    """
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migration_scripts():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                logger.info("applied migration", extra={"version": version})
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now


def _first_line(error: Exception) -> str:
    return str(error).split("\n", 1)[0]


# Seconds left of the request being served, set by the API layer around each call: statements
# of its transactions are cancelled (SQLSTATE 57014) rather than outliving the caller's deadline.
# Thread safety: a ContextVar, set and reset around each call on its own thread.
statement_budget: ContextVar[float | None] = ContextVar("statement_budget", default=None)
_NO_DEADLINE_SECONDS = 86_400.0


# Ids past 2^31 share a lock with a smaller one: they then wait for each other, harmlessly.
_LOCK_NAMESPACE = "SELECT pg_advisory_xact_lock(%s::integer, (%s::bigint %% 2147483647)::integer)"


def lock_namespace(conn: psycopg.Connection[Any], lock_class: int, namespace_id: int) -> None:
    """Hold the namespace's advisory lock of `lock_class` until the transaction ends. Two-key
    advisory locks never conflict with the one-key migration lock, nor classes with each other."""
    conn.execute(_LOCK_NAMESPACE, (lock_class, namespace_id))


@contextmanager
def transaction(
    pool: ConnectionPool, *, read_only_snapshot: bool = False
) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection inside one transaction; a lost database becomes StoreUnavailable.

    `read_only_snapshot`: every statement sees the same committed state (REPEATABLE READ).
    """
    try:
        with pool.connection() as conn, conn.transaction():
            if read_only_snapshot:  # must precede any other statement of the transaction
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            budget = statement_budget.get()
            # grpcio reports "no deadline" as a huge time_remaining(): ignore beyond a day.
            if budget is not None and budget < _NO_DEADLINE_SECONDS:
                # SET does not take bound parameters; set_config(..., true) is local to the
                # transaction, so the pooled connection keeps no timeout afterwards.
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    (str(max(1, int(budget * 1000))),),
                )
            yield conn
    except PoolTimeout as error:
        raise StoreUnavailable("no database connection available") from error
    except psycopg.DataError as error:
        # SQLSTATE class 22 (data exception), or psycopg refusing a NUL byte in text before
        # sending it: the request carried a value Postgres cannot store.
        raise UnstorableValue(f"a value cannot be stored: {_first_line(error)}") from error
    except psycopg.OperationalError as error:
        if error.sqlstate is None or error.sqlstate.startswith(("08", "57P")):
            raise StoreUnavailable(f"database unavailable: {error}") from error
        raise
