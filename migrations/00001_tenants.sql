-- Tenants that connected the app, and their history.
-- +goose Up
CREATE TABLE tenants (
    id                uuid PRIMARY KEY,
    status            text NOT NULL CHECK (status IN ('pending', 'active', 'failing', 'consent_revoked', 'insufficient_permissions', 'disconnected')),
    status_reason     text NOT NULL DEFAULT '',
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    display_name      text NOT NULL DEFAULT '',
    domains           text[] NOT NULL DEFAULT '{}',
    consented_at      timestamptz,
    consented_by      text NOT NULL DEFAULT '',
    consented_by_oid  text NOT NULL DEFAULT '',
    granted_roles     text[] NOT NULL DEFAULT '{}',
    last_synced_at    timestamptz,
    next_sync_at      timestamptz,
    failure_count     integer NOT NULL DEFAULT 0,
    sync_suspended    boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The periodic fan-out reads due active tenants.
CREATE INDEX tenants_due_idx ON tenants (next_sync_at) WHERE status IN ('active', 'failing') AND NOT sync_suspended;

CREATE TABLE tenant_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    from_status text NOT NULL DEFAULT '',
    to_status   text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT '',
    actor       text NOT NULL DEFAULT ''
);

CREATE INDEX tenant_events_tenant_idx ON tenant_events (tenant_id, at DESC, id DESC);

-- +goose Down
DROP TABLE tenant_events;
DROP TABLE tenants;
