"""Each server's in-memory copy of the latest materializations and observations of large
assets.

Why: staleness of a whole asset compares every partition's latest materialization with its
upstreams'. Joining 100,000 rows per side in Postgres costs 150-250 ms on every answer here;
held in memory, the comparison is a pass of about 15 ms, and an answer only reads what was
committed since the copy was taken.

Consistency, per answer: a copy is tagged with the Postgres snapshot it reflects. An answer
whose own (REPEATABLE READ) snapshot sees everything the copy's snapshot saw brings the copy up
to its snapshot: it re-reads the `latest_state` rows of the partitions materialized or observed
by transactions the copy's snapshot may not have seen (`events.ingest_xid` at or above the copy's
xmin; every transaction below xmin had finished). Versions are immutable (catching up copies
the maps it changes), so answers in flight keep the version they began with. An answer whose
snapshot is older than the copy's reads a private copy. The service stays stateless: the copy
is derived from the database and checked against it on every use; replicas share nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

# The latest state of one partition, for staleness: first its latest materialization (all None
# if only observed), then its latest record, the newer of that materialization and its latest
# observation: what downstream partitions compare themselves with. Read by the named positions
# below. A plain tuple, not a named one: a named tuple costs a call to build, and the cyclic
# collector keeps tracking it where it stops tracking a tuple of plain values. Building 200,000
# rows (the first whole-asset answer of the staleness benchmark), with the server's collector
# thresholds, took 93-95 ms as named tuples against 66 ms, and each full collection while they
# were held took 13 ms longer.
StateRow = tuple[
    int | None, datetime | None, str | None, str | None, str | None,
    int, datetime, str | None, bool,
]  # fmt: skip
MATERIALIZATION_ID: Final = 0
MATERIALIZATION_TIME: Final = 1
DATA_VERSION: Final = 2
CODE_VERSION: Final = 3
# The asset's upstream keys as Postgres prints the text[] (None: not recorded). Text: comparing
# costs nothing, parsing is only needed for the rare row whose dependencies changed.
UPSTREAM_KEYS: Final = 4
RECORD_ID: Final = 5
RECORD_TIME: Final = 6
RECORD_VERSION: Final = 7
RECORD_OBSERVED: Final = 8

AssetRows = Mapping[str, StateRow]

# The columns of latest_state a row is made from, by name, in the order `_read_rows` unpacks
# them; an empty data version is read as none.
_ROW_COLUMNS = {
    "asset_key": "asset_key",
    "partition_key": "partition_key",
    "materialization_id": "materialization_event_id",
    "materialization_time": "materialization_time",
    "data_version": "nullif(data_version, '')",
    "code_version": "code_version",
    "upstream_keys": "upstream_keys::text",
    "observation_id": "observation_event_id",
    "observation_time": "observation_time",
    "observed_version": "nullif(observed_data_version, '')",
}
_ROW_SQL = ", ".join(_ROW_COLUMNS.values())
_HAS_RECORD = "(materialization_event_id IS NOT NULL OR observation_event_id IS NOT NULL)"
# What makes Postgres quote an element of a text[] it prints (array_out), besides the empty
# text and NULL in any case.
_QUOTED_WHEN_HOLDING = frozenset('{},"\\ \t\n\r\v\f')


def array_text(values: Sequence[str]) -> str:
    """`values` as Postgres prints a text[] (how mirrored rows hold upstream keys), without a
    round trip (one per asset: 600 in a whole answer over the benchmark namespace, about
    0.5 s). Should Postgres print some value otherwise, the rows holding it would be compared
    key by key: slower, never misjudged."""
    elements = [
        '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if value == "" or value.upper() == "NULL" or not _QUOTED_WHEN_HOLDING.isdisjoint(value)
        else value
        for value in values
    ]
    return "{" + ",".join(elements) + "}"


@dataclass(frozen=True)
class Snapshot:
    """A Postgres snapshot (`pg_current_snapshot()`): transactions below `xmin` had finished,
    those from `xmax` on had not begun, and `in_progress` lists the unfinished ones between."""

    xmin: int
    xmax: int
    in_progress: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, listed = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in listed.split(",") if x))

    def sees(self, xid: int) -> bool:
        return xid < self.xmin or (xid < self.xmax and xid not in self.in_progress)

    def sees_all_of(self, earlier: Snapshot) -> bool:
        """Every transaction `earlier` sees is seen here too."""
        if earlier.xmax > self.xmax:
            return False
        # Below earlier.xmax, the only transactions not seen here are in_progress ones: each
        # must be unseen by `earlier` as well.
        return all(not earlier.sees(xid) for xid in self.in_progress if xid < earlier.xmax)


# A test of one mirrored row of an asset, given the same-key row of another asset (or None).
RowTest = Callable[[StateRow, StateRow | None], bool]
# Names a derived key set: (what it tests, the asset, the other asset or None).
DerivedKey = tuple[Hashable, str, str | None]
_MAX_DERIVED = 64
# (asset, partition key, event id): the partition's data version as of that event.
VersionKey = tuple[str, str | None, int]
_MAX_VERSIONS = 200_000


class MirrorView:
    """The mirrored assets at one snapshot, and key sets derived from them.

    A derived set holds the partition keys of an asset whose row passes a test (against the
    same-key row of another asset): "the upstream is missing or newer", "the code version
    differs". Each is computed once over the whole asset, then, from version to version, only
    for the keys that changed: an answer over 100,000 partitions reads a set of a few hundred
    instead of testing every row.

    `known_versions` gives the data versions answers looked up in `events` (a partition's
    version as of an event id) and left with `remember_versions`: later versions keep them,
    except for the partitions with new materializations, among which may be a late commit that
    changes the answer.

    A view is shared by the concurrent answers of its snapshot: `snapshot` and `assets` never
    change (catching up makes a new view), the derived sets are immutable maps swapped whole,
    and the remembered versions are guarded by the view's lock.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        assets: Mapping[str, AssetRows],
        derived: Mapping[DerivedKey, tuple[RowTest, frozenset[str]]] | None = None,
        versions: dict[VersionKey, str | None] | None = None,
    ) -> None:
        # Thread safety: immutable, never changed after the view is built.
        self.snapshot = snapshot
        self.assets = assets
        self._lock = threading.Lock()
        # Thread safety: an immutable map, replaced under self._lock by one reference swap;
        # read without the lock.
        self._derived: Mapping[DerivedKey, tuple[RowTest, frozenset[str]]] = (
            {} if derived is None else derived
        )
        # Thread safety: guarded by self._lock.
        self._versions: dict[VersionKey, str | None] = {} if versions is None else versions

    def keys_where(
        self, name: Hashable, asset_key: str, other_key: str | None, test: RowTest
    ) -> frozenset[str]:
        """Keys of `asset_key`'s rows for which `test(row, other row)` holds; `name` stands
        for the test (same name, same test)."""
        derived_key = (name, asset_key, other_key)
        known = self._derived.get(derived_key)
        if known is not None:
            return known[1]
        rows = self.assets[asset_key]
        other = self.assets[other_key].get if other_key is not None else _nothing
        found = frozenset(key for key, row in rows.items() if test(row, other(key)))
        with self._lock:  # racing answers computed equal sets: the first one stays
            known = self._derived.get(derived_key)
            if known is not None:
                return known[1]
            self._derived = {**self._derived, derived_key: (test, found)}
        return found

    def known_versions(self, version_keys: Iterable[VersionKey]) -> dict[VersionKey, str | None]:
        """The remembered data versions among `version_keys`."""
        with self._lock:
            versions = self._versions
            return {key: versions[key] for key in version_keys if key in versions}

    def remember_versions(self, found: Mapping[VersionKey, str | None]) -> None:
        """Data versions looked up in this view's snapshot, for the answers that follow."""
        if found:
            with self._lock:
                self._versions.update(found)

    def caught_up(
        self,
        snapshot: Snapshot,
        assets: Mapping[str, AssetRows],
        changed: Mapping[str, Mapping[str, StateRow]],
    ) -> MirrorView:
        """This view moved on to `assets` at `snapshot`, where `changed` lists the rows that
        may differ; derived sets are carried over, re-tested on the changed keys only."""
        derived: dict[DerivedKey, tuple[RowTest, frozenset[str]]] = {}
        for derived_key, (test, found) in list(self._derived.items())[-_MAX_DERIVED:]:
            _, asset_key, other_key = derived_key
            if asset_key not in assets or (other_key is not None and other_key not in assets):
                continue
            touched = set(changed.get(asset_key, ()))
            if other_key is not None:
                touched.update(changed.get(other_key, ()))
            if touched:
                rows = assets[asset_key]
                other = assets[other_key].get if other_key is not None else _nothing
                kept = set(found - touched)
                kept.update(
                    key
                    for key in touched
                    if (row := rows.get(key)) is not None and test(row, other(key))
                )
                found = frozenset(kept)
            derived[derived_key] = (test, found)
        # A copy taken at once under the lock (answers still on this view may add entries),
        # filtered without it.
        with self._lock:
            remembered = (
                list(self._versions.items()) if len(self._versions) <= _MAX_VERSIONS else []
            )
        versions = {
            version_key: version
            for version_key, version in remembered
            if version_key[0] in assets
            and (version_key[1] or "") not in changed.get(version_key[0], ())
        }
        return MirrorView(snapshot, assets, derived, versions)


