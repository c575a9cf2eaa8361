-- Users the sync saw soft-deleted (Graph's @removed reason "changed",
-- protocol §5.2), with their last copy: when one comes back the change feed
-- says user.restored rather than user.created, and when it is then deleted
-- for good, user.removed with what it was (docs/events.md).
-- +goose Up
CREATE TABLE directory_user_tombstones (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL,
    data       jsonb NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- +goose Down
DROP TABLE directory_user_tombstones;
