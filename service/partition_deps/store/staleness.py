"""Staleness and planning over the store: a `History` of index lookups, and a set-based path.

Everything one answer reads comes from one REPEATABLE READ snapshot (`StalenessRepository.
reading`), together with the event position (the namespace's highest event_id) it saw.

Two ways to the same answer (tests/store/test_staleness_sets.py checks they agree):

- `StoreHistory` implements the domain's `History` with lookups on `latest_state` (batched by
  `prefetch`) and on `events_by_partition`; the domain rules then decide partition by
  partition. Right for every mapping, but Python work per partition.
- For an asset whose dependencies all join by equal keys (`staleness_sets.joins_by_key`), one
  query joins `latest_state` of the asset with `latest_state` of each upstream on the key and
  returns only the rows that may not be FRESH, then looks up the upstream's data version as of
  the asset's materialization for those rows only. For small asks the asked keys drive the
  join (index lookups); from `WHOLE_ASSET_MIN_KEYS` on, the asset's materialized rows are
  joined without them and the missing partitions come from one aggregated key list. The
  domain's rules are then applied to the returned rows (`staleness_sets.row_status`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import Evaluation
from partition_deps.domain.dependencies import upstream_partitions
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.staleness import (
    Materialized,
    PartitionStatus,
    PlannedRun,
    StalenessOptions,
    Status,
    latest_window_keys,
    plan_runs,
    statuses,
)
from partition_deps.domain.staleness_sets import UpstreamRow, joins_by_key, row_status
from partition_deps.store.database import transaction

DEFAULT_OPTIONS = StalenessOptions()


@dataclass(frozen=True)
class _State:
    event_id: int | None
    time: datetime | None
    data_version: str | None
    code_version: str | None
    upstream_keys: list[str] | None
    in_progress_run_id: str | None


def _materialized(state: _State | None) -> Materialized | None:
    if state is None or state.event_id is None or state.time is None:
        return None
    return Materialized(
        state.event_id,
        state.time,
        state.data_version,
        state.code_version,
        None if state.upstream_keys is None else frozenset(state.upstream_keys),
    )


# An empty data version is "none given" (proto3 strings cannot be unset): any newer
# materialization then counts as a change, as the domain's rule says for no data version.
_STATE_COLUMNS = (
    "partition_key, materialization_event_id, materialization_time, nullif(data_version, ''),"
    " code_version, upstream_keys, in_progress_run_id"
)


class StoreHistory:
    """The domain's `History` over `latest_state` and `events`, memoised per answer."""

    def __init__(self, conn: psycopg.Connection[Any], namespace_id: int) -> None:
        self._conn = conn
        self._namespace_id = namespace_id
        self._states: dict[tuple[str, str], _State | None] = {}
        self._versions: dict[tuple[str, str | None, int], str | None] = {}

    def prefetch(self, asset_key: str, partition_keys: Iterable[str | None]) -> None:
        """Load the states of many partitions in one query."""
        wanted = [key or "" for key in partition_keys if (asset_key, key or "") not in self._states]
        if not wanted:
            return
        for key in wanted:
            self._states[(asset_key, key)] = None
        rows = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM latest_state"
            " WHERE namespace_id = %s AND asset_key = %s AND partition_key = ANY(%s)",
            (self._namespace_id, asset_key, wanted),
        ).fetchall()
        for row in rows:
            self._states[(asset_key, row[0])] = _State(*row[1:])

    def _state(self, asset_key: str, partition_key: str | None) -> _State | None:
        node = (asset_key, partition_key or "")
        if node not in self._states:
            self.prefetch(asset_key, [partition_key])
        return self._states[node]

    def latest(self, asset_key: str, partition_key: str | None) -> Materialized | None:
        return _materialized(self._state(asset_key, partition_key))

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
            " AND kind = 1 AND event_id <= %s ORDER BY event_id DESC LIMIT 1",
            params,
        ).fetchone()
        version = None if row is None else row[0]
        self._versions[memo_key] = version
        return version

    def in_progress(self, asset_key: str, partition_key: str | None) -> bool:
        state = self._state(asset_key, partition_key)
        return state is not None and state.in_progress_run_id is not None


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


