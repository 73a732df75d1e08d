-- partition-deps schema, version 5: what Dagster's staleness rules need.

-- An observable source asset (produced outside, only observed): always FRESH.
ALTER TABLE assets ADD COLUMN observable_source boolean NOT NULL DEFAULT false;

-- Per asset, the highest event id (materialization or observation) of each ingest batch. The
-- latest committed one is one index probe, where the events' own indexes would scan every
-- partition of the asset. Insert-only: concurrent batches of one asset never wait on a row.
CREATE TABLE asset_event_marks (
    namespace_id bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    asset_key    text NOT NULL,
    event_id     bigint NOT NULL,
    PRIMARY KEY (namespace_id, asset_key, event_id)
);
INSERT INTO asset_event_marks (namespace_id, asset_key, event_id)
SELECT namespace_id, asset_key, max(event_id) FROM events WHERE kind IN (1, 2)
GROUP BY namespace_id, asset_key;

-- Dagster's input event pointers of the latest materialization, aligned with upstream_keys:
-- per upstream asset, its latest event id (any partition) when this materialization was
-- stored; an element is NULL when that asset had no event then. "When it was stored": the
-- events committed when the batch recorded its materializations, and the events before it in
-- its own batch (store/events.py). NULL column: not recorded (rows stored before this version).
ALTER TABLE latest_state ADD COLUMN input_event_ids bigint[];
