-- partition-deps schema, version 4.

-- The transaction that stored each event. A server keeps in memory the latest
-- materializations and observations of large assets (store/state_mirror.py) and catches up on
-- what committed since its copy's snapshot: every transaction whose id is below that
-- snapshot's xmin had finished, so the events stored by ingest_xid >= xmin are all it can have
-- missed. Event ids cannot serve: they are drawn before commit, so a later commit can carry
-- smaller ids.
-- Nullable without a default first, so existing rows are not rewritten (they predate every
-- copy); the default then applies to every row stored from now on, by old code too.
ALTER TABLE events ADD COLUMN ingest_xid xid8;
ALTER TABLE events ALTER COLUMN ingest_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX events_recorded_by_xid ON events (namespace_id, ingest_xid) WHERE kind IN (1, 2);
