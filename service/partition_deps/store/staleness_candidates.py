"""The two candidate sources of set-based staleness (`staleness_sets.CandidateSource`).

Both find, among the asked partitions of an asset whose dependencies join by equal keys, those
that may not be FRESH on the latest states alone, with what the rules read; the domain
(`staleness_sets.set_statuses`) then decides each one. Where an upstream record is newer and
carries a data version (`staleness.version_needed`), they also look up the upstream's data
version as of the candidate's materialization.

- `QueryCandidates`: one query driven by the asked keys, joining `latest_state` of the asset
  with each upstream's on the key (index lookups). For small asks.
- `MirrorCandidates`: a pass over the server's in-memory copies of those latest states
  (`state_mirror.py`), brought up to the answer's snapshot first. For large asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.staleness import Materialized, Observed, version_needed
from partition_deps.domain.staleness_sets import Candidate, CandidateEdge, UpstreamRow
from partition_deps.store.state_mirror import (
    CODE_VERSION,
    DATA_VERSION,
    MATERIALIZATION_ID,
    MATERIALIZATION_TIME,
    RECORD_ID,
    RECORD_OBSERVED,
    RECORD_TIME,
    RECORD_VERSION,
    UPSTREAM_KEYS,
    MirrorView,
    StateRow,
    VersionKey,
    array_text,
)

# The asked keys travel as one text joined by a separator: Postgres splits 100,000 keys in a
# few ms, where parsing a text[] literal of the same keys takes a few hundred. Keys that
# contain the separator (possible for dynamic keys only) travel as an array instead.
KEY_SEPARATOR = "\x1f"


def joined_keys(keys: Sequence[str]) -> str | None:
    """`keys` joined by `KEY_SEPARATOR`, or None where the text would not split back into them:
    a key holding the separator, or one empty key (an empty text splits into no key at all).

    A single key travels joined too, so that asks of one key (PlanRuns asks one per asset)
    share their prepared statement with larger asks. Postgres plans a prepared statement afresh
    on every call until a generic plan looks no costlier than the calls' own plans so far, and
    larger asks tip it there; a statement of single keys alone was planned on every call. On
    one connection that had answered a 1,441-key ask, PlanRuns over 1,000 assets took 0.82-0.85
    s with single keys as a text[], 0.61-0.65 s joined.
    """
    joined = KEY_SEPARATOR.join(keys)
    if joined and joined.count(KEY_SEPARATOR) == len(keys) - 1:
        return joined
    return None


def text_array(keys: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """A text[] of `keys` in SQL, and its parameters: joined (`joined_keys`) where possible."""
    joined = joined_keys(keys)
    if joined is not None:
        return "string_to_array(%s, %s)", (joined, KEY_SEPARATOR)
    return "%s::text[]", (list(keys),)


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


def _materialized(
    event_id: int | None,
    time: datetime | None,
    data_version: str | None,
    code_version: str | None,
    upstream_keys: Sequence[str] | None,
) -> Materialized | None:
    """A candidate's latest materialization (input event ids are not read: only Dagster's
    rules, which never take this path, use them)."""
    if event_id is None or time is None:
        return None
    return Materialized(
        event_id,
        time,
        data_version,
        code_version,
        None if upstream_keys is None else frozenset(upstream_keys),
    )


def _record(
    event_id: int | None, time: datetime | None, data_version: str | None, observed: bool | None
) -> Materialized | Observed | None:
    """An upstream partition's latest record (None: it has none)."""
    if event_id is None or time is None:
        return None
    return (Observed if observed else Materialized)(event_id, time, data_version)


# ----- the query ---------------------------------------------------------------------------


# The query's columns for the asked partition, by name, in the order `QueryCandidates` unpacks
# them (`k`: the asked keys, `a`: the asset's latest_state row).
_OWN_COLUMNS = {
    "position": "k.n",  # in the asked keys, from 1
    "materialization_id": "a.materialization_event_id",
    "materialization_time": "a.materialization_time",
    "data_version": "nullif(a.data_version, '')",
    "code_version": "a.code_version",
    "upstream_keys": "a.upstream_keys",
    "observed": "a.observation_event_id IS NOT NULL",
}


