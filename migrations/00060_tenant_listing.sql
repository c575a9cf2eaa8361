-- Operator listing: directory sizes kept on the tenant row, and the indexes
-- behind keyset pagination, search and sorting at 100,000 tenants.
-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE tenants
    ADD COLUMN user_count  integer NOT NULL DEFAULT 0,
    ADD COLUMN group_count integer NOT NULL DEFAULT 0;

CREATE INDEX tenants_created_idx ON tenants (created_at, id);
CREATE INDEX tenants_name_idx ON tenants (lower(display_name), id);
CREATE INDEX tenants_last_sync_idx ON tenants (coalesce(last_synced_at, '-infinity'::timestamptz), id);
CREATE INDEX tenants_failures_idx ON tenants (failure_count, id);
CREATE INDEX tenants_size_idx ON tenants (user_count, id);
CREATE INDEX tenants_status_created_idx ON tenants (status, created_at, id);
CREATE INDEX tenants_domains_idx ON tenants USING gin (domains);
CREATE INDEX tenants_name_trgm_idx ON tenants USING gin (display_name gin_trgm_ops);

-- +goose Down
DROP INDEX tenants_name_trgm_idx;
DROP INDEX tenants_domains_idx;
DROP INDEX tenants_status_created_idx;
DROP INDEX tenants_size_idx;
DROP INDEX tenants_failures_idx;
DROP INDEX tenants_last_sync_idx;
DROP INDEX tenants_name_idx;
DROP INDEX tenants_created_idx;
ALTER TABLE tenants DROP COLUMN group_count, DROP COLUMN user_count;