_LARGE_JOIN = 20_000
# From this many asked keys on, join the asset's rows without the asked keys (see below).
WHOLE_ASSET_MIN_KEYS = 5_000
_LARGE_JOIN_WORK_MEM = "64MB"


def _candidate_query(edges: Sequence[_Edge], source: str = "text") -> str:
    """The rows of one asset that may not be FRESH, with what the rules read.

    Two steps: the inner join keeps the rows that could be stale or missing on the latest
    states alone (any newer upstream counts); only for those, the outer step looks up the
    upstream's data version as of the asset's materialization and drops the rows whose
    upstream came back with the same version. A LATERAL inside the big join would be entered
    once per partition even when it reads nothing.

    `source`: "text" or "array", the asked keys (rows carry their position); "asset", every
    materialized partition of the asset (rows carry their key; the caller maps keys to
    positions and finds the missing ones with `materialized_keys`): for large asks, one join of
    the asset's rows with its upstreams' rows, without the asked keys in the join.
    """
    whole = source == "asset"
    key = "a.partition_key" if whole else "k.key"
    inner = [
        "NULL::bigint AS n" if whole else "k.n",
        f"{key} AS key",
        "a.materialization_event_id AS a_id",
        "a.materialization_time AS a_time",
        "nullif(a.data_version, '') AS a_version",
        "a.code_version AS a_code",
        "a.upstream_keys AS a_upstream",
    ]
    outer = [
        "c.key" if whole else "c.n",
        "c.a_id",
        "c.a_time",
        "c.a_version",
        "c.a_code",
        "c.a_upstream",
    ]
    joins = (
        []
        if whole
        else [
            "LEFT JOIN latest_state a ON a.namespace_id = %(ns)s AND a.asset_key = %(asset)s"
            " AND a.partition_key = k.key"
        ]
    )
    own = [
        "a.materialization_event_id IS NULL",
        "(%(code)s::text IS NOT NULL AND a.code_version IS DISTINCT FROM %(code)s::text)",
        "(a.upstream_keys IS NOT NULL AND a.upstream_keys <> %(upstream_keys)s::text[])",
    ]
    inner_conditions = own[1:] if whole else list(own)
    outer_conditions = [
        "c.a_id IS NULL",
        "(%(code)s::text IS NOT NULL AND c.a_code IS DISTINCT FROM %(code)s::text)",
        "(c.a_upstream IS NOT NULL AND c.a_upstream <> %(upstream_keys)s::text[])",
    ]
    laterals = []
    for index, edge in enumerate(edges):
        d, o = f"d{index}", f"o{index}"
        same_key = key if edge.partitioned else "''"
        event_key = "e.partition_key = c.key" if edge.partitioned else "e.partition_key IS NULL"
        inner += [
            f"{d}.materialization_event_id AS {d}_id",
            f"{d}.materialization_time AS {d}_time",
            f"nullif({d}.data_version, '') AS {d}_version",
        ]
        outer += [f"c.{d}_id", f"c.{d}_time", f"c.{d}_version", f"{o}.data_version"]
        joins.append(
            f"LEFT JOIN latest_state {d} ON {d}.namespace_id = %(ns)s"
            f" AND {d}.asset_key = %(up{index})s AND {d}.partition_key = {same_key}"
        )
        laterals.append(
            f"LEFT JOIN LATERAL (SELECT nullif(e.data_version, '') AS data_version FROM events e"
            f" WHERE c.{d}_id > c.a_id AND c.{d}_version IS NOT NULL"
            f" AND e.namespace_id = %(ns)s AND e.asset_key = %(up{index})s AND {event_key}"
            " AND e.kind = 1 AND e.event_id <= c.a_id"
            f" ORDER BY e.event_id DESC LIMIT 1) {o} ON true"
        )
        inner_conditions.append(f"{d}.materialization_event_id IS NULL")
        inner_conditions.append(f"{d}.materialization_event_id > a.materialization_event_id")
        outer_conditions.append(f"c.{d}_id IS NULL")
        outer_conditions.append(
            f"(c.{d}_id > c.a_id AND (c.{d}_version IS NULL"
            f" OR {o}.data_version IS DISTINCT FROM c.{d}_version))"
        )
        if edge.partitioned:
            if edge.not_fresh_keys:
                inner_conditions.append(f"{key} = ANY(%(t{index})s::text[])")
                outer_conditions.append(f"c.key = ANY(%(t{index})s::text[])")
        elif edge.not_fresh_whole:
            inner_conditions.append("true")
            outer_conditions.append("true")
    if whole:
        source_clause = "latest_state a"
        where = (
            "a.namespace_id = %(ns)s AND a.asset_key = %(asset)s"
            " AND a.materialization_event_id IS NOT NULL AND ("
            + " OR ".join(inner_conditions)
            + ")"
        )
    else:
        source_clause = _KEY_SOURCE if source == "text" else _KEY_ARRAY_SOURCE
        where = " OR ".join(inner_conditions)
    return (
        f"WITH c AS MATERIALIZED (SELECT {', '.join(inner)} FROM {source_clause} "
        + " ".join(joins)
        + " WHERE "
        + where
        + f") SELECT {', '.join(outer)} FROM c "
        + " ".join(laterals)
        + " WHERE "
        + " OR ".join(outer_conditions)
        + ("" if whole else " ORDER BY c.n")
    )


