"""Read RPCs on streaming replicas, with read-your-writes; writes stay on the primary.

A read names the least it must see (`ReadFloor`: an event position and a generation). Each
replica is tried in turn, round robin: the floor is checked inside the read's own snapshot, so
an answer computed there never predates it. A replica that has not replayed that far is asked
again until `wait_seconds` have passed; then the next one, and at last the primary, which has
every committed write. A replica that cannot be reached (or fails mid-answer) is marked down and
skipped until the health thread reaches it again; the answer is computed again elsewhere.

Thread safety: the list of replicas is fixed at construction; each replica's `up` flag is a
threading.Event; the round-robin counter is guarded by a lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from partition_deps.store.database import transaction
from partition_deps.store.errors import StoreUnavailable
from partition_deps.store.events import EventsRepository
from partition_deps.store.staleness import StalenessReader, StalenessRepository

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRIMARY = "primary"
# Between two looks at a replica that is behind: replay usually lands within milliseconds.
_POLL_SECONDS = 0.005
DEFAULT_REPLICA_WAIT_SECONDS = 0.2


@dataclass(frozen=True)
class ReadFloor:
    """What a read must see: at least this event position and namespace generation."""

    event_position: int = 0
    generation: int = 0


@dataclass
class ReadDatabase:
    """One database the reads may go to: the primary or a replica ("replica-1", ...)."""

    name: str
    pool: ConnectionPool
    staleness: StalenessRepository
    events: EventsRepository
    # Set while reachable (a threading.Event: set and read from any thread).
    up: threading.Event = field(default_factory=threading.Event)


# Why a read went where it went (metric labels): served by a replica that had the floor; the
# primary because no replica is configured or up, or because every replica was behind or failed.
ROUTE_REASONS = ("replica", "no_replica", "replica_behind", "replica_failed")


class ReadRouter:
    """Runs read computations on a replica that has replayed far enough, else the primary.

    `on_route(database name, reason)` is called once per read (metrics).
    """

    def __init__(
        self,
        primary: ReadDatabase,
        replicas: Sequence[ReadDatabase],
        wait_seconds: float = DEFAULT_REPLICA_WAIT_SECONDS,
        on_route: Callable[[str, str], None] | None = None,
    ) -> None:
        self.primary = primary
        self.replicas = tuple(replicas)
        self._wait_seconds = wait_seconds
        self._on_route = on_route or (lambda database, reason: None)
        self._lock = threading.Lock()
        # Thread safety: guarded by self._lock.
        self._turn = itertools.count()

    def _in_turn(self) -> list[ReadDatabase]:
        """The replicas that are up, starting from the next one in round-robin order."""
        if not self.replicas:
            return []
        with self._lock:
            start = next(self._turn) % len(self.replicas)
        ordered = self.replicas[start:] + self.replicas[:start]
        return [replica for replica in ordered if replica.up.is_set()]

    def staleness(
        self, namespace_id: int, floor: ReadFloor, compute: Callable[[StalenessReader], T]
    ) -> T:
        """`compute` on one snapshot of a database that sees `floor`."""

        def attempt(database: ReadDatabase, check_floor: bool) -> T:
            with database.staleness.reading(namespace_id) as reader:
                if check_floor and not reached_floor(reader.conn, namespace_id, floor):
                    raise _Behind
                return compute(reader)

        return self._route(attempt)

    def events(
        self, namespace_id: int, floor: ReadFloor, compute: Callable[[EventsRepository], T]
    ) -> T:
        """`compute` with the events repository of a database that sees `floor` (checked just
        before: what a database has replayed only grows)."""

        def attempt(database: ReadDatabase, check_floor: bool) -> T:
            if check_floor:
                with transaction(database.pool) as conn:
                    if not reached_floor(conn, namespace_id, floor):
                        raise _Behind
            return compute(database.events)

        return self._route(attempt)

    def _route(self, attempt: Callable[[ReadDatabase, bool], T]) -> T:
        reason = "no_replica"
        for replica in self._in_turn():
            deadline = time.monotonic() + self._wait_seconds
            try:
                while True:
                    try:
                        value = attempt(replica, True)
                    except _Behind:
                        if time.monotonic() >= deadline:
                            reason = "replica_behind"
                            break
                        time.sleep(_POLL_SECONDS)
                        continue
                    self._on_route(replica.name, "replica")
                    return value
            except StoreUnavailable as error:
                if replica.up.is_set():
                    logger.warning(
                        "read replica unreachable",
                        extra={"replica": replica.name, "error": str(error)},
                    )
                replica.up.clear()
                reason = "replica_failed"
            except psycopg.errors.TransactionRollback:
                # A query cancelled by a conflict with replay: the replica is up, the primary
                # answers this one.
                reason = "replica_failed"
        value = attempt(self.primary, False)  # the primary has every committed write
        self._on_route(PRIMARY, reason)
        return value


class _Behind(Exception):
    """The replica's snapshot does not see the read's floor yet."""


def reached_floor(conn: psycopg.Connection[Any], namespace_id: int, floor: ReadFloor) -> bool:
    """Whether the connection's snapshot sees the floor; nothing to check for an empty one."""
    if floor.event_position <= 0 and floor.generation <= 0:
        return True
    row = conn.execute(
        "SELECT (SELECT generation FROM namespaces WHERE namespace_id = %(ns)s),"
        " (SELECT coalesce(max(event_id), 0) FROM events WHERE namespace_id = %(ns)s)",
        {"ns": namespace_id},
    ).fetchone()
    assert row is not None
    generation, position = row
    return (generation or 0) >= floor.generation and int(position) >= floor.event_position
