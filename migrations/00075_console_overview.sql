-- The operator console's fleet overview (issue 15): what it reads at
-- 100,000 tenants must come from summaries kept by triggers and small
-- index-walks, not from counting the tables.
-- +goose Up

-- No tenant or run may be written between a summary's first count and its
-- trigger (the migration runs in one transaction; writers wait for it).
LOCK TABLE tenants, sync_runs IN SHARE ROW EXCLUSIVE MODE;

-- Tenants per status, kept by the statements that insert, move or delete
-- tenants: counting 100,000 rows on every render costs tens of ms. Only a
-- status change touches a counter row, so the writes of a sync (which
-- update the tenant but not its status) never wait on it.
CREATE TABLE tenant_status_counts (
    status text PRIMARY KEY,
    n      bigint NOT NULL
);
INSERT INTO tenant_status_counts (status, n)
SELECT s, (SELECT count(*) FROM tenants WHERE status = s)
FROM unnest(ARRAY['pending', 'active', 'failing', 'consent_revoked', 'insufficient_permissions', 'disconnected']) AS s;

-- Inserts and deletes count by statement (a bulk insert updates each
-- counter once); a status move counts by row, and only rows whose status
-- moved fire it, so the many updates that leave the status alone (sync
-- leases, the fan-out's next_sync_at) pay nothing.
-- +goose StatementBegin
CREATE FUNCTION tenant_status_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    st text[]; dn bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(status ORDER BY status), array_agg(n ORDER BY status) INTO st, dn
        FROM (SELECT status, count(*) AS n FROM new_rows GROUP BY status) AS d;
    ELSE
        SELECT array_agg(status ORDER BY status), array_agg(-n ORDER BY status) INTO st, dn
        FROM (SELECT status, count(*) AS n FROM old_rows GROUP BY status) AS d;
    END IF;
    IF st IS NULL THEN
        RETURN NULL;
    END IF;
    -- Counter rows are locked in one order, so that two writers cannot
    -- deadlock on them.
    PERFORM 1 FROM tenant_status_counts WHERE status = ANY (st) ORDER BY status FOR UPDATE;
    UPDATE tenant_status_counts c SET n = c.n + d.n FROM unnest(st, dn) AS d(status, n) WHERE c.status = d.status;
    RETURN NULL;
END
$$;

CREATE FUNCTION tenant_status_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tenant_status_counts WHERE status IN (OLD.status, NEW.status) ORDER BY status FOR UPDATE;
    UPDATE tenant_status_counts SET n = n + CASE WHEN status = NEW.status THEN 1 ELSE -1 END
    WHERE status IN (OLD.status, NEW.status);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER tenants_status_counts_insert AFTER INSERT ON tenants
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tenant_status_counts_apply();
CREATE TRIGGER tenants_status_counts_update AFTER UPDATE OF status ON tenants
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION tenant_status_counts_move();
CREATE TRIGGER tenants_status_counts_delete AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tenant_status_counts_apply();

-- Tenants failing or needing their customer's admin, most recent change
-- first; a few percent of the fleet at most, so the index stays small.
CREATE INDEX tenants_attention_idx ON tenants (status_changed_at DESC, id DESC)
    WHERE status IN ('failing', 'consent_revoked', 'insufficient_permissions');

-- Sync lag of active tenants that sync: the time since the last successful
-- sync, or since activation for one never synced yet. The percentiles and
-- the worst ten read this index only: its columns are included because an
-- index-only scan returns columns, not index expressions.
CREATE INDEX tenants_lag_idx ON tenants ((coalesce(last_synced_at, status_changed_at)), id)
    INCLUDE (last_synced_at, status_changed_at) WHERE status = 'active' AND NOT sync_suspended;

-- Tenants inside a Graph throttle window right now (a handful at a time).
CREATE INDEX tenants_throttled_idx ON tenants (graph_throttled_until)
    WHERE graph_throttled_until IS NOT NULL;

-- Sync runs per hour (of started_at, in UTC) and outcome, with the throttled
-- and token-failed among them, kept by the statements that write sync_runs:
-- at 100,000 tenants syncing hourly a day holds 2.4 million runs, too many
-- to count per render. Runs are started and finished in their own short
-- statements, so the counter rows are locked only for that long.
CREATE TABLE sync_run_hours (
    hour         timestamptz NOT NULL,
    outcome      text NOT NULL,
    runs         bigint NOT NULL DEFAULT 0,
    throttled    bigint NOT NULL DEFAULT 0,
    token_failed bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, outcome)
);

-- What counts as throttled and as a refused token; the console says the
-- same words (internal/postgres/overview.go).
-- +goose StatementBegin
CREATE FUNCTION sync_run_throttled(r sync_runs) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT r.throttled_waits > 0 OR (r.outcome = 'snoozed' AND r.error_code IN ('TooManyRequests', 'activityLimitReached', 'tenantThrottled'))
$$;
CREATE FUNCTION sync_run_token_failed(r sync_runs) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT r.outcome IN ('failed', 'snoozed') AND r.error_code LIKE 'AADSTS%'
$$;
-- +goose StatementEnd

