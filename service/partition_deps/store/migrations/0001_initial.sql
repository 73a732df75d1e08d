-- partition-deps schema, version 1.

CREATE TABLE namespaces (
    namespace_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    -- Grows with every change to the namespace's assets or dynamic partitions; servers cache
    -- definitions keyed by it.
    generation   bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assets (
    namespace_id bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    asset_key    text NOT NULL,
    -- The conformance-case JSON format (store/codec.py); NULL means unpartitioned.
    partitions   jsonb,
    code_version text,
    generation   bigint NOT NULL,
    PRIMARY KEY (namespace_id, asset_key)
);

CREATE TABLE dependencies (
    namespace_id bigint NOT NULL,
    asset_key    text NOT NULL,
    position     integer NOT NULL,
    upstream_key text NOT NULL,
    -- NULL means Dagster's inferred default.
    mapping      jsonb,
    PRIMARY KEY (namespace_id, asset_key, upstream_key),
    FOREIGN KEY (namespace_id, asset_key) REFERENCES assets ON DELETE CASCADE,
    -- An asset that others depend on cannot be deleted.
    FOREIGN KEY (namespace_id, upstream_key) REFERENCES assets (namespace_id, asset_key)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX dependencies_by_upstream ON dependencies (namespace_id, upstream_key);

-- Keys of dynamic definitions. A deleted key keeps its row (a tombstone); re-adding it inserts
-- a new row at the end of the insertion order, as Dagster does.
CREATE TABLE dynamic_partitions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace_id    bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    definition_name text NOT NULL,
    partition_key   text NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX dynamic_partitions_live
    ON dynamic_partitions (namespace_id, definition_name, partition_key)
    WHERE deleted_at IS NULL;
CREATE INDEX dynamic_partitions_order ON dynamic_partitions (namespace_id, definition_name, id);

-- Append-only. event_id is the storage id: it orders events as they were stored.
-- kind: 1 materialization, 2 observation, 3 run started, 4 run failed.
-- partition_key is '' for an unpartitioned asset (keys are never empty), so that it can be
-- part of primary keys on Postgres 14.
CREATE TABLE events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace_id    bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    kind            smallint NOT NULL,
    event_time      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    asset_key       text,
    partition_key   text,
    run_id          text,
    data_version    text,
    code_version    text,
    -- Run started: {"targets": [{"asset_key": ..., "partition_key": ...}]}; run failed: message.
    details         jsonb,
    UNIQUE (namespace_id, idempotency_key)
);
CREATE INDEX events_by_partition ON events (namespace_id, asset_key, partition_key, event_id)
    WHERE kind IN (1, 2);

-- The latest state of every (asset, partition), written in the transaction that stores the
-- event, so staleness and planning read index lookups instead of scanning events.
CREATE TABLE latest_state (
    namespace_id              bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    asset_key                 text NOT NULL,
    partition_key             text NOT NULL,
    materialization_event_id  bigint,
    materialization_time      timestamptz,
    data_version              text,
    code_version              text,
    run_id                    text,
    observation_event_id      bigint,
    observation_time          timestamptz,
    observed_data_version     text,
    in_progress_run_id        text,
    PRIMARY KEY (namespace_id, asset_key, partition_key)
);

CREATE TABLE runs (
    namespace_id bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    run_id       text NOT NULL,
    status       text NOT NULL,
    started_at   timestamptz,
    ended_at     timestamptz,
    message      text,
    PRIMARY KEY (namespace_id, run_id)
);
