"""Bounded growth: superseded events older than a retention are deleted, answers unchanged.

What every answer reads from `events` once an event is stored:
- the event position (the namespace's highest event id): the highest event is never deleted;
- the data version of an (asset, partition) as of an event id B, "the latest materialization
  or observation of that partition with id <= B" (Dagster semantics: B is a downstream's
  materialization id or one of its input event ids). B is always one of the namespace's
  boundaries: a `latest_state.materialization_event_id` or an element of its
  `input_event_ids`; later materializations only add boundaries at or above every
  partition's latest event;
- the events of the latest transactions (the in-memory copies catch up on them): recent, and
  never superseded-and-old at once.
Runs are read from `runs` (status, lease, targets), never from their events.

So, per (asset, partition), a materialization or observation E followed by a newer one N of
the same partition is needed only when some boundary B has E <= B < N: every other lookup
finds N or a later event (kept by the same rule, the partition's latest always). Those E
older than the retention are deleted; so are run events older than the retention whose run
has ended, and each asset's event marks below its highest one. Everything else stays.

An event's idempotency key goes with it: a batch re-sent after its events were compacted
is stored again, so the retention must exceed the longest time a client retries a batch.
Automation ticks (when present) read the events after their previous tick's position and the
latest update per partition at or before a tick's boundary: their stored positions are
boundaries too, and the retention must exceed the longest interval between two ticks.

Each namespace is compacted in one transaction holding its ingest lock, so no batch of that
namespace commits meanwhile (a batch waits, as it waits for another batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import ConnectionPool

from partition_deps.store.database import transaction
from partition_deps.store.events import lock_namespace_ingest

# The boundaries in a table of their own with a primary key: "is there one in [E, N)" is then
# one index probe per candidate (as a CTE it was a scan of every boundary per candidate: 42 s
# for 600,000 events).
_BOUNDARIES = """
INSERT INTO compaction_boundaries
SELECT materialization_event_id FROM latest_state
WHERE namespace_id = %(ns)s AND materialization_event_id IS NOT NULL
UNION
SELECT b FROM latest_state, unnest(input_event_ids) AS b
WHERE namespace_id = %(ns)s AND b IS NOT NULL
"""

_SUPERSEDED = """
WITH successions AS (
    SELECT event_id, recorded_at,
           lead(event_id) OVER (PARTITION BY asset_key, partition_key ORDER BY event_id)
               AS next_event_id
    FROM events WHERE namespace_id = %(ns)s AND kind IN (1, 2)
)
DELETE FROM events e USING successions s
WHERE e.namespace_id = %(ns)s AND e.event_id = s.event_id
  AND s.next_event_id IS NOT NULL
  AND s.recorded_at < now() - %(retention)s
  AND NOT EXISTS (SELECT 1 FROM compaction_boundaries b
                  WHERE b.event_id >= s.event_id AND b.event_id < s.next_event_id)
"""

_ENDED_RUNS = """
DELETE FROM events e USING runs r
WHERE e.namespace_id = %(ns)s AND e.kind NOT IN (1, 2)
  AND r.namespace_id = %(ns)s AND r.run_id = e.run_id AND r.status <> 'started'
  AND e.recorded_at < now() - %(retention)s
  AND e.event_id < (SELECT max(event_id) FROM events WHERE namespace_id = %(ns)s)
"""

_MARKS = """
DELETE FROM asset_event_marks m
WHERE m.namespace_id = %(ns)s
  AND m.event_id < (SELECT max(t.event_id) FROM asset_event_marks t
                    WHERE t.namespace_id = %(ns)s AND t.asset_key = m.asset_key)
"""


@dataclass(frozen=True)
class Compacted:
    namespaces: int
    superseded_events: int
    run_events: int
    marks: int


def compact(
    pool: ConnectionPool, retention: timedelta, namespace_ids: Sequence[int] | None = None
) -> Compacted:
    """Compact these namespaces (None: every one), one transaction each."""
    if namespace_ids is None:
        with transaction(pool) as conn:
            namespace_ids = [
                row[0] for row in conn.execute("SELECT namespace_id FROM namespaces ORDER BY 1")
            ]
    superseded = run_events = marks = 0
    for namespace_id in namespace_ids:
        with transaction(pool) as conn:
            lock_namespace_ingest(conn, namespace_id)
            params = {"ns": namespace_id, "retention": retention}
            conn.execute(
                "CREATE TEMP TABLE compaction_boundaries (event_id bigint PRIMARY KEY)"
                " ON COMMIT DROP"
            )
            conn.execute(_BOUNDARIES, params)
            conn.execute("ANALYZE compaction_boundaries")
            superseded += conn.execute(_SUPERSEDED, params).rowcount
            run_events += conn.execute(_ENDED_RUNS, params).rowcount
            marks += conn.execute(_MARKS, params).rowcount
    return Compacted(len(namespace_ids), superseded, run_events, marks)