@dataclass
class StalenessReader:
    """One consistent view of a namespace's events, for one answer."""

    conn: psycopg.Connection[Any]
    namespace_id: int
    history: StoreHistory = field(init=False)

    def __post_init__(self) -> None:
        self.history = StoreHistory(self.conn, self.namespace_id)

    def event_position(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(max(event_id), 0) FROM events WHERE namespace_id = %s",
            (self.namespace_id,),
        ).fetchone()
        return int(row[0]) if row else 0

    def candidate_rows(
        self,
        asset: AssetDefinition,
        edges: Sequence[_Edge],
        keys: Sequence[str],
        *,
        whole_asset: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Rows that may not be FRESH: by position in `keys` (first column), or with
        `whole_asset` every materialized partition's row by key (the asked keys unused)."""
        joined = "" if whole_asset else KEY_SEPARATOR.join(keys)
        separable = joined.count(KEY_SEPARATOR) == len(keys) - 1
        source = "asset" if whole_asset else "text" if separable else "array"
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
        if len(keys) > _LARGE_JOIN:
            # Hash joins of ~100,000 rows per side: in memory, not in batches spilled to disk.
            self.conn.execute("SELECT set_config('work_mem', %s, true)", (_LARGE_JOIN_WORK_MEM,))
        return self.conn.execute(_candidate_query(edges, source), params).fetchall()

    def materialized_keys(self, asset_key: str) -> set[str]:
        """Every partition key of the asset with a materialization (one aggregated text)."""
        row = self.conn.execute(
            "SELECT string_agg(partition_key, %(sep)s)"
            " FILTER (WHERE strpos(partition_key, %(sep)s) = 0),"
            " array_agg(partition_key) FILTER (WHERE strpos(partition_key, %(sep)s) > 0)"
            " FROM latest_state WHERE namespace_id = %(ns)s AND asset_key = %(asset)s"
            " AND materialization_event_id IS NOT NULL",
            {"sep": KEY_SEPARATOR, "ns": self.namespace_id, "asset": asset_key},
        ).fetchone()
        keys: set[str] = set()
        if row is not None:
            joined, odd = row
            if joined:
                keys.update(joined.split(KEY_SEPARATOR))
            if odd:
                keys.update(odd)
        return keys


class StalenessRepository:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @contextmanager
    def reading(self, namespace_id: int) -> Iterator[StalenessReader]:
        with transaction(self._pool, read_only_snapshot=True) as conn:
            yield StalenessReader(conn, namespace_id)


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


class StalenessEngine:
    """Statuses of asset partitions: set-based where the dependencies allow, else the domain.

    `statuses(asset, keys)` returns the partitions that are not FRESH, by position in `keys`;
    every other position is FRESH. `set_based=False` forces the domain rules (for tests).
    From `whole_asset_min_keys` asked keys on, the set-based query joins every materialized row
    of the asset with its upstreams' rows and leaves the asked keys out of the join (they only
    locate rows and find the missing ones, in Python): the cheaper plan for large asks.
    """

    def __init__(
        self,
        graph: Mapping[str, AssetDefinition],
        reader: StalenessReader,
        at: Evaluation,
        options: StalenessOptions = DEFAULT_OPTIONS,
        *,
        set_based: bool = True,
        whole_asset_min_keys: int = WHOLE_ASSET_MIN_KEYS,
    ) -> None:
        self._graph = graph
        self._whole_asset_min_keys = whole_asset_min_keys
        self._reader = reader
        self._at = at
        self._options = options
        self._set_based = set_based
        self._memo: dict[tuple[str, int], tuple[Sequence[str | None], dict[int, PartitionStatus]]]
        self._memo = {}

    def statuses(self, asset_key: str, keys: Sequence[str | None]) -> dict[int, PartitionStatus]:
        memo_key = (asset_key, id(keys))
        known = self._memo.get(memo_key)
        if known is not None and known[0] is keys:
            return known[1]
        asset = self._graph[asset_key]
        if (
            self._set_based
            and keys
            and all(key is not None for key in keys)
            and joins_by_key(self._graph, asset)
        ):
            result = self._set_statuses(asset, [key for key in keys if key is not None])
        else:
            result = self._domain_statuses(asset, keys)
        self._memo[memo_key] = (keys, result)
        return result

    def _domain_statuses(
        self, asset: AssetDefinition, keys: Sequence[str | None]
    ) -> dict[int, PartitionStatus]:
        history = self._reader.history
        prefetch_inputs(history, self._graph, asset, keys, self._at)
        answer = statuses(self._graph, asset.key, keys, history, self._at, self._options)
        return {
            position: status
            for position, status in enumerate(answer)
            if status.status is not Status.FRESH
        }

    def _set_statuses(self, asset: AssetDefinition, keys: list[str]) -> dict[int, PartitionStatus]:
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
        whole_asset = len(keys) >= self._whole_asset_min_keys
        rows = self._reader.candidate_rows(asset, edges, keys, whole_asset=whole_asset)
        located: list[tuple[int, tuple[Any, ...]]]
        if whole_asset:
            materialized = self._reader.materialized_keys(asset.key)
            for position, key in enumerate(keys):
                if key not in materialized:
                    result[position] = row_status(asset, key, None, ())
            position_of = {key: position for position, key in enumerate(keys)}
            located = [(position_of[row[0]], row) for row in rows if row[0] in position_of]
        else:
            located = [(row[0] - 1, row) for row in rows]
        for position, row in located:
            key = keys[position]
            latest = _materialized(_State(row[1], row[2], row[3], row[4], row[5], None))
            upstream_rows: list[tuple[Dependency, UpstreamRow]] = []
            for index, edge in enumerate(edges):
                base = 6 + 4 * index
                upstream_latest = (
                    None
                    if row[base] is None
                    else Materialized(row[base], row[base + 1], row[base + 2])
                )
                upstream_rows.append(
                    (
                        edge.dependency,
                        UpstreamRow(
                            key if edge.partitioned else None, upstream_latest, row[base + 3]
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
                asset, key, latest, upstream_rows, upstream_statuses, dependency_keys
            )
            if status.status is not Status.FRESH:
                result[position] = status
        return result


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
    """The domain's `plan_runs` over the store, with the partitions it reads prefetched."""
    history = reader.history
    wanted = set(graph if assets is None else assets)
    for asset_key in sorted(wanted):
        asset = graph[asset_key]
        if asset.partitions is None:
            candidates: list[str | None] = [None]
        elif latest_window_only:
            candidates = latest_window_keys(asset, at)
        else:
            candidates = list(all_partitions(asset.partitions, at))
        prefetch_inputs(history, graph, asset, candidates, at)
    return plan_runs(
        graph,
        history,
        at,
        assets=assets,
        latest_window_only=latest_window_only,
        limit=limit,
        options=options,
    )
