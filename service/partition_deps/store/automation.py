"""Declarative automation ticks: one at a time per namespace, idempotent by tick id, stored.

A tick reads the namespace's events in commit order. Within a namespace, event ids grow in
commit order: ingest (store/events.py) draws a batch's ids only once it holds the namespace's
ingest lock, which it keeps until it commits, so a batch committing later draws larger ids. The
events a tick can see are therefore every event up to some id, and the next tick sees the
events after that id as new, whatever commits in between (the tick stores that id as its
`event_position`).

Each server keeps the event history of the namespaces it evaluated last, so a tick reads only
the events stored since the history was last fed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import args_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from partition_deps.domain.automation.history import EventHistory
from partition_deps.domain.automation.ticks import (
    AssetRequest,
    HistoryFeed,
    NodeSummary,
    RunRequest,
    TickSummary,
)
from partition_deps.domain.events import (
    Event,
    Observation,
    PartitionTarget,
    RunCanceled,
    RunFailed,
    RunStarted,
    RunSucceeded,
)
from partition_deps.domain.results import PartitionRun
from partition_deps.store.database import lock_namespace, transaction
from partition_deps.store.errors import (
    EvaluationTimeBeforeLastTick,
    TickIdConflict,
    TickNotFound,
)
from partition_deps.store.events import (
    MATERIALIZATION,
    OBSERVATION,
    RUN_FAILED,
    RUN_HEARTBEAT,
    RUN_STARTED,
    RUN_SUCCEEDED,
)

# The advisory lock class (first key) of a namespace's tick lock; the second key is the
# namespace id, as for the ingest lock (a different class: ticks never wait for ingest).
_TICK_LOCK_CLASS = 0x50444154  # "PDAT"


@dataclass(frozen=True)
class StoredTick:
    tick_id: str
    sequence: int
    evaluation_time: datetime
    generation: int
    event_position: int
    requested_count: int
    run_request_count: int
    # None when listed (ListAutomationTicks reads no summaries).
    summary: TickSummary | None


# What a tick computes from the namespace's history (with what the previous tick saw marked
# as seen) and the previous tick's state (None on the namespace's first tick): its summary and
# the state to keep for the next tick.
Evaluate = Callable[[EventHistory, dict[str, Any] | None], tuple[TickSummary, dict[str, Any]]]
# Histories kept, one per namespace, the most recently evaluated ones.
KEPT_HISTORIES = 32

_TICK_COLUMNS = (
    "tick_id, sequence, evaluation_time, generation, event_position, requested_count,"
    " run_request_count"
)


class AutomationRepository:
    def __init__(self, pool: ConnectionPool, kept_histories: int = KEPT_HISTORIES) -> None:
        self._pool = pool
        self._kept_histories = kept_histories
        # Thread safety: guarded by self._lock. A feed itself is used only by the tick that
        # holds its namespace's tick lock (an advisory lock: one tick at a time).
        self._feeds: OrderedDict[int, HistoryFeed] = OrderedDict()
        self._lock = threading.Lock()

    def _feed(self, namespace_id: int) -> HistoryFeed:
        with self._lock:
            feed = self._feeds.pop(namespace_id, None) or HistoryFeed()
            self._feeds[namespace_id] = feed
            while len(self._feeds) > self._kept_histories:
                self._feeds.popitem(last=False)
        return feed

    def tick(self, namespace_id: int, tick_id: str) -> StoredTick:
        with transaction(self._pool) as conn:
            found = _stored_tick(conn, namespace_id, tick_id)
        if found is None:
            raise TickNotFound(f"tick {tick_id!r} does not exist", "tick_id")
        return found

    def list_ticks(
        self, namespace_id: int, before_sequence: int | None, limit: int
    ) -> list[StoredTick]:
        """Up to `limit` ticks, newest first, older than `before_sequence` when given."""
        with transaction(self._pool) as conn:
            rows = conn.execute(
                f"SELECT {_TICK_COLUMNS} FROM automation_ticks WHERE namespace_id = %s"
                " AND sequence < %s ORDER BY sequence DESC LIMIT %s",
                (namespace_id, before_sequence or 2**62, limit),
            ).fetchall()
        return [_tick_of(row, None) for row in rows]

    def run_tick(
        self,
        namespace_id: int,
        tick_id: str,
        evaluation_time: datetime,
        generation: int,
        evaluate: Evaluate,
    ) -> tuple[StoredTick, bool]:
        """Evaluate and store the tick `tick_id`, or return the stored one (then evaluating
        nothing); the flag says whether this call evaluated it."""
        with transaction(self._pool) as conn:
            found = _stored_tick(conn, namespace_id, tick_id)
            if found is not None:
                return _replayed(found, evaluation_time), False
            # Read committed: every statement after the lock sees the ticks committed before.
            lock_namespace(conn, _TICK_LOCK_CLASS, namespace_id)
            found = _stored_tick(conn, namespace_id, tick_id)
            if found is not None:  # a concurrent call evaluated it while this one waited
                return _replayed(found, evaluation_time), False
            previous = conn.execute(
                "SELECT state, evaluation_time, tick_count, event_position FROM automation_state"
                " WHERE namespace_id = %s",
                (namespace_id,),
            ).fetchone()
            if previous is not None and evaluation_time < previous[1]:
                raise EvaluationTimeBeforeLastTick(
                    f"evaluation time {evaluation_time.isoformat()} is before the latest tick's"
                    f" ({previous[1].astimezone(UTC).isoformat()})",
                    "evaluation_time",
                )
            feed = self._feed(namespace_id)
            _feed_events(conn, namespace_id, feed)
            position = feed.last_event_id
            history = feed.for_tick(0 if previous is None else int(previous[3]))
            summary, state = evaluate(history, None if previous is None else previous[0])
            tick = StoredTick(
                tick_id=tick_id,
                sequence=1 if previous is None else int(previous[2]) + 1,
                evaluation_time=evaluation_time,
                generation=generation,
                event_position=position,
                requested_count=summary.requested_count,
                run_request_count=len(summary.run_requests),
                summary=summary,
            )
            conn.execute(
                "INSERT INTO automation_ticks (namespace_id, tick_id, sequence, evaluation_time,"
                " generation, event_position, requested_count, run_request_count, summary)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    namespace_id,
                    tick.tick_id,
                    tick.sequence,
                    tick.evaluation_time,
                    tick.generation,
                    tick.event_position,
                    tick.requested_count,
                    tick.run_request_count,
                    Jsonb(summary_to_json(summary)),
                ),
            )
            conn.execute(
                "INSERT INTO automation_state (namespace_id, state, evaluation_time,"
                " event_position, tick_count) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (namespace_id) DO UPDATE SET state = EXCLUDED.state,"
                " evaluation_time = EXCLUDED.evaluation_time,"
                " event_position = EXCLUDED.event_position, tick_count = EXCLUDED.tick_count",
                (namespace_id, Jsonb(state), evaluation_time, position, tick.sequence),
            )
        return tick, True


def _replayed(tick: StoredTick, evaluation_time: datetime) -> StoredTick:
    if tick.evaluation_time != evaluation_time:
        raise TickIdConflict(
            f"tick {tick.tick_id!r} was evaluated at {tick.evaluation_time.isoformat()},"
            f" not at {evaluation_time.astimezone(UTC).isoformat()}",
            "tick_id",
        )
    return tick


def _stored_tick(
    conn: psycopg.Connection[Any], namespace_id: int, tick_id: str
) -> StoredTick | None:
    row = conn.execute(
        f"SELECT {_TICK_COLUMNS}, summary FROM automation_ticks"
        " WHERE namespace_id = %s AND tick_id = %s",
        (namespace_id, tick_id),
    ).fetchone()
    return None if row is None else _tick_of(row[:-1], summary_from_json(row[-1]))


def _tick_of(row: Sequence[Any], summary: TickSummary | None) -> StoredTick:
    return StoredTick(
        tick_id=row[0],
        sequence=int(row[1]),
        evaluation_time=row[2].astimezone(UTC),
        generation=int(row[3]),
        event_position=int(row[4]),
        requested_count=int(row[5]),
        run_request_count=int(row[6]),
        summary=summary,
    )


class _EventRow(NamedTuple):
    """An event as a tick reads it; the SELECT lists these names, in this order."""

    event_id: int
    kind: int
    event_time: datetime
    asset_key: str
    partition_key: str
    run_id: str | None
    data_version: str | None
    code_version: str | None
    details: Any
    idempotency_key: str


_EVENT_COLUMNS = ", ".join(_EventRow._fields)
# Rows fetched at a time: a namespace's first tick on a server reads all of its events.
_FEED_BATCH = 10_000


def _feed_events(conn: psycopg.Connection[Any], namespace_id: int, feed: HistoryFeed) -> None:
    """Feed `feed` the namespace's events stored after its last one, in commit order
    (heartbeats aside: conditions do not read them)."""
    with conn.cursor(row_factory=args_row(_EventRow)) as cursor:
        cursor.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE namespace_id = %s"
            " AND event_id > %s AND kind <> %s ORDER BY event_id",
            (namespace_id, feed.last_event_id, RUN_HEARTBEAT),
        )
        while rows := cursor.fetchmany(_FEED_BATCH):
            for row in rows:
                if row.kind == MATERIALIZATION:
                    feed.materialization(
                        row.event_id,
                        row.asset_key,
                        row.partition_key or None,
                        row.event_time.timestamp(),
                        row.run_id or None,
                        row.data_version or None,
                    )
                else:
                    feed.add(row.event_id, _event_of(row))


def _event_of(row: _EventRow) -> Event:
    """Any event but a materialization (which goes to the feed without an Event)."""
    if row.kind == OBSERVATION:
        return Observation(
            row.idempotency_key,
            row.event_time,
            row.asset_key,
            row.partition_key or None,
            row.data_version or "",
        )
    if row.kind == RUN_STARTED:
        targets = tuple(
            PartitionTarget(target["asset_key"], target["partition_key"])
            for target in row.details["targets"]
        )
        return RunStarted(row.idempotency_key, row.event_time, row.run_id or "", targets)
    if row.kind == RUN_SUCCEEDED:
        return RunSucceeded(row.idempotency_key, row.event_time, row.run_id or "")
    ended = RunFailed if row.kind == RUN_FAILED else RunCanceled
    message = row.details.get("message") if row.details else None
    return ended(row.idempotency_key, row.event_time, row.run_id or "", message or "")


# -- the stored summary ---------------------------------------------------------------------


def _run_to_json(run: PartitionRun) -> list[Any]:
    return [
        run.first_key,
        run.last_key,
        run.count,
        None if run.start is None else run.start.timestamp(),
        None if run.end is None else run.end.timestamp(),
    ]


def _run_from_json(data: list[Any]) -> PartitionRun:
    first, last, count, start, end = data
    return PartitionRun(
        first,
        last,
        count,
        None if start is None else datetime.fromtimestamp(start, UTC),
        None if end is None else datetime.fromtimestamp(end, UTC),
    )


class _TreeTables:
    """What a tick's trees repeat, stored once: labels (one condition serves many assets) and
    run lists (one set of keys serves many nodes). A node refers to both by index."""

    def __init__(self) -> None:
        self.labels: dict[str, int] = {}
        # Run tuples by identity: summarize() shares one tuple among the nodes of one key set,
        # and the summary keeps every tuple alive while it is encoded.
        self._run_indexes: dict[int, int] = {}
        self.runs: list[list[list[Any]]] = []

    def node(self, node: NodeSummary) -> list[Any]:
        """`[label index, true_count, candidate_count, runs index, children]`: a tick stores
        tens of thousands of nodes, so no field names."""
        label = self.labels.setdefault(node.label, len(self.labels))
        runs = self._run_indexes.get(id(node.true_runs))
        if runs is None:
            runs = self._run_indexes[id(node.true_runs)] = len(self.runs)
            self.runs.append([_run_to_json(run) for run in node.true_runs])
        return [
            label,
            node.true_count,
            node.candidate_count,
            runs,
            [self.node(child) for child in node.children],
        ]


def summary_to_json(summary: TickSummary) -> dict[str, Any]:
    tables = _TreeTables()
    trees = [[key, tables.node(root)] for key, root in summary.trees]
    return {
        "requested": [
            {
                "asset_key": request.asset_key,
                "keys": None if request.keys is None else list(request.keys),
                "runs": [_run_to_json(run) for run in request.runs],
            }
            for request in summary.requested
        ],
        "run_requests": [
            {"partition_key": run.partition_key, "asset_keys": list(run.asset_keys)}
            for run in summary.run_requests
        ],
        "labels": list(tables.labels),
        "runs": tables.runs,
        "trees": trees,
    }


def summary_from_json(data: dict[str, Any]) -> TickSummary:
    labels: list[str] = data["labels"]
    runs = [tuple(_run_from_json(run) for run in runs) for runs in data["runs"]]

    def node(encoded: list[Any]) -> NodeSummary:
        label, true_count, candidate_count, runs_index, children = encoded
        return NodeSummary(
            labels[label],
            true_count,
            runs[runs_index],
            candidate_count,
            tuple([node(child) for child in children]),
        )

    return TickSummary(
        requested=tuple(
            AssetRequest(
                item["asset_key"],
                None if item["keys"] is None else tuple(item["keys"]),
                tuple(_run_from_json(run) for run in item["runs"]),
            )
            for item in data["requested"]
        ),
        run_requests=tuple(
            RunRequest(item["partition_key"], tuple(item["asset_keys"]))
            for item in data["run_requests"]
        ),
        trees=tuple((key, node(root)) for key, root in data["trees"]),
    )
