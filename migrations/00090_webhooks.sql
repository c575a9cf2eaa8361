-- Webhook endpoints and their deliveries (docs/webhooks.md). The dispatcher
-- reads the change feed from each endpoint's position (pos_xid, pos_seq),
-- inserts one delivery per matching event and moves the position in the same
-- transaction, so every event is handed to an endpoint exactly once; the
-- deliver job then sends each (endpoint, tenant) pair's deliveries in feed
-- order, at least once.
-- +goose Up
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url             text NOT NULL,
    -- Empty means every event type.
    event_types     text[] NOT NULL DEFAULT '{}',
    description     text NOT NULL DEFAULT '',
    disabled        boolean NOT NULL DEFAULT false,
    disabled_reason text NOT NULL DEFAULT '',
    -- whsec_… secrets, stored in clear: the worker must sign with them.
    secret          text NOT NULL,
    -- The secret before the last rotation; it signs too until it expires.
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    -- The feed position up to which events were dispatched. A new endpoint
    -- starts at the oldest transaction still running: it receives every
    -- event not yet committed when it was created (and those of newer
    -- transactions that committed just before), none of the history.
    pos_xid         xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
    pos_seq         bigint NOT NULL DEFAULT 0,
    -- Set at the first failed attempt since the last success.
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    tenant_id        uuid NOT NULL,
    event_type       text NOT NULL,
    event_xid        xid8 NOT NULL,
    event_seq        bigint NOT NULL,
    -- pending: not yet acknowledged; delivered: a 2xx came back; expired:
    -- retention deleted the event before it could be delivered.
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'expired')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status_code integer,
    -- What went wrong, for people: never a secret or a signature.
    last_error       text NOT NULL DEFAULT '',
    last_latency_ms  integer,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
-- The deliver job's next delivery of one (endpoint, tenant) pair, in feed order.
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (endpoint_id, tenant_id, event_xid, event_seq)
    WHERE status = 'pending';
-- The history of an endpoint, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
-- What history retention may delete: finished deliveries, oldest first.
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (created_at) WHERE status <> 'pending';

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
