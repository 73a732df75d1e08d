"""Staleness and planning over the store: a `History` of index lookups, and a set-based path.

Everything one answer reads comes from one REPEATABLE READ snapshot (`StalenessRepository.
reading`), together with the event position (the namespace's highest event_id) it saw.

Two ways to the same answer (tests/store/test_staleness_sets.py checks they agree):

- `StoreHistory` implements the domain's `History` with lookups on `latest_state` (batched by
  `prefetch`) and on `events_by_partition`; the domain rules then decide partition by
  partition. Right for every mapping, but Python work per partition.
- For an asset whose dependencies all join by equal keys (`staleness_sets.joins_by_key`), the
  partitions that may not be FRESH are found in bulk by a candidate source
  (`staleness_candidates.py`: one query for small asks; from `MIRROR_MIN_KEYS` asked keys on,
  the server's in-memory copies of latest states), and the domain's rules decide them
  (`staleness_sets.set_statuses`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

import psycopg
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.definitions import Evaluation
from partition_deps.domain.dependencies import upstream_partitions
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.staleness import (
    Materialized,
    Observed,
    PartitionStatus,
    PlannedRun,
    Semantics,
    StalenessOptions,
    Status,
    latest_record,
    lease_expired,
    mapped_upstream,
    plan_runs,
    statuses,
    version_needed,
)
from partition_deps.domain.staleness_sets import (
    CandidateSource,
    NotFresh,
    joins_by_key,
    set_statuses,
)
from partition_deps.domain.staleness_summary import (
    AssetSummary,
    partition_listing,
    summarize,
)
from partition_deps.domain.work import checkpoint
from partition_deps.store.database import transaction
from partition_deps.store.events import LEASE_EXPIRY
from partition_deps.store.staleness_candidates import (
    MirrorCandidates,
    QueryCandidates,
    text_array,
    versions_at,
)
from partition_deps.store.state_mirror import MirrorView, Snapshot, StateMirror

DEFAULT_OPTIONS = StalenessOptions()


class _State(NamedTuple):
    """One partition's row of `latest_state` as the rules read it, built once per answer (the
    rules ask for the same partitions over and over; a named tuple builds in half a frozen
    dataclass's time)."""

    latest: Materialized | None
    observed: Observed | None
    in_progress_run_id: str | None
    # When the lease of `in_progress_run_id` ends; None when that run has ended.
    lease_expires_at: datetime | None


# The columns of a stored state (`latest_state s`, and `runs r` through _HOLDING_RUN), by name,
# in the order `_stored_state` unpacks them. An empty data version is "none given" (proto3
# strings cannot be unset): any newer materialization then counts as a change, as the
# domain's rule says for no data version.
_STORED_STATE_COLUMNS = {
    "partition_key": "s.partition_key",
    "materialization_id": "s.materialization_event_id",
    "materialization_time": "s.materialization_time",
    "data_version": "nullif(s.data_version, '')",
    "code_version": "s.code_version",
    "upstream_keys": "s.upstream_keys",
    "in_progress_run_id": "s.in_progress_run_id",
    "observation_id": "s.observation_event_id",
    "observation_time": "s.observation_time",
    "observed_version": "nullif(s.observed_data_version, '')",
    # Aligned with upstream_keys; NULL on rows stored before migration 0005.
    "input_event_ids": "s.input_event_ids",
    # NULL when no run holds the partition or its run has ended.
    "lease_expires_at": LEASE_EXPIRY,
}
_STATE_COLUMNS = ", ".join(_STORED_STATE_COLUMNS.values())


