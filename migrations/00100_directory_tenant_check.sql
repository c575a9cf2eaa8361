-- The directory tables' reference to their tenant, checked once per
-- statement instead of once per row (issue 13).
--
-- A foreign key checks each inserted row with a query of its own: about 5
-- µs a row. An INSERT of a page of 50 users took 0.59 ms with the key and
-- 0.33 without (the page's column arrays, one implicit transaction each,
-- 400 tenants), and an INSERT of 100,000 users 575–677 ms with it and
-- 359–370 ms without (psql \timing), on the project's 2-core machine. These
-- three tables take nearly every row a sync writes. Their keys are replaced
-- by what they did, per statement:
-- - inserting rows checks, after the statement (COPY included), that every
--   tenant they name exists, and locks those tenants' rows FOR KEY SHARE
--   until the transaction ends, as the key's check did, so a tenant cannot
--   be deleted under a page being written;
-- - a directory row's tenant_id never changes (no statement sets it; a row
--   trigger on that column refuses it, at no cost to other updates);
-- - deleting tenants deletes their directory rows (ON DELETE CASCADE).
-- The other tables referencing tenants keep their keys: few rows each.
-- +goose Up
ALTER TABLE directory_users DROP CONSTRAINT directory_users_tenant_id_fkey;
ALTER TABLE directory_groups DROP CONSTRAINT directory_groups_tenant_id_fkey;
ALTER TABLE group_members DROP CONSTRAINT group_members_tenant_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION directory_tenant_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
    found bigint;
BEGIN
    -- One probe of tenants' primary key per tenant named (usually one):
    -- new_rows has no statistics, and a join the planner chose freely
    -- scanned the whole of tenants.
    SELECT count(*), count(t.found) INTO named, found
    FROM (SELECT DISTINCT tenant_id FROM new_rows) n
    LEFT JOIN LATERAL (SELECT true AS found FROM tenants WHERE id = n.tenant_id FOR KEY SHARE) t ON true;
    IF found <> named THEN
        RAISE EXCEPTION 'insert on table "%" violates its reference to tenants', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', DETAIL = 'A tenant_id is not present in table "tenants".';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION directory_tenant_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION 'the tenant_id of a row of table "%" does not change', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION directory_tenant_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM group_members WHERE tenant_id IN (SELECT id FROM old_rows);
    DELETE FROM directory_groups WHERE tenant_id IN (SELECT id FROM old_rows);
    DELETE FROM directory_users WHERE tenant_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER directory_users_tenant AFTER INSERT ON directory_users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION directory_tenant_check();
CREATE TRIGGER directory_groups_tenant AFTER INSERT ON directory_groups
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION directory_tenant_check();
CREATE TRIGGER group_members_tenant AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION directory_tenant_check();
CREATE TRIGGER directory_users_tenant_fixed BEFORE UPDATE OF tenant_id ON directory_users
    FOR EACH ROW EXECUTE FUNCTION directory_tenant_fixed();
CREATE TRIGGER directory_groups_tenant_fixed BEFORE UPDATE OF tenant_id ON directory_groups
    FOR EACH ROW EXECUTE FUNCTION directory_tenant_fixed();
CREATE TRIGGER group_members_tenant_fixed BEFORE UPDATE OF tenant_id ON group_members
    FOR EACH ROW EXECUTE FUNCTION directory_tenant_fixed();
CREATE TRIGGER tenants_directory_cascade AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION directory_tenant_cascade();

-- +goose Down
DROP TRIGGER tenants_directory_cascade ON tenants;
DROP TRIGGER directory_users_tenant ON directory_users;
DROP TRIGGER directory_groups_tenant ON directory_groups;
DROP TRIGGER group_members_tenant ON group_members;
DROP TRIGGER directory_users_tenant_fixed ON directory_users;
DROP TRIGGER directory_groups_tenant_fixed ON directory_groups;
DROP TRIGGER group_members_tenant_fixed ON group_members;
DROP FUNCTION directory_tenant_cascade();
DROP FUNCTION directory_tenant_fixed();
DROP FUNCTION directory_tenant_check();
ALTER TABLE directory_users ADD CONSTRAINT directory_users_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE directory_groups ADD CONSTRAINT directory_groups_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE group_members ADD CONSTRAINT group_members_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
