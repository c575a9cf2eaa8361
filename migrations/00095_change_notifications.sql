-- Graph change notifications (issue 17, docs/protocol.md §7). The worker keeps
-- one subscription per active tenant for `users` and one for `groups`; the
-- server receives their notifications and turns them into delta rounds.
-- +goose Up

-- One row per live Graph subscription. The clientState secret is random per
-- subscription and stored only as its SHA-256 (compared in constant time by
-- the server); it is never logged.
CREATE TABLE graph_subscriptions (
    id                text PRIMARY KEY,  -- Graph's subscription id
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource          text NOT NULL CHECK (resource IN ('users', 'groups')),
    client_state_hash bytea NOT NULL,
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    renewed_at        timestamptz,
    UNIQUE (tenant_id, resource)
);

-- The worker renews the subscriptions nearest to expiry first.
CREATE INDEX graph_subscriptions_expires_idx ON graph_subscriptions (expires_at);

-- Per tenant: is it near-real-time, and if not, why. notified_at is the
-- coalescing flag: the server sets it for each accepted notification and
-- enqueues a unique sync job; a sync round that started before notified_at
-- runs once more, so a notification arriving during a round is never lost
-- and a burst makes one or two rounds.
CREATE TABLE tenant_notifications (
    tenant_id      uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    state          text NOT NULL CHECK (state IN ('subscribing', 'subscribed', 'periodic')),
    reason         text NOT NULL DEFAULT '',  -- why periodic: quota, permission, unreachable, error, disabled
    since          timestamptz NOT NULL DEFAULT now(),
    notified_at    timestamptz,
    notifications  bigint NOT NULL DEFAULT 0
);

CREATE INDEX tenant_notifications_state_idx ON tenant_notifications (state, reason);

-- +goose Down
DROP TABLE tenant_notifications;
DROP TABLE graph_subscriptions;