def _upstream_columns(d: str) -> dict[str, str]:
    """The query's first columns for one edge, by name, in the order `QueryCandidates` unpacks
    them, read from the upstream's latest_state row `d`: its materialization, or a newer
    observation (the query adds the data version as of the candidate's materialization)."""
    observed = (
        f"({d}.observation_event_id IS NOT NULL AND ({d}.materialization_event_id IS NULL"
        f" OR {d}.observation_event_id > {d}.materialization_event_id))"
    )
    return {
        "record_id": f"greatest({d}.materialization_event_id, {d}.observation_event_id)",
        "record_time": f"CASE WHEN {observed} THEN {d}.observation_time"
        f" ELSE {d}.materialization_time END",
        "record_version": f"nullif(CASE WHEN {observed} THEN {d}.observed_data_version"
        f" ELSE {d}.data_version END, '')",
        "record_observed": observed,
    }


_KEY_SOURCES = {
    "text": "unnest(string_to_array(%(keys)s, %(separator)s)) WITH ORDINALITY AS k(key, n)",
    "array": "unnest(%(keys)s::text[]) WITH ORDINALITY AS k(key, n)",
}
# Per edge: the columns of `_upstream_columns`, then the data version as of the candidate's
# materialization.
_EDGE_WIDTH = len(_upstream_columns("d")) + 1


def _candidate_query(edges: Sequence[CandidateEdge], source: str) -> str:
    """The candidates among the asked keys (`source`: "text", joined by `KEY_SEPARATOR`, or
    "array"): per row `_OWN_COLUMNS`, then `_EDGE_WIDTH` columns per edge.

    Two steps: the first keeps the rows that may not be FRESH on the latest states
    (`CandidateSource`'s test); only for those, the second looks up each upstream's data
    version as of the asset's materialization where `version_needed`. A LATERAL inside the big
    join would be entered once per partition even when it reads nothing.
    """
    inner = ["k.key AS key"] + [f"{sql} AS {name}" for name, sql in _OWN_COLUMNS.items()]
    outer = [f"c.{name}" for name in _OWN_COLUMNS]
    joins = [
        "LEFT JOIN latest_state a ON a.namespace_id = %(ns)s AND a.asset_key = %(asset)s"
        " AND a.partition_key = k.key"
    ]
    conditions = [
        "a.materialization_event_id IS NULL",
        "(%(code)s::text IS NOT NULL AND a.code_version IS DISTINCT FROM %(code)s::text)",
        "(a.upstream_keys IS NOT NULL AND a.upstream_keys <> %(upstream_keys)s::text[])",
    ]
    laterals = []
    for index, edge in enumerate(edges):
        d, o = f"d{index}", f"o{index}"
        upstream_columns = _upstream_columns(d)
        inner += [f"{sql} AS {d}_{name}" for name, sql in upstream_columns.items()]
        outer += [f"c.{d}_{name}" for name in upstream_columns] + [f"{o}.data_version"]
        same_key = "k.key" if edge.partitioned else "''"
        joins.append(
            f"LEFT JOIN latest_state {d} ON {d}.namespace_id = %(ns)s"
            f" AND {d}.asset_key = %(up{index})s AND {d}.partition_key = {same_key}"
        )
        event_key = "e.partition_key = c.key" if edge.partitioned else "e.partition_key IS NULL"
        laterals.append(
            f"LEFT JOIN LATERAL (SELECT nullif(e.data_version, '') AS data_version FROM events e"
            f" WHERE c.{d}_record_id > c.materialization_id AND c.{d}_record_version IS NOT NULL"
            f" AND e.namespace_id = %(ns)s AND e.asset_key = %(up{index})s AND {event_key}"
            " AND e.kind IN (1, 2) AND e.event_id <= c.materialization_id"
            f" ORDER BY e.event_id DESC LIMIT 1) {o} ON true"
        )
        record_id = upstream_columns["record_id"]
        conditions.append(f"{record_id} IS NULL")
        conditions.append(f"{record_id} > a.materialization_event_id")
        if edge.partitioned and edge.not_fresh_keys:
            conditions.append(f"k.key = ANY(%(t{index})s::text[])")
        elif edge.not_fresh_whole:
            conditions.append("true")
    return (
        f"WITH c AS MATERIALIZED (SELECT {', '.join(inner)} FROM {_KEY_SOURCES[source]} "
        + " ".join(joins)
        + " WHERE "
        + " OR ".join(conditions)
        + f") SELECT {', '.join(outer)} FROM c "
        + " ".join(laterals)
        + " ORDER BY c.position"
    )


