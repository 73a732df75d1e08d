-- partition-deps schema, version 2: what staleness and planning need.

-- The asset's upstream keys (sorted) when its latest materialization was stored, for the
-- "dependency added / removed since it was materialized" cause. NULL: not recorded (rows
-- written before this migration), so no such cause is reported for them.
ALTER TABLE latest_state ADD COLUMN upstream_keys text[];

-- Every answer states the event position it was computed at: the namespace's highest event_id,
-- one index probe instead of a scan.
CREATE INDEX events_position ON events (namespace_id, event_id);