INSERT INTO sync_run_hours (hour, outcome, runs, throttled, token_failed)
SELECT date_trunc('hour', started_at, 'UTC'), outcome, count(*),
    count(*) FILTER (WHERE sync_run_throttled(r)), count(*) FILTER (WHERE sync_run_token_failed(r))
FROM sync_runs r GROUP BY 1, 2;

-- Each event's transition tables are the only ones that exist while it
-- runs, so each event has its own statement; an update adds the new rows
-- and takes away the old, and a row that did not move cancels out.
-- +goose StatementBegin
CREATE FUNCTION sync_run_hours_add(d_hour timestamptz[], d_outcome text[], d_runs bigint[], d_throttled bigint[], d_token bigint[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO sync_run_hours AS h (hour, outcome, runs, throttled, token_failed)
    SELECT hour, outcome, sum(runs), sum(throttled), sum(token_failed)
    FROM unnest(d_hour, d_outcome, d_runs, d_throttled, d_token) AS d(hour, outcome, runs, throttled, token_failed)
    GROUP BY hour, outcome
    HAVING sum(runs) <> 0 OR sum(throttled) <> 0 OR sum(token_failed) <> 0
    ORDER BY hour, outcome -- one lock order for concurrent writers
    ON CONFLICT (hour, outcome) DO UPDATE SET runs = h.runs + excluded.runs,
        throttled = h.throttled + excluded.throttled, token_failed = h.token_failed + excluded.token_failed
$$;

CREATE FUNCTION sync_run_hours_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hs timestamptz[]; os text[]; rs bigint[]; ts bigint[]; ks bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(date_trunc('hour', n.started_at, 'UTC')), array_agg(n.outcome), array_agg(1::bigint),
            array_agg(sync_run_throttled(n)::int::bigint), array_agg(sync_run_token_failed(n)::int::bigint)
        INTO hs, os, rs, ts, ks FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(date_trunc('hour', o.started_at, 'UTC')), array_agg(o.outcome), array_agg(-1::bigint),
            array_agg(-sync_run_throttled(o)::int::bigint), array_agg(-sync_run_token_failed(o)::int::bigint)
        INTO hs, os, rs, ts, ks FROM old_rows o;
    ELSE
        SELECT array_agg(d.hour), array_agg(d.outcome), array_agg(d.runs), array_agg(d.throttled), array_agg(d.token)
        INTO hs, os, rs, ts, ks
        FROM (
            SELECT date_trunc('hour', n.started_at, 'UTC') AS hour, n.outcome, 1::bigint AS runs,
                sync_run_throttled(n)::int::bigint AS throttled, sync_run_token_failed(n)::int::bigint AS token
            FROM new_rows n
            UNION ALL
            SELECT date_trunc('hour', o.started_at, 'UTC'), o.outcome, -1, -sync_run_throttled(o)::int, -sync_run_token_failed(o)::int
            FROM old_rows o
        ) AS d;
    END IF;
    IF hs IS NOT NULL THEN
        PERFORM sync_run_hours_add(hs, os, rs, ts, ks);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sync_runs_hours_insert AFTER INSERT ON sync_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sync_run_hours_apply();
CREATE TRIGGER sync_runs_hours_update AFTER UPDATE ON sync_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sync_run_hours_apply();
CREATE TRIGGER sync_runs_hours_delete AFTER DELETE ON sync_runs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sync_run_hours_apply();

-- The few throttled or token-failed runs, for how many tenants they touch,
-- from the index alone.
CREATE INDEX sync_runs_trouble_idx ON sync_runs (started_at) INCLUDE (tenant_id, outcome, throttled_waits, error_code)
    WHERE throttled_waits > 0 OR (outcome = 'snoozed' AND error_code IN ('TooManyRequests', 'activityLimitReached', 'tenantThrottled'))
        OR (outcome IN ('failed', 'snoozed') AND error_code LIKE 'AADSTS%');

-- +goose Down
DROP INDEX sync_runs_trouble_idx;
DROP TRIGGER sync_runs_hours_delete ON sync_runs;
DROP TRIGGER sync_runs_hours_update ON sync_runs;
DROP TRIGGER sync_runs_hours_insert ON sync_runs;
DROP FUNCTION sync_run_hours_apply();
DROP FUNCTION sync_run_hours_add(timestamptz[], text[], bigint[], bigint[], bigint[]);
DROP FUNCTION sync_run_token_failed(sync_runs);
DROP FUNCTION sync_run_throttled(sync_runs);
DROP TABLE sync_run_hours;
DROP INDEX tenants_throttled_idx;
DROP INDEX tenants_lag_idx;
DROP INDEX tenants_attention_idx;
DROP TRIGGER tenants_status_counts_delete ON tenants;
DROP TRIGGER tenants_status_counts_update ON tenants;
DROP TRIGGER tenants_status_counts_insert ON tenants;
DROP FUNCTION tenant_status_counts_move();
DROP FUNCTION tenant_status_counts_apply();
DROP TABLE tenant_status_counts;
