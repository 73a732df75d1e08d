-- partition-deps schema, version 3.

-- latest_state is rewritten by every materialization (an upsert of non-indexed columns): room
-- in each page lets those be HOT updates that reuse the page, instead of a table that grows
-- by one row version per materialization between vacuums (staleness scans it per asset).
ALTER TABLE latest_state SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);
