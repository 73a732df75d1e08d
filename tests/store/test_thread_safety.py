"""Shared state of the store under concurrent calls: the definitions cache, the state mirror and
its views. Real Postgres throughout (tests/conftest.py); see tests/threads.py for how workers run.

Every worker checks that what it observes is what some single-threaded order of the same calls
could give: the snapshot of the namespace it asked for, never older than a change (or another
read) that finished before it asked, and internally consistent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import DynamicPartitions, Evaluation
from partition_deps.domain.events import Materialization
from partition_deps.domain.partitions import all_partitions
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.database import PoolSettings, open_pool
from partition_deps.store.definitions import DefinitionsRepository, NamespaceSnapshot
from partition_deps.store.events import EventsRepository
from partition_deps.store.staleness import StalenessEngine, StalenessRepository
from partition_deps.store.state_mirror import (
    CODE_VERSION,
    MATERIALIZATION_ID,
    RECORD_ID,
    MirrorView,
    Snapshot,
    StateRow,
)
from tests.domain.definitions import DAILY
from tests.store.conftest import stored_namespace

from ..threads import run_concurrently

WORKERS = 16


@pytest.fixture(scope="module")
def wide_pool(database_url: str) -> Iterator[ConnectionPool]:
    """Room for most workers at once; a busy machine may make the rest wait a while."""
    pool = open_pool(database_url, PoolSettings(min_size=2, max_size=8, acquire_timeout=60))
    yield pool
    pool.close()


class CountingRepository(DefinitionsRepository):
    """The real repository, counting snapshot loads, and holding chosen threads after a load."""

    def __init__(self, pool: ConnectionPool) -> None:
        super().__init__(pool)
        self._lock = threading.Lock()
        self.loads = 0
        self.hold: dict[str, tuple[threading.Event, threading.Event]] = {}

    def load_snapshot(self, namespace: str) -> NamespaceSnapshot:
        snapshot = super().load_snapshot(namespace)
        with self._lock:
            self.loads += 1
        held = self.hold.get(threading.current_thread().name)
        if held is not None:
            loaded, release = held
            loaded.set()
            assert release.wait(60)
        return snapshot


ITEMS = AssetDefinition("items", DynamicPartitions("items"))


def _create(repository: DefinitionsRepository, namespace: str) -> int:
    return repository.apply_assets(
        namespace, [ITEMS], replace_all=True, expected_generation=None, validate=lambda _: None
    )


def _started(repository: DefinitionsRepository, database_url: str) -> DefinitionsCache:
    cache = DefinitionsCache(repository, database_url)
    cache.start(wait_seconds=30)
    assert cache.listening
    return cache


# -- the definitions cache ---------------------------------------------------------------------


def test_a_load_that_began_before_a_change_never_replaces_the_newer_snapshot(
    wide_pool: ConnectionPool, namespace: str, database_url: str
) -> None:
    """A slow load of generation 1 ends after a load of generation 2 was cached, and before
    the notification of generation 2 arrived: readers must not go back to generation 1."""
    repository = CountingRepository(wide_pool)
    assert _create(repository, namespace) == 1
    cache = _started(repository, database_url)
    try:
        loaded, release = threading.Event(), threading.Event()
        repository.hold["slow-reader"] = (loaded, release)
        slow_answer: list[NamespaceSnapshot] = []
        slow = threading.Thread(
            target=lambda: slow_answer.append(cache.snapshot(namespace)), name="slow-reader"
        )
        slow.start()
        assert loaded.wait(60)  # generation 1 read, not yet handed back
        # A change committed whose notification has not arrived yet (none is sent here).
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE namespaces SET generation = generation + 1 WHERE name = %s", (namespace,)
            )
        assert cache.snapshot(namespace).generation == 2  # loaded and cached
        release.set()
        slow.join(60)
        assert [snapshot.generation for snapshot in slow_answer] == [1]  # it began before
        assert cache.snapshot(namespace).generation == 2
        cached = cache.cached(namespace)
        assert cached is None or cached.generation == 2
    finally:
        cache.stop()


def test_concurrent_reads_writes_and_resets_never_see_an_older_generation(
    wide_pool: ConnectionPool, namespace: str, database_url: str
) -> None:
    repository = CountingRepository(wide_pool)
    namespaces = [f"{namespace}-{index}" for index in (1, 2)]
    for name in namespaces:
        assert _create(repository, name) == 1
    cache = _started(repository, database_url)
    lock = threading.Lock()
    # Per namespace: the newest generation a finished write (and its invalidation) or a
    # finished read has shown. A read that begins later must answer at least that.
    floor = dict.fromkeys(namespaces, 1)
    writes = 8

    def observe(name: str, snapshot: NamespaceSnapshot | None, low: int) -> None:
        if snapshot is None:
            return
        assert snapshot.namespace == name
        assert snapshot.generation >= low, (name, snapshot.generation, low)
        # Each write adds one key: a snapshot is whole, never half of a change.
        assert len(snapshot.dynamic_keys.get("items", ())) == snapshot.generation - 1
        with lock:
            floor[name] = max(floor[name], snapshot.generation)

    def writer(name: str) -> Callable[[], None]:
        def write() -> None:
            for index in range(writes):
                generation, added = repository.add_dynamic_partitions(name, "items", [f"k{index}"])
                assert added == 1
                cache.invalidate(name, generation)
                with lock:
                    floor[name] = max(floor[name], generation)

        return write

    def reader(seed: int) -> Callable[[], None]:
        def read() -> None:
            for step in range(40):
                name = namespaces[(seed + step) % 2]
                with lock:
                    low = floor[name]
                if step % 3 == 2:
                    observe(name, cache.cached(name), low)
                else:
                    observe(name, cache.snapshot(name), low)

        return read

    def resetter() -> None:
        """What the listener does after re-LISTENing on a new connection, amid reads."""
        for step in range(20):
            cache._reset(listening=True)
            name = namespaces[step % 2]
            with lock:
                low = floor[name]
            observe(name, cache.snapshot(name), low)

    try:
        run_concurrently(
            [
                *(writer(name) for name in namespaces),
                resetter,
                *(reader(seed) for seed in range(WORKERS - 3)),
            ]
        )
        assert cache.loads == repository.loads
        for name in namespaces:
            assert cache.snapshot(name).generation == 1 + writes
    finally:
        cache.stop()


# -- one view of the state mirror, shared by answers -------------------------------------------

T0 = datetime(2024, 1, 11, tzinfo=UTC)
ROWS = 2000


def _row(event_id: int, code: str) -> StateRow:
    return (event_id, T0, f"v{event_id}", code, None, event_id, T0, f"v{event_id}", False)


def _assets(changed: frozenset[str] = frozenset()) -> dict[str, dict[str, StateRow]]:
    """`changed`: keys materialized again since (some on one side only, some on both)."""
    down = {}
    for n in range(ROWS):
        key = f"p{n:04d}"
        again = key in changed and n % 3 != 0
        down[key] = _row(1000 + (n * 37) % 1000 + (5000 if again else 0), "abc"[(n + again) % 3])
    up = {}
    for n in range(0, ROWS, 2):
        key = f"p{n:04d}"
        up[key] = _row(1000 + (n * 61) % 1000 + (9000 if key in changed and n % 5 else 0), "a")
    return {"down": down, "up": up}


def _upstream_newer(row: StateRow, upstream: StateRow | None) -> bool:
    return row[MATERIALIZATION_ID] is not None and (
        upstream is None or upstream[RECORD_ID] > row[MATERIALIZATION_ID]
    )


class _Code:
    def __init__(self, code: str) -> None:
        self.code = code

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[CODE_VERSION] != self.code


TESTS: list[tuple[object, str | None, Callable[[StateRow, StateRow | None], bool]]] = [
    ("upstream newer", "up", _upstream_newer),
    *((("code", code), None, _Code(code)) for code in "abc"),
]


def _expected(view: MirrorView) -> list[frozenset[str]]:
    return [view.keys_where(name, "down", other, test) for name, other, test in TESTS]


def _version(key: tuple[str, str | None, int]) -> str:
    return f"{key[1]}@{key[2]}"


def test_a_shared_view_gives_every_answer_the_sets_and_versions_of_its_own_snapshot() -> None:
    changed_keys = frozenset(f"p{n:04d}" for n in range(0, ROWS, 7))
    first = _assets()
    later = _assets(changed_keys)
    changed = {
        asset: {key: rows[key] for key in changed_keys if key in rows}
        for asset, rows in later.items()
    }
    expected_first = _expected(MirrorView(Snapshot(100, 100, frozenset()), first))
    expected_later = _expected(MirrorView(Snapshot(200, 200, frozenset()), later))
    assert expected_first != expected_later
    shared = MirrorView(Snapshot(100, 100, frozenset()), first)
    version_keys = [("up", f"p{n:04d}", 900 + n) for n in range(0, ROWS, 3)]

    def answer(seed: int) -> Callable[[], None]:
        def work() -> None:
            for step in range(30):
                index = (seed + step) % len(TESTS)
                name, other, test = TESTS[index]
                assert shared.keys_where(name, "down", other, test) == expected_first[index]
                start = (seed * 131 + step * 17) % len(version_keys)
                asked = version_keys[start : start + 40]
                for key, version in shared.known_versions(asked).items():
                    assert version == _version(key)
                shared.remember_versions({key: _version(key) for key in asked})
                if step % 5 == 4:  # a newer answer catches up from this view meanwhile
                    caught_up = shared.caught_up(Snapshot(200, 200, frozenset()), later, changed)
                    assert _expected(caught_up) == expected_later
                    known = caught_up.known_versions(version_keys)
                    for key, version in known.items():
                        assert version == _version(key)
                        assert key[1] not in changed[key[0]]  # may differ in the new one

        return work

    run_concurrently([answer(seed) for seed in range(WORKERS)])
    assert shared.known_versions(version_keys) == {key: _version(key) for key in version_keys}


# -- the state mirror, with answers and ingests racing -----------------------------------------

AT = Evaluation(datetime(2024, 1, 11, tzinfo=UTC))
GRAPH = {
    "up": AssetDefinition("up", DAILY),
    "down": AssetDefinition("down", DAILY, None, (Dependency("up"),)),
}
KEYS: list[str | None] = list(all_partitions(DAILY, AT))


@pytest.mark.parametrize("mirror_rows", [500_000, 15], ids=["roomy", "tight"])
def test_concurrent_answers_through_one_mirror_agree_with_the_rules_in_their_snapshot(
    wide_pool: ConnectionPool, namespace: str, mirror_rows: int
) -> None:
    namespace_id = stored_namespace(wide_pool, namespace, GRAPH.values(), replace_all=True)
    events = EventsRepository(wide_pool)
    events.ingest(
        namespace_id,
        [
            Materialization(f"{asset}-{key}", T0, asset, key, "run", "v1")
            for asset in ("up", "down")
            for key in KEYS
            if key is not None
        ],
    )
    repository = StalenessRepository(wide_pool, mirror_rows=mirror_rows)

    def work(worker: int) -> Callable[[], None]:
        def run() -> None:
            for step in range(8):
                if (worker + step) % 2:
                    day = f"2024-01-{1 + (worker * 3 + step) % 10:02d}"
                    asset_key = "up" if step % 3 else "down"
                    version = f"v{(worker + step) % 3}"
                    events.ingest(
                        namespace_id,
                        [Materialization(f"w{worker}-{step}", T0, asset_key, day, "run", version)],
                    )
                with repository.reading(namespace_id) as reader:
                    mirrored = StalenessEngine(GRAPH, reader, AT, mirror_min_keys=0).statuses(
                        "down", KEYS
                    )
                    rules = StalenessEngine(GRAPH, reader, AT, set_based=False).statuses(
                        "down", KEYS
                    )
                    assert mirrored == rules
                assert repository.mirror.held_rows() <= mirror_rows

        return run

    run_concurrently([work(worker) for worker in range(WORKERS)])