def _nothing(key: str) -> None:
    return None


def _read_rows(
    conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any]
) -> dict[str, dict[str, StateRow]]:
    found: dict[str, dict[str, StateRow]] = {}
    # Many rows share one upstream-keys text: keep one string of each.
    texts: dict[str, str] = {}
    rows: dict[str, StateRow] = {}
    rows_of = None
    row: StateRow
    with conn.cursor(binary=True) as cursor:
        for (
            asset_key, partition_key, materialization_id, materialization_time, data_version,
            code_version, upstream_keys, observation_id, observation_time, observed_version,
        ) in cursor.execute(sql, params):  # fmt: skip
            if upstream_keys is not None:
                upstream_keys = texts.setdefault(upstream_keys, upstream_keys)
            if observation_id is not None and (
                materialization_id is None or observation_id > materialization_id
            ):
                row = (
                    materialization_id, materialization_time, data_version, code_version,
                    upstream_keys, observation_id, observation_time, observed_version, True,
                )  # fmt: skip
            else:
                row = (
                    materialization_id, materialization_time, data_version, code_version,
                    upstream_keys, materialization_id, materialization_time, data_version, False,
                )  # fmt: skip
            # Rows come asset by asset: the asset's map is looked up when the asset changes
            # (setdefault made an empty dict per row).
            if asset_key != rows_of:
                rows_of, rows = asset_key, found.setdefault(asset_key, {})
            rows[partition_key] = row
    return found


