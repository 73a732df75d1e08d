"""Staleness and planning over the store: a `History` of index lookups, and a set-based path.

Everything one answer reads comes from one REPEATABLE READ snapshot (`StalenessRepository.
reading`), together with the event position (the namespace's highest event_id) it saw.

Two ways to the same answer (tests/store/test_staleness_sets.py checks they agree):

- `StoreHistory` implements the domain's `History` with lookups on `latest_state` (batched by
  `prefetch`) and on `events_by_partition`; the domain rules then decide partition by
  partition. Right for every mapping, but Python work per partition.
- For an asset whose dependencies all join by equal keys (`staleness_sets.joins_by_key`), the
  rows that may not be FRESH are found in bulk, then the upstream's data version as of the
  asset's materialization is looked up for those rows only, and the domain's rules are applied
  to them (`staleness_sets.row_status`). Small asks: one query joins `latest_state` of the
  asked keys with each upstream's on the key (index lookups). From `MIRROR_MIN_KEYS` asked keys
  on: a loop over the server's in-memory copies of those latest states (`state_mirror.py`),
  brought up to the answer's snapshot first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

import psycopg
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
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
)
from partition_deps.domain.staleness_sets import (
    NEVER_MATERIALIZED,
    UpstreamRow,
    joins_by_key,
    row_status,
)
from partition_deps.domain.staleness_summary import (
    AssetSummary,
    partition_listing,
    summarize,
)
from partition_deps.domain.work import checkpoint
from partition_deps.store.database import transaction
from partition_deps.store.events import LEASE_EXPIRY
from partition_deps.store.state_mirror import (
    MirrorView,
    Snapshot,
    StateMirror,
    StateRow,
    VersionKey,
    array_text,
)

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


def _materialized(
    columns: Sequence[Any], input_event_ids: list[int | None] | None
) -> Materialized | None:
    """The latest materialization of a row from its columns (event id, time, data version,
    code version, upstream keys); `input_event_ids`, aligned with the upstream keys, is None
    on rows stored before migration 0005."""
    event_id, time, data_version, code_version, upstream_keys = columns
    if event_id is None or time is None:
        return None
    return Materialized(
        event_id,
        time,
        data_version,
        code_version,
        None if upstream_keys is None else frozenset(upstream_keys),
        None
        if upstream_keys is None or input_event_ids is None
        else dict(zip(upstream_keys, input_event_ids, strict=True)),
    )


def _state_of(row: Sequence[Any]) -> _State:
    """The `_State` of a row of `_STATE_COLUMNS` (its first column, the partition key, aside)."""
    run_id, observation_id, observation_time, observed_version, input_event_ids, lease_end = row[6:]
    observed = (
        None
        if observation_id is None or observation_time is None
        else Observed(observation_id, observation_time, observed_version)
    )
    latest = _materialized(row[1:6], input_event_ids)
    return _State(latest, observed, run_id, lease_end)


# An empty data version is "none given" (proto3 strings cannot be unset): any newer
# materialization then counts as a change, as the domain's rule says for no data version.
_STATE_COLUMNS = (
    "s.partition_key, s.materialization_event_id, s.materialization_time,"
    " nullif(s.data_version, ''), s.code_version, s.upstream_keys, s.in_progress_run_id,"
    " s.observation_event_id, s.observation_time, nullif(s.observed_data_version, ''),"
    f" s.input_event_ids, {LEASE_EXPIRY}"
)
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
        keys_sql, keys_params = _text_array(wanted)
        rows = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM latest_state s {_HOLDING_RUN}"
            " WHERE s.namespace_id = %s AND s.asset_key = %s"
            f" AND s.partition_key = ANY({keys_sql})",
            (self._namespace_id, asset_key, *keys_params),
        ).fetchall()
        for row in rows:
            self._states[(asset_key, row[0])] = _state_of(row)

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


@dataclass(frozen=True)
class _Edge:
    dependency: Dependency
    partitioned: bool
    # Transitive walk: upstream keys that are not FRESH (partitioned upstream), or whether the
    # whole upstream is not FRESH (unpartitioned upstream).
    not_fresh_keys: Sequence[str] = ()
    not_fresh_whole: bool = False


# The asked keys travel as one text joined by a separator: Postgres splits 100,000 keys in a
# few ms, where parsing a text[] literal of the same keys takes a few hundred. Keys that
# contain the separator (possible for dynamic keys only) travel as an array instead.
KEY_SEPARATOR = "\x1f"
_KEY_SOURCE = "unnest(string_to_array(%(keys)s, %(separator)s)) WITH ORDINALITY AS k(key, n)"
_KEY_ARRAY_SOURCE = "unnest(%(keys)s::text[]) WITH ORDINALITY AS k(key, n)"


def _text_array(keys: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """A text[] of `keys` in SQL, and its parameters: joined by `KEY_SEPARATOR` where that
    is possible (a single key is sent as it is: an empty text splits into no key at all)."""
    joined = KEY_SEPARATOR.join(keys)
    if len(keys) > 1 and joined.count(KEY_SEPARATOR) == len(keys) - 1:
        return "string_to_array(%s, %s)", (joined, KEY_SEPARATOR)
    return "%s::text[]", (list(keys),)


# From this many asked keys on, the answer reads the in-memory copy of latest states
# (state_mirror.py) rather than joining in Postgres.
MIRROR_MIN_KEYS = 5_000
# Rows of latest state a server keeps in memory by default: about 350 bytes each (175 MB).
DEFAULT_MIRROR_ROWS = 500_000


def _candidate_query(edges: Sequence[_Edge], source: str = "text") -> str:
    """The rows of one asset that may not be FRESH, with what the rules read, by position in
    the asked keys (`source`: "text", the keys joined by `KEY_SEPARATOR`, or "array").

    Two steps: the inner join keeps the rows that could be stale or missing on the latest
    states alone (any newer upstream counts); only for those, the outer step looks up the
    upstream's data version as of the asset's materialization and drops the rows whose
    upstream came back with the same version. A LATERAL inside the big join would be entered
    once per partition even when it reads nothing.
    """
    inner = [
        "k.n",
        "k.key AS key",
        "a.materialization_event_id AS a_id",
        "a.materialization_time AS a_time",
        "nullif(a.data_version, '') AS a_version",
        "a.code_version AS a_code",
        "a.upstream_keys AS a_upstream",
        "a.observation_event_id IS NOT NULL AS a_observed",
    ]
    outer = ["c.n", "c.a_id", "c.a_time", "c.a_version", "c.a_code", "c.a_upstream", "c.a_observed"]
    joins = [
        "LEFT JOIN latest_state a ON a.namespace_id = %(ns)s AND a.asset_key = %(asset)s"
        " AND a.partition_key = k.key"
    ]
    inner_conditions = [
        "a.materialization_event_id IS NULL",
        "(%(code)s::text IS NOT NULL AND a.code_version IS DISTINCT FROM %(code)s::text)",
        "(a.upstream_keys IS NOT NULL AND a.upstream_keys <> %(upstream_keys)s::text[])",
    ]
    outer_conditions = [
        "c.a_id IS NULL",
        "(%(code)s::text IS NOT NULL AND c.a_code IS DISTINCT FROM %(code)s::text)",
        "(c.a_upstream IS NOT NULL AND c.a_upstream <> %(upstream_keys)s::text[])",
    ]
    laterals = []
    for index, edge in enumerate(edges):
        d, o = f"d{index}", f"o{index}"
        same_key = "k.key" if edge.partitioned else "''"
        event_key = "e.partition_key = c.key" if edge.partitioned else "e.partition_key IS NULL"
        # The upstream's latest record: its materialization or a newer observation.
        observed = (
            f"({d}.observation_event_id IS NOT NULL AND ({d}.materialization_event_id IS NULL"
            f" OR {d}.observation_event_id > {d}.materialization_event_id))"
        )
        record_id = f"greatest({d}.materialization_event_id, {d}.observation_event_id)"
        inner += [
            f"{record_id} AS {d}_id",
            f"CASE WHEN {observed} THEN {d}.observation_time"
            f" ELSE {d}.materialization_time END AS {d}_time",
            f"nullif(CASE WHEN {observed} THEN {d}.observed_data_version"
            f" ELSE {d}.data_version END, '') AS {d}_version",
            f"{observed} AS {d}_observed",
        ]
        outer += [
            f"c.{d}_id", f"c.{d}_time", f"c.{d}_version", f"c.{d}_observed", f"{o}.data_version"
        ]  # fmt: skip
        joins.append(
            f"LEFT JOIN latest_state {d} ON {d}.namespace_id = %(ns)s"
            f" AND {d}.asset_key = %(up{index})s AND {d}.partition_key = {same_key}"
        )
        laterals.append(
            f"LEFT JOIN LATERAL (SELECT nullif(e.data_version, '') AS data_version FROM events e"
            f" WHERE c.{d}_id > c.a_id AND c.{d}_version IS NOT NULL"
            f" AND e.namespace_id = %(ns)s AND e.asset_key = %(up{index})s AND {event_key}"
            " AND e.kind IN (1, 2) AND e.event_id <= c.a_id"
            f" ORDER BY e.event_id DESC LIMIT 1) {o} ON true"
        )
        inner_conditions.append(f"{record_id} IS NULL")
        inner_conditions.append(f"{record_id} > a.materialization_event_id")
        outer_conditions.append(f"c.{d}_id IS NULL")
        outer_conditions.append(
            f"(c.{d}_id > c.a_id AND (c.{d}_version IS NULL"
            f" OR {o}.data_version IS DISTINCT FROM c.{d}_version))"
        )
        if edge.partitioned:
            if edge.not_fresh_keys:
                inner_conditions.append(f"k.key = ANY(%(t{index})s::text[])")
                outer_conditions.append(f"c.key = ANY(%(t{index})s::text[])")
        elif edge.not_fresh_whole:
            inner_conditions.append("true")
            outer_conditions.append("true")
    source_clause = _KEY_SOURCE if source == "text" else _KEY_ARRAY_SOURCE
    return (
        f"WITH c AS MATERIALIZED (SELECT {', '.join(inner)} FROM {source_clause} "
        + " ".join(joins)
        + " WHERE "
        + " OR ".join(inner_conditions)
        + f") SELECT {', '.join(outer)} FROM c "
        + " ".join(laterals)
        + " WHERE "
        + " OR ".join(outer_conditions)
        + " ORDER BY c.n"
    )


# The data version an upstream partition had as of each given event id (the downstream's
# materialization), from materializations and observations, for many partitions at once.
_VERSIONS_AT = (
    "SELECT (SELECT nullif(e.data_version, '') FROM events e WHERE e.namespace_id = %(ns)s"
    " AND e.asset_key = %(asset)s AND {partition} AND e.kind IN (1, 2) AND e.event_id <= k.at"
    " ORDER BY e.event_id DESC LIMIT 1)"
    " FROM unnest(%(keys)s::text[], %(ats)s::bigint[]) WITH ORDINALITY AS k(key, at, n)"
    " ORDER BY k.n"
)


def versions_at(
    conn: psycopg.Connection[Any],
    namespace_id: int,
    asset_key: str,
    partition_keys: Sequence[str | None],
    event_ids: Sequence[int],
) -> list[str | None]:
    """The data version of each partition of the asset (all None: unpartitioned, or all
    keys) as of the paired event id, in one query."""
    if not partition_keys:
        return []
    partitioned = partition_keys[0] is not None
    query = _VERSIONS_AT.format(
        partition="e.partition_key = k.key" if partitioned else "e.partition_key IS NULL"
    )
    rows = conn.execute(
        query,
        {
            "ns": namespace_id,
            "asset": asset_key,
            "keys": list(partition_keys),
            "ats": list(event_ids),
        },
    ).fetchall()
    return [row[0] for row in rows]


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

    def candidate_rows(
        self, asset: AssetDefinition, edges: Sequence[_Edge], keys: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """Rows that may not be FRESH, by position in `keys` (first column, from 1)."""
        joined = KEY_SEPARATOR.join(keys)
        separable = joined.count(KEY_SEPARATOR) == len(keys) - 1
        params: dict[str, Any] = {
            "ns": self.namespace_id,
            "asset": asset.key,
            "keys": joined if separable else list(keys),
            "separator": KEY_SEPARATOR,
            "code": asset.code_version,
            "upstream_keys": sorted({edge.dependency.upstream_key for edge in edges}),
        }
        for index, edge in enumerate(edges):
            params[f"up{index}"] = edge.dependency.upstream_key
            if edge.partitioned and edge.not_fresh_keys:
                params[f"t{index}"] = list(edge.not_fresh_keys)
        query = _candidate_query(edges, "text" if separable else "array")
        return self.conn.execute(query, params).fetchall()

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


def prefetch_inputs(
    history: StoreHistory,
    graph: Mapping[str, AssetDefinition],
    asset: AssetDefinition,
    keys: Sequence[str | None],
    at: Evaluation,
) -> None:
    """Load, in one query per asset, the partitions the rules will read for `keys`."""
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


def prefetch_versions(
    history: StoreHistory,
    graph: Mapping[str, AssetDefinition],
    asset: AssetDefinition,
    keys: Sequence[str | None],
    at: Evaluation,
    *,
    options: StalenessOptions,
) -> None:
    """Look up, in one query per upstream asset, the data versions the rules will ask for
    `keys` (after `prefetch_inputs`): a daily asset reading an hourly one asks one per hour
    of every day whose hours were materialized after it, one round trip each otherwise.

    The pairs asked are those of `staleness._changed_since` (EXTENDED: a newer upstream record
    with a data version, as of this partition's materialization) and of Dagster's
    `_updated_since_input` (as of the input event pointer). Anything missed here is still
    looked up on its own when the rules ask, so this changes no answer.
    """
    asks: dict[str, list[tuple[str | None, int]]] = {}
    dagster = options.semantics is Semantics.DAGSTER
    for key in keys:
        latest = history.latest(asset.key, key)
        if latest is None:
            continue
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
                if (
                    record is not None
                    and record.event_id > since
                    and (dagster or record.data_version is not None)
                ):
                    asks.setdefault(upstream_key, []).append((upstream_partition, since))
    for upstream_key, pairs in asks.items():
        history.prefetch_versions(upstream_key, pairs)


class StalenessEngine:
    """Statuses of asset partitions: set-based where the dependencies allow (EXTENDED rules
    only), else the domain.

    `statuses(asset, keys)` returns the partitions that are not FRESH, by position in `keys`;
    every other position is FRESH. `set_based=False` forces the domain rules (for tests).
    From `mirror_min_keys` asked keys on, the set-based path compares the in-memory copies of
    the asset's and its upstreams' latest states (`_mirrored_candidates`) instead of
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
        prefetch_inputs(history, self._graph, asset, keys, self._at)
        prefetch_versions(history, self._graph, asset, keys, self._at, options=self._options)
        answer = statuses(self._graph, asset.key, keys, history, self._at, self._options)
        return {
            position: status
            for position, status in enumerate(answer)
            if status.status is not Status.FRESH
        }

    def _set_statuses(
        self, asset: AssetDefinition, keys: Sequence[str]
    ) -> dict[int, PartitionStatus]:
        transitive = self._options.transitive
        edges: list[_Edge] = []
        upstream_not_fresh: dict[str, dict[int, PartitionStatus]] = {}
        for dependency in asset.dependencies:
            upstream = self._graph[dependency.upstream_key]
            partitioned = upstream.partitions is not None
            if not transitive:
                edges.append(_Edge(dependency, partitioned))
                continue
            if partitioned:
                not_fresh = self.statuses(upstream.key, keys)  # same definition: same keys
                upstream_not_fresh[upstream.key] = not_fresh
                edges.append(
                    _Edge(dependency, True, not_fresh_keys=[keys[n] for n in sorted(not_fresh)])
                )
            else:
                upstream_status = self.statuses(upstream.key, [None])
                upstream_not_fresh[upstream.key] = upstream_status
                edges.append(_Edge(dependency, False, not_fresh_whole=bool(upstream_status)))
        dependency_keys = frozenset(d.upstream_key for d in asset.dependencies)
        result: dict[int, PartitionStatus] = {}
        located: list[tuple[int, Sequence[Any]]]
        if len(keys) >= self._mirror_min_keys:
            located = self._mirrored_candidates(asset, edges, keys)
        else:
            rows = self._reader.candidate_rows(asset, edges, keys)
            located = [(row[0] - 1, row) for row in rows]
        for position, row in located:
            key = keys[position]
            if (row[1] is None or row[2] is None) and not row[6]:
                # Never materialized nor observed: MISSING whatever its upstream says (the
                # most common row of a large asset, so it skips row_status's work).
                result[position] = PartitionStatus(
                    asset.key, key, Status.MISSING, NEVER_MATERIALIZED
                )
                continue
            latest = _materialized(row[1:6], None)
            upstream_rows: list[tuple[Dependency, UpstreamRow]] = []
            for index, edge in enumerate(edges):
                base = 7 + 5 * index
                upstream_latest: Materialized | Observed | None = None
                if row[base] is not None:
                    record = Observed if row[base + 3] else Materialized
                    upstream_latest = record(row[base], row[base + 1], row[base + 2])
                upstream_rows.append(
                    (
                        edge.dependency,
                        UpstreamRow(
                            key if edge.partitioned else None, upstream_latest, row[base + 4]
                        ),
                    )
                )
            upstream_statuses: dict[str, PartitionStatus] | None = None
            if transitive:
                upstream_statuses = {}
                for edge in edges:
                    upstream_key = edge.dependency.upstream_key
                    found = upstream_not_fresh[upstream_key].get(
                        position if edge.partitioned else 0
                    )
                    if found is not None:
                        upstream_statuses[upstream_key] = found
            status = row_status(
                asset, key, latest, upstream_rows, upstream_statuses, dependency_keys, row[6]
            )
            if status.status is not Status.FRESH:
                result[position] = status
        return result

    def _mirrored_candidates(
        self, asset: AssetDefinition, edges: Sequence[_Edge], keys: Sequence[str]
    ) -> list[tuple[int, Sequence[Any]]]:
        """What `candidate_rows` returns, from the in-memory copies: by position in `keys`,
        the rows that may not be FRESH, each laid out as that query's columns."""
        reader = self._reader
        upstream_keys = sorted({edge.dependency.upstream_key for edge in edges})
        view = reader.mirror_view([asset.key, *upstream_keys])
        own = view.assets[asset.key]
        code = asset.code_version
        recorded = array_text(upstream_keys)
        # Per edge: the upstream's rows and whether it is partitioned.
        sides = [(view.assets[edge.dependency.upstream_key], edge.partitioned) for edge in edges]
        # Keys whose row may not be FRESH, from sets the view keeps up to date; then one pass
        # over the asked keys adds the never materialized ones.
        special: set[str] = set()
        if code is not None:
            special.update(view.keys_where(("code", code), asset.key, None, _CodeDiffers(code)))
        special.update(
            view.keys_where(
                ("dependencies", recorded), asset.key, None, _DependenciesDiffer(recorded)
            )
        )
        for edge in edges:
            upstream_key = edge.dependency.upstream_key
            if edge.partitioned:
                special.update(
                    view.keys_where("upstream newer", asset.key, upstream_key, _upstream_newer)
                )
                special.update(edge.not_fresh_keys)
                continue
            whole = view.assets[upstream_key].get("")
            if whole is None or edge.not_fresh_whole:
                special.update(own)
            else:
                special.update(
                    view.keys_where(("older than", whole[5]), asset.key, None, _Older(whole[5]))
                )
        # Rows without a materialization are observed sources: FRESH, never suspects.
        suspects: list[tuple[int, str, StateRow | None]] = [
            (position, key, own.get(key))
            for position, key in enumerate(keys)
            if key in special or key not in own
        ]
        # The upstream's data version as of this partition's materialization matters only
        # where a newer upstream materialization carries a data version: one query per edge.
        versions_before: list[dict[int, str | None]] = []
        for edge, (upstream_rows, partitioned) in zip(edges, sides, strict=True):
            upstream_key = edge.dependency.upstream_key
            wanted: list[tuple[int, VersionKey]] = []
            for position, key, row in suspects:
                if (
                    row is None
                    or row[0] is None
                    or (upstream := upstream_rows.get(key if partitioned else "")) is None
                    or upstream[5] <= row[0]
                    or upstream[7] is None
                ):
                    continue
                wanted.append((position, (upstream_key, key if partitioned else None, row[0])))
            remembered = view.known_versions(version_key for _, version_key in wanted)
            known: dict[int, str | None] = {}
            asks: list[tuple[int, VersionKey]] = []
            for position, version_key in wanted:
                if version_key in remembered:
                    known[position] = remembered[version_key]
                else:
                    asks.append((position, version_key))
            found = reader.versions_at(
                upstream_key,
                [version_key[1] for _, version_key in asks],
                [version_key[2] for _, version_key in asks],
            )
            looked_up: dict[VersionKey, str | None] = {}
            for (position, version_key), version in zip(asks, found, strict=True):
                known[position] = looked_up[version_key] = version
            view.remember_versions(looked_up)
            versions_before.append(known)
        located: list[tuple[int, Sequence[Any]]] = []
        for position, key, row in suspects:
            if row is None:  # never stored: MISSING, whatever the other columns would say
                located.append((position, _NEVER_STORED))
                continue
            upstream_text = row[4]
            columns: list[Any] = [
                key,
                *row[:4],
                None
                if upstream_text is None
                else upstream_keys
                if upstream_text == recorded
                else reader.parse_array(upstream_text),
                row[0] is None,  # a row without a materialization was observed
            ]
            for (upstream_rows, partitioned), before in zip(sides, versions_before, strict=True):
                upstream = upstream_rows.get(key if partitioned else "")
                columns += (
                    [None] * 5 if upstream is None else [*upstream[5:9], before.get(position)]
                )
            located.append((position, columns))
        return located


# The candidate row of a partition with no stored state: no materialization (columns 1-2), not
# observed (column 6); `_set_statuses` reads nothing else of it.
_NEVER_STORED: tuple[Any, ...] = (None, None, None, None, None, None, False)


# Row tests for `MirrorView.keys_where`: classes rather than closures, so that each carries
# its parameter visibly (the view re-applies a test to changed rows in later versions). Rows
# without a materialization (observed sources) pass none: they are FRESH.
def _upstream_newer(row: StateRow, upstream: StateRow | None) -> bool:
    return row[0] is not None and (upstream is None or upstream[5] > row[0])


@dataclass(frozen=True)
class _CodeDiffers:
    code_version: str

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[0] is not None and row[3] != self.code_version


@dataclass(frozen=True)
class _DependenciesDiffer:
    recorded: str

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[4] is not None and row[4] != self.recorded


@dataclass(frozen=True)
class _Older:
    event_id: int

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[0] is not None and row[0] < self.event_id


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