def _stored_state(row: Sequence[Any]) -> tuple[str, _State]:
    """The partition key and `_State` of a row of `_STATE_COLUMNS`, unpacked by its names (a
    named tuple per row cost a fifth more: 13.0 ms against 10.8 for 5,000 rows)."""
    (
        partition_key, materialization_id, materialization_time, data_version, code_version,
        upstream_keys, in_progress_run_id, observation_id, observation_time, observed_version,
        input_event_ids, lease_expires_at,
    ) = row  # fmt: skip
    observed = (
        None
        if observation_id is None or observation_time is None
        else Observed(observation_id, observation_time, observed_version)
    )
    latest = None
    if materialization_id is not None and materialization_time is not None:
        latest = Materialized(
            materialization_id,
            materialization_time,
            data_version,
            code_version,
            None if upstream_keys is None else frozenset(upstream_keys),
            None
            if upstream_keys is None or input_event_ids is None
            else dict(zip(upstream_keys, input_event_ids, strict=True)),
        )
    return partition_key, _State(latest, observed, in_progress_run_id, lease_expires_at)


# The run holding each row, while it has not ended.
_HOLDING_RUN = (
    "LEFT JOIN runs r ON r.namespace_id = s.namespace_id AND r.run_id = s.in_progress_run_id"
    " AND r.status = 'started'"
)


class StoreHistory:
    """The domain's `History` over `latest_state` and `events`, memoised per answer."""

    def __init__(self, conn: psycopg.Connection[Any], namespace_id: int) -> None:
        self._conn = conn
        self._namespace_id = namespace_id
        # Thread safety: per-answer object (like its connection), never shared.
        self._states: dict[tuple[str, str], _State | None] = {}
        self._versions: dict[tuple[str, str | None, int], str | None] = {}

    def prefetch(self, asset_key: str, partition_keys: Iterable[str | None]) -> None:
        """Load the states of many partitions in one query."""
        wanted = [key or "" for key in partition_keys if (asset_key, key or "") not in self._states]
        if not wanted:
            return
        for key in wanted:
            self._states[(asset_key, key)] = None
        keys_sql, keys_params = text_array(wanted)
        rows = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM latest_state s {_HOLDING_RUN}"
            " WHERE s.namespace_id = %s AND s.asset_key = %s"
            f" AND s.partition_key = ANY({keys_sql})",
            (self._namespace_id, asset_key, *keys_params),
        ).fetchall()
        for row in rows:
            partition_key, state = _stored_state(row)
            self._states[(asset_key, partition_key)] = state

    def _state(self, asset_key: str, partition_key: str | None) -> _State | None:
        node = (asset_key, partition_key or "")
        if node not in self._states:
            self.prefetch(asset_key, [partition_key])
        return self._states[node]

    def latest(self, asset_key: str, partition_key: str | None) -> Materialized | None:
        state = self._state(asset_key, partition_key)
        return None if state is None else state.latest

    def latest_observation(self, asset_key: str, partition_key: str | None) -> Observed | None:
        state = self._state(asset_key, partition_key)
        return None if state is None else state.observed

    def prefetch_versions(self, asset_key: str, asks: Iterable[tuple[str | None, int]]) -> None:
        """Look up, in one query per kind of key, the data versions `data_version_at` will be
        asked for: (partition key, event id) pairs of one asset."""
        wanted = [ask for ask in dict.fromkeys(asks) if (asset_key, *ask) not in self._versions]
        # An asset's partition keys are all None (unpartitioned) or all text; both are handled.
        for partitioned in (True, False):
            batch = [ask for ask in wanted if (ask[0] is not None) is partitioned]
            if not batch:
                continue
            found = versions_at(
                self._conn,
                self._namespace_id,
                asset_key,
                [partition_key for partition_key, _ in batch],
                [event_id for _, event_id in batch],
            )
            for (partition_key, event_id), version in zip(batch, found, strict=True):
                self._versions[(asset_key, partition_key, event_id)] = version

    def data_version_at(
        self, asset_key: str, partition_key: str | None, event_id: int
    ) -> str | None:
        memo_key = (asset_key, partition_key, event_id)
        if memo_key in self._versions:
            return self._versions[memo_key]
        partition_clause = (
            "partition_key IS NULL" if partition_key is None else "partition_key = %s"
        )
        params: tuple[Any, ...] = (
            (self._namespace_id, asset_key, event_id)
            if partition_key is None
            else (self._namespace_id, asset_key, partition_key, event_id)
        )
        row = self._conn.execute(
            "SELECT nullif(data_version, '') FROM events"
            f" WHERE namespace_id = %s AND asset_key = %s AND {partition_clause}"
            " AND kind IN (1, 2) AND event_id <= %s ORDER BY event_id DESC LIMIT 1",
            params,
        ).fetchone()
        version = None if row is None else row[0]
        self._versions[memo_key] = version
        return version

    def run_in_progress(
        self, asset_key: str, partition_key: str | None, as_of: datetime
    ) -> str | None:
        state = self._state(asset_key, partition_key)
        if state is None or state.lease_expires_at is None or state.lease_expires_at <= as_of:
            return None
        return state.in_progress_run_id