def load_assets(
    conn: psycopg.Connection[Any], namespace_id: int, asset_keys: Sequence[str]
) -> dict[str, dict[str, StateRow]]:
    """Every materialized or observed partition of the assets, as the connection's snapshot
    sees them."""
    found = _read_rows(
        conn,
        f"SELECT {_ROW_SQL} FROM latest_state WHERE namespace_id = %(ns)s"
        f" AND asset_key = ANY(%(assets)s) AND {_HAS_RECORD}",
        {"ns": namespace_id, "assets": list(asset_keys)},
    )
    return {key: found.get(key, {}) for key in asset_keys}


def _changed_rows(
    conn: psycopg.Connection[Any], namespace_id: int, asset_keys: Sequence[str], since: Snapshot
) -> dict[str, dict[str, StateRow]]:
    """The rows of the assets materialized or observed by transactions `since` may not have
    seen."""
    # One index probe per changed partition: LATERAL with LIMIT (the primary key gives one
    # row anyway) so that it is not flattened into a join, which the planner, unable to
    # estimate how many events are that recent, would run by hashing all of latest_state.
    return _read_rows(
        conn,
        f"SELECT {_ROW_SQL} FROM ("
        " SELECT DISTINCT asset_key AS changed_asset, coalesce(partition_key, '') AS changed_key"
        " FROM events WHERE namespace_id = %(ns)s AND kind IN (1, 2)"
        " AND ingest_xid >= %(xmin)s::text::xid8 AND asset_key = ANY(%(assets)s)) t"
        " CROSS JOIN LATERAL (SELECT * FROM latest_state s WHERE s.namespace_id = %(ns)s"
        " AND s.asset_key = t.changed_asset AND s.partition_key = t.changed_key"
        f" AND {_HAS_RECORD} LIMIT 1) s",
        {"ns": namespace_id, "assets": list(asset_keys), "xmin": str(since.xmin)},
    )


