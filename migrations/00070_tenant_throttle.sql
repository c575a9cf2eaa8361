-- The tenant's Graph throttle window (issue 11, defect 4): Graph throttles
-- per app and tenant (protocol §5.7), so the end of the last Retry-After
-- belongs to the tenant and is shared by every job and worker process; no
-- request for the tenant is sent before it. NULL means never throttled.
-- +goose Up
ALTER TABLE tenants ADD COLUMN graph_throttled_until timestamptz;

-- +goose Down
ALTER TABLE tenants DROP COLUMN graph_throttled_until;