# From this many asked keys on, the answer reads the in-memory copy of latest states
# (state_mirror.py) rather than joining in Postgres.
MIRROR_MIN_KEYS = 5_000
# Rows of latest state a server keeps in memory by default: about 350 bytes each (175 MB).
DEFAULT_MIRROR_ROWS = 500_000


@dataclass
class StalenessReader:
    """One consistent view of a namespace's events, for one answer."""

    conn: psycopg.Connection[Any]
    namespace_id: int
    mirror: StateMirror = field(default_factory=lambda: StateMirror(0))
    history: StoreHistory = field(init=False)
    # Thread safety: per-answer object, never shared (only `mirror` is, and it is thread-safe).
    _snapshot: Snapshot | None = field(init=False, default=None)
    # (as_of, {(asset key, partition key): (run id, lease end)}): read once per answer.
    _expired: tuple[datetime, dict[tuple[str, str], tuple[str, datetime]]] | None = field(
        init=False, default=None
    )
    _arrays: dict[str, list[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.history = StoreHistory(self.conn, self.namespace_id)

    def event_position(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(max(event_id), 0) FROM events WHERE namespace_id = %s",
            (self.namespace_id,),
        ).fetchone()
        return int(row[0]) if row else 0

    def expired_lease(
        self, asset_key: str, partition_key: str | None, as_of: datetime
    ) -> tuple[str, datetime] | None:
        """(run id, lease end) when the partition is held by a run that has not ended and
        whose lease expired by `as_of`. The namespace's such partitions are read in one query
        (few: runs that vanished without an end), on the first call of an answer."""
        if self._expired is None or self._expired[0] != as_of:
            rows = self.conn.execute(
                f"SELECT s.asset_key, s.partition_key, r.run_id, {LEASE_EXPIRY}"
                " FROM latest_state s JOIN runs r ON r.namespace_id = s.namespace_id"
                " AND r.run_id = s.in_progress_run_id"
                " WHERE s.namespace_id = %s AND s.in_progress_run_id IS NOT NULL"
                f" AND r.status = 'started' AND {LEASE_EXPIRY} <= %s",
                (self.namespace_id, as_of),
            ).fetchall()
            self._expired = (as_of, {(a, k): (run_id, end) for a, k, run_id, end in rows})
        return self._expired[1].get((asset_key, partition_key or ""))

    def in_progress_keys(
        self, asset_keys: Sequence[str], as_of: datetime
    ) -> dict[str, frozenset[str | None]]:
        """Per asset, the partitions held at `as_of` by a run that has not ended and whose
        lease has not expired (None for an unpartitioned asset's): one query."""
        rows = self.conn.execute(
            "SELECT s.asset_key, s.partition_key FROM latest_state s JOIN runs r"
            " ON r.namespace_id = s.namespace_id AND r.run_id = s.in_progress_run_id"
            " WHERE s.namespace_id = %s AND s.asset_key = ANY(%s)"
            f" AND r.status = 'started' AND {LEASE_EXPIRY} > %s",
            (self.namespace_id, list(asset_keys), as_of),
        ).fetchall()
        held: dict[str, set[str | None]] = {asset_key: set() for asset_key in asset_keys}
        for asset_key, partition_key in rows:
            held[asset_key].add(partition_key or None)
        return {asset_key: frozenset(keys) for asset_key, keys in held.items()}

    def stored_keys(self, asset_keys: Sequence[str]) -> dict[str, list[str | None]]:
        """Per asset, the partitions with a stored materialization or observation (None for
        an unpartitioned asset's): those the staleness rules can find not MISSING."""
        rows = self.conn.execute(
            "SELECT asset_key, partition_key FROM latest_state"
            " WHERE namespace_id = %s AND asset_key = ANY(%s)"
            " AND (materialization_event_id IS NOT NULL OR observation_event_id IS NOT NULL)",
            (self.namespace_id, list(asset_keys)),
        ).fetchall()
        found: dict[str, list[str | None]] = {}
        for asset_key, partition_key in rows:
            found.setdefault(asset_key, []).append(partition_key or None)
        return found

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            row = self.conn.execute("SELECT pg_current_snapshot()::text").fetchone()
            assert row is not None
            self._snapshot = Snapshot.parse(row[0])
        return self._snapshot

    def mirror_view(self, asset_keys: Sequence[str]) -> MirrorView:
        """The latest materializations and observations of the assets in this answer's
        snapshot."""
        return self.mirror.view(self.conn, self.namespace_id, self.snapshot(), asset_keys)

    def versions_at(
        self, asset_key: str, partition_keys: Sequence[str | None], event_ids: Sequence[int]
    ) -> list[str | None]:
        """The data version of each upstream partition as of the paired event id."""
        return versions_at(self.conn, self.namespace_id, asset_key, partition_keys, event_ids)

    def parse_array(self, text: str) -> list[str]:
        """A text[] as Postgres prints it, read back (memoised: rows share a few texts)."""
        parsed = self._arrays.get(text)
        if parsed is None:
            oid = psycopg.adapters.types["text"].array_oid
            loader = self.conn.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
            assert loader is not None  # psycopg always knows text[]
            parsed = self._arrays[text] = list(loader(oid, self.conn).load(text.encode()))
        return parsed


class StalenessRepository:
    """Readers of one snapshot each; `mirror_rows` bounds the rows of latest state kept in
    memory across answers (0: none kept, each large answer reads its own copy)."""

    def __init__(self, pool: ConnectionPool, mirror_rows: int = DEFAULT_MIRROR_ROWS) -> None:
        self._pool = pool
        # Thread safety: shared by every answer of the server; guarded by its lock.
        self.mirror = StateMirror(max(mirror_rows, 0))

    @contextmanager
    def reading(self, namespace_id: int) -> Iterator[StalenessReader]:
        with transaction(self._pool, read_only_snapshot=True) as conn:
            yield StalenessReader(conn, namespace_id, self.mirror)


# ----- answers ------------------------------------------------------------------------------


def prefetch(
    history: StoreHistory,
    graph: Mapping[str, AssetDefinition],
    asset: AssetDefinition,
    keys: Sequence[str | None],
    at: Evaluation,
    *,
    options: StalenessOptions,
) -> None:
    """Load what the rules will read for `keys`: the states of the partitions and of those they
    read, in one query per asset; then the data versions the rules will ask for, in one query
    per upstream asset (a daily asset reading an hourly one asks one per hour of every day
    whose hours were materialized after it: one round trip each otherwise). Anything missed
    here is still looked up on its own when the rules ask, so this changes no answer."""
    history.prefetch(asset.key, keys)
    selected = [key for key in keys if key is not None]
    for dependency in asset.dependencies:
        upstream = graph.get(dependency.upstream_key)
        if upstream is None:
            continue
        if upstream.partitions is None:
            history.prefetch(upstream.key, [None])
            continue
        try:
            mapped = upstream_partitions(
                upstream.partitions, asset.partitions, dependency.mapping, selected, at
            )
        except PartitionDepsError:  # prefetching only: the rules report it
            continue
        history.prefetch(upstream.key, mapped.partitions)
    asks: dict[str, list[tuple[str | None, int]]] = {}
    dagster = options.semantics is Semantics.DAGSTER
    for key in keys:
        for upstream_key, upstream_partition, since in _version_asks(
            history, graph, asset, key, at, dagster=dagster
        ):
            asks.setdefault(upstream_key, []).append((upstream_partition, since))
    for upstream_key, pairs in asks.items():
        history.prefetch_versions(upstream_key, pairs)


def _version_asks(
    history: StoreHistory,
    graph: Mapping[str, AssetDefinition],
    asset: AssetDefinition,
    key: str | None,
    at: Evaluation,
    *,
    dagster: bool,
) -> Iterator[tuple[str, str | None, int]]:
    """The (upstream asset, upstream partition, event id) data versions the rules ask for one
    partition (`staleness.version_needed`): as of its materialization (EXTENDED) or of its
    input event pointer (Dagster's rules)."""
    latest = history.latest(asset.key, key)
    if latest is None:
        return
    for dependency in asset.dependencies:
        upstream_key = dependency.upstream_key
        if upstream_key not in graph:
            continue
        try:
            mapped, _ = mapped_upstream(graph, asset, upstream_key, key, at)
        except PartitionDepsError:  # prefetching only: the rules report it
            continue
        since = latest.input_event_id(upstream_key) if dagster else latest.event_id
        if since is None:
            continue
        for upstream_partition in mapped:
            record = latest_record(history, upstream_key, upstream_partition)
            if record is not None and version_needed(record, since):
                yield upstream_key, upstream_partition, since


class StalenessEngine:
    """Statuses of asset partitions: set-based where the dependencies allow (EXTENDED rules
    only), else the domain.

    `statuses(asset, keys)` returns the partitions that are not FRESH, by position in `keys`;
    every other position is FRESH. `set_based=False` forces the domain rules (for tests).
    From `mirror_min_keys` asked keys on, the set-based path compares the in-memory copies of
    the asset's and its upstreams' latest states (`MirrorCandidates`) instead of
    joining them in Postgres; below, one query driven by the asked keys does it. An answer
    over many assets says how many partitions it asks about in all (`answer_keys`): from
    `mirror_min_keys` on, every asset reads the copies, however few keys each has (the answer
    brings the copies up to its snapshot once, where a query per asset cost more: in a whole
    answer over 1,000 assets and 274,050 partitions, the 600 set-based assets took 7.6 s
    through queries, 3.4 s through the copies).
    """

    def __init__(
        self,
        graph: Mapping[str, AssetDefinition],
        reader: StalenessReader,
        at: Evaluation,
        options: StalenessOptions = DEFAULT_OPTIONS,
        *,
        set_based: bool = True,
        mirror_min_keys: int = MIRROR_MIN_KEYS,
        answer_keys: int = 0,
    ) -> None:
        self._graph = graph
        self._mirror_min_keys = 0 if answer_keys >= mirror_min_keys else mirror_min_keys
        self._reader = reader
        self._at = at
        self._options = options
        self._set_based = set_based
        # Thread safety: per-call object (an engine lives for one answer), never shared.
        self._memo: dict[tuple[str, int], tuple[Sequence[str | None], dict[int, PartitionStatus]]]
        self._memo = {}

    def statuses(self, asset_key: str, keys: Sequence[str | None]) -> dict[int, PartitionStatus]:
        memo_key = (asset_key, id(keys))
        known = self._memo.get(memo_key)
        if known is not None and known[0] is keys:
            return known[1]
        asset = self._graph[asset_key]
        if asset.observable_source:
            result: dict[int, PartitionStatus] = {}  # FRESH, every partition
        elif (
            self._set_based
            and self._options.semantics is Semantics.EXTENDED
            and keys
            and None not in keys
            and joins_by_key(self._graph, asset)
        ):
            result = self._set_statuses(asset, cast(Sequence[str], keys))
        else:
            result = self._domain_statuses(asset, keys)
        if result:
            self._note_expired_leases(asset_key, keys, result)
        self._memo[memo_key] = (keys, result)
        return result

    def _note_expired_leases(
        self, asset_key: str, keys: Sequence[str | None], result: dict[int, PartitionStatus]
    ) -> None:
        """Say why a partition not FRESH is no longer in progress: its run lost its lease."""
        for position, status in result.items():
            found = self._reader.expired_lease(asset_key, keys[position], self._at.as_of)
            if found is not None:
                result[position] = lease_expired(status, *found)

    def _domain_statuses(
        self, asset: AssetDefinition, keys: Sequence[str | None]
    ) -> dict[int, PartitionStatus]:
        history = self._reader.history
        prefetch(history, self._graph, asset, keys, self._at, options=self._options)
        answer = statuses(self._graph, asset.key, keys, history, self._at, self._options)
        return {
            position: status
            for position, status in enumerate(answer)
            if status.status is not Status.FRESH
        }

    def _set_statuses(
        self, asset: AssetDefinition, keys: Sequence[str]
    ) -> dict[int, PartitionStatus]:
        reader = self._reader
        # Made per call, not kept by the reader: a reader holding its own bound methods would
        # be a reference cycle, its states freed only by the cyclic collector.
        source: CandidateSource = (
            MirrorCandidates(reader.mirror_view, reader.versions_at, reader.parse_array)
            if len(keys) >= self._mirror_min_keys
            else QueryCandidates(reader.conn, reader.namespace_id)
        )
        transitive: NotFresh | None = self.statuses if self._options.transitive else None
        return set_statuses(self._graph, asset, keys, source, transitive)


def summaries(
    graph: Mapping[str, AssetDefinition],
    reader: StalenessReader,
    at: Evaluation,
    asset_keys: Sequence[str],
    options: StalenessOptions = DEFAULT_OPTIONS,
) -> list[AssetSummary]:
    """The summary of each asset of `asset_keys` over all its partitions, as the statuses of
    every partition would give it, with the rules applied to its stored partitions only: the
    others are MISSING (staleness_summary.py)."""
    engine = StalenessEngine(graph, reader, at, options)
    stored = reader.stored_keys(asset_keys)
    held_by_runs = reader.in_progress_keys(asset_keys, at.as_of)
    found: list[AssetSummary] = []
    for asset_key in asset_keys:
        checkpoint()  # a caller that gave up does not wait for the other assets
        asset = graph[asset_key]
        running = held_by_runs[asset_key]
        if asset.partitions is None:
            not_fresh = engine.statuses(asset_key, [None])
            found.append(summarize(asset, None, [0], not_fresh, [0] if None in running else []))
            continue
        listing = partition_listing(asset.partitions, at)
        located = listing.positions({key for key in stored.get(asset_key, ()) if key})
        keys = [key for _, key in located]
        not_fresh = engine.statuses(asset_key, keys) if keys else {}
        held = [position for position, _ in listing.positions({key for key in running if key})]
        found.append(
            summarize(asset, listing, [position for position, _ in located], not_fresh, held)
        )
    return found


def plan(
    graph: Mapping[str, AssetDefinition],
    reader: StalenessReader,
    at: Evaluation,
    *,
    assets: Sequence[str] | None = None,
    latest_window_only: bool = True,
    limit: int | None = None,
    options: StalenessOptions = DEFAULT_OPTIONS,
) -> list[PlannedRun]:
    """The domain's `plan_runs` over the store. Statuses come in bulk from `StalenessEngine`
    (set-based where the dependencies allow), so the rules look at non-FRESH candidates only;
    their own states (runs in progress) are fetched in one query per asset."""
    engine = StalenessEngine(graph, reader, at, options)
    history = reader.history

    def bulk_statuses(asset_key: str, keys: Sequence[str | None]) -> Mapping[int, PartitionStatus]:
        not_fresh = engine.statuses(asset_key, keys)
        history.prefetch(asset_key, [keys[position] for position in not_fresh])
        return not_fresh

    return plan_runs(
        graph,
        history,
        at,
        assets=assets,
        latest_window_only=latest_window_only,
        limit=limit,
        options=options,
        bulk_statuses=bulk_statuses,
    )