class StateMirror:
    """The copies of one server, per namespace, with at most `max_rows` rows held in all.

    Namespaces are evicted least recently used first, and within a namespace over the budget
    on its own, its largest assets (an answer then reads them privately).
    """

    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self._lock = threading.Lock()
        # Thread safety: guarded by self._lock; each view is itself safe to share (MirrorView).
        self._views: OrderedDict[int, MirrorView] = OrderedDict()
        # Rows loaded from the database (a metric, and how tests see the copy being used).
        # Thread safety: written under self._lock; a metrics scrape reads one int unlocked.
        self.rows_read = 0

    def view(
        self,
        conn: psycopg.Connection[Any],
        namespace_id: int,
        snapshot: Snapshot,
        asset_keys: Sequence[str],
    ) -> MirrorView:
        """The latest materializations of (at least) the assets, as `snapshot`, the
        connection's own snapshot, sees them."""
        with self._lock:
            view = self._views.get(namespace_id)
            if view is not None:
                self._views.move_to_end(namespace_id)
        if view is not None and not snapshot.sees_all_of(view.snapshot):
            # An answer that began before the copy's snapshot: read privately.
            return MirrorView(snapshot, self._count(load_assets(conn, namespace_id, asset_keys)))
        if view is None:
            view = MirrorView(snapshot, {})
        elif snapshot != view.snapshot and view.assets:
            changed = self._count(
                _changed_rows(conn, namespace_id, list(view.assets), view.snapshot)
            )
            assets = dict(view.assets)
            for asset_key, rows in changed.items():
                assets[asset_key] = {**assets[asset_key], **rows}
            view = view.caught_up(snapshot, assets, changed)
        missing = [key for key in asset_keys if key not in view.assets]
        if missing:
            loaded = self._count(load_assets(conn, namespace_id, missing))
            view = view.caught_up(snapshot, {**view.assets, **loaded}, {})
        self._keep(namespace_id, view)
        return view

    def _count(self, found: dict[str, dict[str, StateRow]]) -> dict[str, dict[str, StateRow]]:
        rows = sum(len(rows) for rows in found.values())
        with self._lock:
            self.rows_read += rows
        return found

    def _keep(self, namespace_id: int, view: MirrorView) -> None:
        with self._lock:
            current = self._views.get(namespace_id)
            # Two answers caught up concurrently: keep the newer copy.
            if current is not None and not view.snapshot.sees_all_of(current.snapshot):
                return
            if _size(view.assets) > self._max_rows:
                # Alone over the budget: this namespace's largest assets go first.
                assets = dict(view.assets)
                while assets and _size(assets) > self._max_rows:
                    del assets[max(assets, key=lambda key: len(assets[key]))]
                view = view.caught_up(view.snapshot, assets, {})
            self._views[namespace_id] = view
            self._views.move_to_end(namespace_id)
            while len(self._views) > 1 and self._held_rows() > self._max_rows:
                self._views.popitem(last=False)

    def held_rows(self) -> int:
        with self._lock:
            return self._held_rows()

    def _held_rows(self) -> int:
        return sum(_size(view.assets) for view in self._views.values())


def _size(assets: Mapping[str, AssetRows]) -> int:
    return sum(len(rows) for rows in assets.values())
