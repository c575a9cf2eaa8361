-- Search fields of the operator listing, kept apart from tenants: the GIN
-- indexes cost every write to a tenant row (status, sync times and counts
-- change often and are indexed, so no update is HOT), while names and
-- domains change rarely. A trigger keeps the copy current.
-- +goose Up
CREATE TABLE tenant_search (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    display_name text NOT NULL DEFAULT '',
    domains      text[] NOT NULL DEFAULT '{}'
);

INSERT INTO tenant_search (tenant_id, display_name, domains) SELECT id, display_name, domains FROM tenants;

CREATE INDEX tenant_search_domains_idx ON tenant_search USING gin (domains);
CREATE INDEX tenant_search_name_trgm_idx ON tenant_search USING gin (display_name gin_trgm_ops);

DROP INDEX tenants_domains_idx;
DROP INDEX tenants_name_trgm_idx;

-- +goose StatementBegin
CREATE FUNCTION tenant_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_search (tenant_id, display_name, domains)
    VALUES (NEW.id, NEW.display_name, NEW.domains)
    ON CONFLICT (tenant_id) DO UPDATE SET display_name = EXCLUDED.display_name, domains = EXCLUDED.domains
    WHERE (tenant_search.display_name, tenant_search.domains) IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.domains);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER tenant_search_insert AFTER INSERT ON tenants FOR EACH ROW EXECUTE FUNCTION tenant_search_sync();
CREATE TRIGGER tenant_search_update AFTER UPDATE OF display_name, domains ON tenants FOR EACH ROW EXECUTE FUNCTION tenant_search_sync();

-- +goose Down
DROP TRIGGER tenant_search_update ON tenants;
DROP TRIGGER tenant_search_insert ON tenants;
DROP FUNCTION tenant_search_sync();
CREATE INDEX tenants_domains_idx ON tenants USING gin (domains);
CREATE INDEX tenants_name_trgm_idx ON tenants USING gin (display_name gin_trgm_ops);
DROP TABLE tenant_search;
