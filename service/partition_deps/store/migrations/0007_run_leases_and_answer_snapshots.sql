-- partition-deps schema, version 7: run leases, and the answers that multi-page reads page
-- through.

-- A run holds its targets for `lease` after it started, and again after its latest heartbeat:
-- until greatest(started_at, last_heartbeat_at) + lease, measured against the as_of of each
-- read. Runs stored before this version, or by a server of an earlier version while replicas
-- are being replaced, get the default lease of one hour (this server always writes the lease).
ALTER TABLE runs ADD COLUMN lease interval DEFAULT interval '1 hour';
ALTER TABLE runs ADD COLUMN last_heartbeat_at timestamptz;
-- What its RunStarted said it would write: [{"asset_key": ..., "partition_key": ...}].
ALTER TABLE runs ADD COLUMN targets jsonb;
UPDATE runs r SET targets = (
    SELECT e.details -> 'targets' FROM events e
    WHERE e.namespace_id = r.namespace_id AND e.kind = 3 AND e.run_id = r.run_id
    ORDER BY e.event_id DESC LIMIT 1)
WHERE r.status = 'started';

-- An answer of GetStaleness or PlanRuns longer than one page, kept when its first page is
-- served so that the following pages come from it, on any replica, while events arrive.
-- `header` is the response without its items; the items are stored in chunks of a fixed
-- count, each a serialized response holding only those items. Rows expire at `expires_at`;
-- `bytes` counts header and chunks, for the budget that evicts the oldest answers first.
CREATE TABLE answer_snapshots (
    snapshot_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    namespace_id bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    item_count   bigint NOT NULL,
    bytes        bigint NOT NULL,
    header       bytea NOT NULL
);
CREATE INDEX answer_snapshots_by_expiry ON answer_snapshots (expires_at);

CREATE TABLE answer_snapshot_chunks (
    snapshot_id uuid NOT NULL REFERENCES answer_snapshots ON DELETE CASCADE,
    chunk       integer NOT NULL,
    items       bytea NOT NULL,
    PRIMARY KEY (snapshot_id, chunk)
);

-- The partitions held by a run: each staleness answer looks for the ones whose run lost its
-- lease.
CREATE INDEX latest_state_in_progress ON latest_state (namespace_id)
    WHERE in_progress_run_id IS NOT NULL;
-- ListRuns walks the runs not ended, by id, past the ended ones that pile up.
CREATE INDEX runs_started ON runs (namespace_id, run_id) WHERE status = 'started';
