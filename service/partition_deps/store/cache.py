"""Namespace snapshots cached in memory, invalidated by LISTEN/NOTIFY on generation changes.

Why LISTEN/NOTIFY rather than checking the generation: the serving target is that a stored
query costs at most 1.1x an empty gRPC call (about 0.7 ms here), and one Postgres round trip
costs about as much as the whole call. Polling every N ms would either add that round trip or
leave an N-ms window of stale answers; a notification arrives within a millisecond or two of the
writer's commit and costs nothing per query. Writers also invalidate their own replica
synchronously, so a client sees its own writes on the replica it wrote through.

If the listening connection is lost, notifications may be missed: the cache is then emptied and
bypassed (every query loads its snapshot, correct but slower) until the connection is back, and
emptied again right after the new LISTEN.

Concurrency: the map of cached snapshots is never changed in place; writers (loads, invalidations,
resets) build a new one under the lock and publish it in one assignment, so a hit reads one
reference and takes no lock. A generation once seen (loaded or heard of) is remembered, so a load
that began before a change never replaces the newer snapshot: no reader goes back a generation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import psycopg

from partition_deps.store.definitions import (
    GENERATION_CHANNEL,
    DefinitionsRepository,
    NamespaceSnapshot,
)

logger = logging.getLogger(__name__)


class DefinitionsCache:
    def __init__(self, repository: DefinitionsRepository, url: str) -> None:
        self._repository = repository
        self._url = url
        self._lock = threading.Lock()
        # Thread safety: immutable maps, replaced under self._lock by one reference swap.
        self._snapshots: Mapping[str, NamespaceSnapshot] = {}
        # Highest generation heard of or loaded per namespace: a snapshot loaded before a
        # notification arrived, or before a newer load, must not be cached after it.
        # Thread safety: guarded by self._lock.
        self._known_generations: dict[str, int] = {}
        # Bumped on every (re)LISTEN; a load that began in an older epoch is not cached.
        # Thread safety: guarded by self._lock (`listening` reads one bool unlocked).
        self._epoch = 0
        self._listening = False
        self._stopped = threading.Event()
        # Snapshots read from the database so far (a metric, and how tests see cache hits).
        # Thread safety: written under self._lock; a metrics scrape reads one int unlocked.
        self.loads = 0
        self._thread = threading.Thread(
            target=self._listen, name="generation-listener", daemon=True
        )

    @property
    def listening(self) -> bool:
        return self._listening

    def start(self, wait_seconds: float = 5.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + wait_seconds
        while not self._listening and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():  # never started when the server gave up waiting
            self._thread.join(timeout=5)

    def cached(self, namespace: str) -> NamespaceSnapshot | None:
        """The snapshot of `namespace` if it is in memory (never reads the database)."""
        return self._snapshots.get(namespace)

    def snapshot(self, namespace: str, min_generation: int = 0) -> NamespaceSnapshot:
        """The current snapshot of `namespace`; raises NamespaceNotFound or StoreUnavailable.

        `min_generation` (read-your-writes across servers): a cached snapshot older than it is
        dropped and the namespace read again, without waiting for the notification.
        """
        cached = self._snapshots.get(namespace)
        if cached is not None and cached.generation >= min_generation:
            return cached
        if cached is not None:
            self.invalidate(namespace, min_generation)
        with self._lock:
            epoch, listening = self._epoch, self._listening
        loaded = self._repository.load_snapshot(namespace)
        with self._lock:
            self.loads += 1
            # A newer generation may have been loaded (or heard of) meanwhile: then this
            # older one is not cached, and a cached older one is dropped.
            self._learn(namespace, loaded.generation)
            if (
                listening
                and self._listening
                and epoch == self._epoch
                and loaded.generation >= self._known_generations.get(namespace, 0)
            ):
                self._snapshots = {**self._snapshots, namespace: loaded}
        return loaded

    def invalidate(self, namespace: str, generation: int) -> None:
        """Forget snapshots of `namespace` older than `generation`."""
        with self._lock:
            self._learn(namespace, generation)

    def _learn(self, namespace: str, generation: int) -> None:
        """`generation` of `namespace` exists: drop any older cached snapshot. Holding the lock."""
        if generation > self._known_generations.get(namespace, 0):
            self._known_generations[namespace] = generation
        cached = self._snapshots.get(namespace)
        if cached is not None and cached.generation < generation:
            self._snapshots = {
                name: snapshot for name, snapshot in self._snapshots.items() if name != namespace
            }

    def _reset(self, listening: bool) -> None:
        with self._lock:
            self._epoch += 1
            self._listening = listening
            self._snapshots = {}

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {GENERATION_CHANNEL}".encode())
                    self._reset(listening=True)
                    backoff = 0.1
                    while not self._stopped.is_set():
                        for notify in conn.notifies(timeout=1.0):
                            generation, _, namespace = notify.payload.partition(":")
                            self._invalidate_from_notification(namespace, generation)
                        # A silent network loss raises no error in notifies(): probe it.
                        conn.execute("SELECT 1")
            except psycopg.Error as error:
                if self._listening:
                    logger.warning("generation listener lost", extra={"error": str(error)})
            self._reset(listening=False)
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, 2.0)

    def _invalidate_from_notification(self, namespace: str, generation: str) -> None:
        try:
            self.invalidate(namespace, int(generation))
        except ValueError:
            logger.warning("malformed generation notification", extra={"payload": generation})