@dataclass(frozen=True)
class QueryCandidates:
    """Candidates from one query over `latest_state` (and `events`, for data versions)."""

    conn: psycopg.Connection[Any]
    namespace_id: int

    def candidates(
        self, asset: AssetDefinition, edges: Sequence[CandidateEdge], keys: Sequence[str]
    ) -> Iterator[Candidate]:
        joined = joined_keys(keys)
        params: dict[str, Any] = {
            "ns": self.namespace_id,
            "asset": asset.key,
            "keys": list(keys) if joined is None else joined,
            "separator": KEY_SEPARATOR,
            "code": asset.code_version,
            "upstream_keys": sorted({edge.upstream_key for edge in edges}),
        }
        for index, edge in enumerate(edges):
            params[f"up{index}"] = edge.upstream_key
            if edge.partitioned and edge.not_fresh_keys:
                params[f"t{index}"] = list(edge.not_fresh_keys)
        query = _candidate_query(edges, "array" if joined is None else "text")
        # fetchall: iterating the cursor costs a call per row (a sixth of this path's time).
        rows = self.conn.execute(query, params).fetchall()
        for position, event_id, time, version, code, upstream_keys, observed, *sides in rows:
            latest = _materialized(event_id, time, version, code, upstream_keys)
            if latest is None:
                yield position - 1, None, observed, ()
                continue
            upstream: list[UpstreamRow] = []
            for start in range(0, len(sides), _EDGE_WIDTH):
                record_id, record_time, record_version, record_observed, version_before = sides[
                    start : start + _EDGE_WIDTH
                ]
                record = _record(record_id, record_time, record_version, record_observed)
                upstream.append((record, version_before))
            yield position - 1, latest, observed, upstream


# ----- the in-memory copies ------------------------------------------------------------------


# A materialized suspect of `MirrorCandidates`: (position, key, latest materialization, the
# upstream records, one per edge).
_Suspect = tuple[int, str, Materialized, list[Materialized | Observed | None]]


@dataclass(frozen=True)
class MirrorCandidates:
    """Candidates from the in-memory copies of latest states, in the answer's snapshot."""

    # The copies of the given assets, brought up to the answer's snapshot.
    view_of: Callable[[Sequence[str]], MirrorView]
    # (upstream asset, partition keys, event ids) -> its data version as of each event id.
    versions_at: Callable[[str, Sequence[str | None], Sequence[int]], list[str | None]]
    # A text[] as Postgres prints it, read back.
    parse_array: Callable[[str], list[str]]

    def candidates(
        self, asset: AssetDefinition, edges: Sequence[CandidateEdge], keys: Sequence[str]
    ) -> Iterator[Candidate]:
        upstream_keys = sorted({edge.upstream_key for edge in edges})
        view = self.view_of([asset.key, *upstream_keys])
        own = view.assets[asset.key]
        recorded = array_text(upstream_keys)
        suspect = _suspect_keys(view, asset, edges, recorded)
        sides = [(view.assets[edge.upstream_key], edge.partitioned) for edge in edges]
        # The materialized suspects, each with its upstream records (one per edge); the others
        # go at once (never stored, the most common row of a large asset: nothing to read).
        found: list[_Suspect] = []
        # One filtering pass first: most keys of a large ask are stored and not suspect.
        for position, key in [
            (position, key) for position, key in enumerate(keys) if key in suspect or key not in own
        ]:
            row = own.get(key)
            if row is None:
                yield position, None, False, ()
                continue
            latest = self._materialized(row, upstream_keys, recorded)
            if latest is None:  # only observed: an observed source
                yield position, None, True, ()
                continue
            records = [
                None
                if (side := rows.get(key if partitioned else "")) is None
                else (Observed if side[RECORD_OBSERVED] else Materialized)(
                    side[RECORD_ID], side[RECORD_TIME], side[RECORD_VERSION]
                )
                for rows, partitioned in sides
            ]
            found.append((position, key, latest, records))
        versions_before = [
            self._versions_before(view, index, edge, found) for index, edge in enumerate(edges)
        ]
        for position, _, latest, records in found:
            upstream = [
                (record, before.get(position))
                for record, before in zip(records, versions_before, strict=True)
            ]
            yield position, latest, False, upstream

    def _materialized(
        self, row: StateRow, upstream_keys: list[str], recorded: str
    ) -> Materialized | None:
        """A mirrored row's latest materialization; its upstream keys parsed only when they are
        not the asset's own (`recorded`)."""
        text = row[UPSTREAM_KEYS]
        return _materialized(
            row[MATERIALIZATION_ID],
            row[MATERIALIZATION_TIME],
            row[DATA_VERSION],
            row[CODE_VERSION],
            None if text is None else upstream_keys if text == recorded else self.parse_array(text),
        )

    def _versions_before(
        self,
        view: MirrorView,
        index: int,
        edge: CandidateEdge,
        found: Sequence[_Suspect],
    ) -> dict[int, str | None]:
        """By position: edge `index`'s upstream data version as of the suspect's
        materialization, where `version_needed` (remembered by the view, else one query)."""
        wanted: list[tuple[int, VersionKey]] = []
        for position, key, latest, records in found:
            record = records[index]
            if record is not None and version_needed(record, latest.event_id):
                partition = key if edge.partitioned else None
                wanted.append((position, (edge.upstream_key, partition, latest.event_id)))
        remembered = view.known_versions(version_key for _, version_key in wanted)
        known: dict[int, str | None] = {}
        asks: list[tuple[int, VersionKey]] = []
        for position, version_key in wanted:
            if version_key in remembered:
                known[position] = remembered[version_key]
            else:
                asks.append((position, version_key))
        looked_up: dict[VersionKey, str | None] = {}
        if asks:
            versions = self.versions_at(
                edge.upstream_key,
                [version_key[1] for _, version_key in asks],
                [version_key[2] for _, version_key in asks],
            )
            for (position, version_key), version in zip(asks, versions, strict=True):
                known[position] = looked_up[version_key] = version
            view.remember_versions(looked_up)
        return known


