-- A first round's single page is inserted as it stands, with its creation
-- events, when the tenant's copy of the resource is empty
-- (internal/postgres/directory_insert.go). The page is one batch, one
-- implicit transaction; directory_assert_empty is its first write's guard,
-- raising when the copy is not empty after all, which aborts the batch
-- before anything commits (the pattern of 00097_sync_lease_hold.sql); the
-- page is then written by the statements that compare it with the copy.
-- Users: no user and no remembered soft delete (a user coming back is
-- user.restored). Groups: no group and no membership.
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION directory_assert_empty(tenant uuid, resource text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF resource = 'users' AND (EXISTS (SELECT FROM directory_users WHERE tenant_id = tenant)
            OR EXISTS (SELECT FROM directory_user_tombstones WHERE tenant_id = tenant))
        OR resource = 'groups' AND (EXISTS (SELECT FROM directory_groups WHERE tenant_id = tenant)
            OR EXISTS (SELECT FROM group_members WHERE tenant_id = tenant)) THEN
        RAISE EXCEPTION 'the % copy of tenant % is not empty', resource, tenant USING ERRCODE = 'TS412';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION directory_assert_empty(uuid, text);
