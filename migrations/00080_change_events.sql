-- The change feed: every change the sync applies, and every tenant lifecycle
-- change, is one row here, written in the transaction that makes the change
-- (a transactional outbox). Readers page by (xid, seq): seq comes from a
-- sequence, so concurrent transactions commit their numbers out of order; a
-- reader is handed only rows whose transaction is older than every one still
-- running (xid < pg_snapshot_xmin(pg_current_snapshot())), ordered by
-- (xid, seq), so a row that commits later always sorts after every row
-- already handed out. See docs/events.md.
-- +goose Up
CREATE TABLE change_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    data        jsonb NOT NULL,
    PRIMARY KEY (xid, seq)
);
CREATE UNIQUE INDEX change_events_id_idx ON change_events (id);
CREATE INDEX change_events_tenant_idx ON change_events (tenant_id, xid, seq);
CREATE INDEX change_events_occurred_idx ON change_events (occurred_at);

-- The position up to which retention has deleted events: a cursor before it
-- has lost events and is answered 410 Gone.
CREATE TABLE change_events_pruned (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    upto_xid xid8 NOT NULL,
    upto_seq bigint NOT NULL
);

-- +goose Down
DROP TABLE change_events_pruned;
DROP TABLE change_events;