def _suspect_keys(
    view: MirrorView, asset: AssetDefinition, edges: Sequence[CandidateEdge], recorded: str
) -> set[str]:
    """The keys of the asset's mirrored rows that may not be FRESH (`CandidateSource`'s test),
    from key sets the view keeps up to date; keys with no row are suspects too."""
    suspect: set[str] = set()
    code = asset.code_version
    if code is not None:
        suspect.update(view.keys_where(("code", code), asset.key, None, _CodeDiffers(code)))
    suspect.update(
        view.keys_where(("dependencies", recorded), asset.key, None, _DependenciesDiffer(recorded))
    )
    for edge in edges:
        upstream_key = edge.upstream_key
        if edge.partitioned:
            suspect.update(
                view.keys_where("upstream newer", asset.key, upstream_key, _upstream_newer)
            )
            suspect.update(edge.not_fresh_keys)
            continue
        whole = view.assets[upstream_key].get("")
        if whole is None or edge.not_fresh_whole:
            suspect.update(view.assets[asset.key])
        else:
            older = _Older(whole[RECORD_ID])
            suspect.update(
                view.keys_where(("older than", whole[RECORD_ID]), asset.key, None, older)
            )
    return suspect


# Row tests for `MirrorView.keys_where`: classes rather than closures, so that each carries
# its parameter visibly (the view re-applies a test to changed rows in later versions). Rows
# without a materialization (observed sources) pass none: they are FRESH.
def _upstream_newer(row: StateRow, upstream: StateRow | None) -> bool:
    return row[MATERIALIZATION_ID] is not None and (
        upstream is None or upstream[RECORD_ID] > row[MATERIALIZATION_ID]
    )


@dataclass(frozen=True)
class _CodeDiffers:
    code_version: str

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[MATERIALIZATION_ID] is not None and row[CODE_VERSION] != self.code_version


@dataclass(frozen=True)
class _DependenciesDiffer:
    recorded: str

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[UPSTREAM_KEYS] is not None and row[UPSTREAM_KEYS] != self.recorded


@dataclass(frozen=True)
class _Older:
    event_id: int

    def __call__(self, row: StateRow, _: StateRow | None) -> bool:
        return row[MATERIALIZATION_ID] is not None and row[MATERIALIZATION_ID] < self.event_id
