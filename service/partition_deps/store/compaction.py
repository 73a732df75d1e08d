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

So, per (asset, partition) and kind, a materialization (or observation) E followed by a newer
one N is needed only when some boundary B has E <= B < N: every other lookup finds N or a
later event (kept by the same rule, the partition's latest always). Those E older than the
retention are deleted, and each asset's event marks below its highest one. Everything else
stays, run events included (their share is two or three per run).

Automation ticks read the events after the previous tick's position, and a server that has
no history of the namespace in memory rebuilds it from every event, keeping per partition and
kind the latest update at or before that position (EventHistory.compact). So where the
namespace has ticks, E is deleted only when N is at or before the last tick's position: the
rebuilt history is the one kept in memory.

An event's idempotency key goes with it: a batch re-sent after its events were compacted
is stored again, so the retention must exceed the longest time a client retries a batch.

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

# Per kind: automation keeps a partition's materializations and observations apart, so an
# observation followed by a materialization is still its partition's latest observation. In a
# namespace with automation ticks, only events superseded at or before the last tick's position.
_SUPERSEDED = """
WITH successions AS (
    SELECT event_id, recorded_at,
           lead(event_id) OVER (PARTITION BY asset_key, partition_key, kind ORDER BY event_id)
               AS next_event_id
    FROM events WHERE namespace_id = %(ns)s AND kind IN (1, 2)
)
DELETE FROM events e USING successions s
WHERE e.namespace_id = %(ns)s AND e.event_id = s.event_id
  AND s.next_event_id IS NOT NULL
  AND s.recorded_at < now() - %(retention)s
  AND s.next_event_id <= coalesce(
      (SELECT event_position FROM automation_state WHERE namespace_id = %(ns)s),
      9223372036854775807)
  AND NOT EXISTS (SELECT 1 FROM compaction_boundaries b
                  WHERE b.event_id >= s.event_id AND b.event_id < s.next_event_id)
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
    superseded = marks = 0
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
            marks += conn.execute(_MARKS, params).rowcount
    return Compacted(len(namespace_ids), superseded, marks)
