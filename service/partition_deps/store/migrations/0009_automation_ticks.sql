-- partition-deps schema, version 9.

-- Declarative automation, per namespace: the state the engine carries from tick to tick (its
-- own JSON, opaque here), the evaluation time of the latest tick, which no later tick may
-- precede, and the last event that tick read (the next one reads the events after it as new).
CREATE TABLE automation_state (
    namespace_id    bigint PRIMARY KEY REFERENCES namespaces ON DELETE CASCADE,
    state           jsonb NOT NULL,
    evaluation_time timestamptz NOT NULL,
    event_position  bigint NOT NULL,
    -- How many ticks the namespace has had; the latest one's sequence.
    tick_count      bigint NOT NULL
);

-- Every tick, as answered: a retry with the same tick id reads it back.
-- event_position: the events up to this position were read (positions grow in commit order).
-- summary: requested partitions, run requests and evaluation trees (store/automation.py).
CREATE TABLE automation_ticks (
    namespace_id      bigint NOT NULL REFERENCES namespaces ON DELETE CASCADE,
    tick_id           text NOT NULL,
    sequence          bigint NOT NULL,
    evaluation_time   timestamptz NOT NULL,
    generation        bigint NOT NULL,
    event_position    bigint NOT NULL,
    requested_count   bigint NOT NULL,
    run_request_count bigint NOT NULL,
    summary           jsonb NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace_id, tick_id),
    UNIQUE (namespace_id, sequence)
);
