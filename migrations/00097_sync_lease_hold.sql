-- The sync lease check as a statement that fails (issue 13). Every page a
-- sync commits first extends its tenant's lease, and must change nothing if
-- another job took the tenant meanwhile (internal/postgres/sync_lease.go).
-- As an UPDATE whose row count the client checks, that needs an explicit
-- transaction the client can roll back: BEGIN and COMMIT, two more round
-- trips per page. sync_lease_hold raises instead, so a page with nothing to
-- COPY is sent as one batch, which Postgres runs as one implicit
-- transaction (one round trip): a lost lease aborts it server-side, with
-- every statement after it.
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION sync_lease_hold(tenant uuid, owner uuid, until timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenants SET sync_lease_until = until WHERE id = tenant AND sync_lease_owner = owner;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the sync lease of tenant % is held by another job', tenant USING ERRCODE = 'TS409';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sync_lease_hold(uuid, uuid, timestamptz);
