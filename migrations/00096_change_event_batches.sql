-- Creation events of a bulk page, 128 to a row (issue 14, docs/events.md,
-- Cost). A first sync writes one creation event per user, group and
-- membership; one row each made the feed cost more than the copy it
-- describes (a parsed jsonb value and two index entries per event). A bulk
-- page (internal/postgres/directory_bulk.go) now writes its events as rows
-- of 128 (a row may hold up to 1,024): batch holds them as a json array,
-- stored as written and compressed (lz4 where the server has it), n says
-- how many. Every element must also be valid jsonb (no \u0000, no lone
-- surrogate): readers cast each one, so the writer guarantees it.
-- Every other event stays one row with its object in data.
--
-- Positions stay (xid, seq) pairs, one per event: seq now steps by 1,024,
-- and the k-th event (from 0) of a batch row at seq s is at (xid, s + k),
-- so no two events share a position and a transaction's events keep the
-- order they were written in. Rows written before this migration keep their
-- seq (they hold one event each). change_feed is the feed one event per
-- row; readers that need the indexes (internal/postgres/change_events.go)
-- bound the row's seq as well: an event at (x, p) is in the row at
-- (x, s) with p - 1024 < s <= p.
--
-- Upgrading: a server or worker from before this migration reads
-- change_events directly and would misread batch rows (one event, no
-- object); upgrade every process before a first sync writes one.
-- +goose Up
ALTER TABLE change_events ALTER COLUMN data DROP NOT NULL;
ALTER TABLE change_events ADD COLUMN n integer, ADD COLUMN batch json;
-- A batch row has no stored id (its events' ids are derived) and an array.
ALTER TABLE change_events ADD CONSTRAINT change_events_one_form CHECK (
    CASE WHEN batch IS NULL THEN n IS NULL AND data IS NOT NULL
    ELSE data IS NULL AND id IS NULL AND n IS NOT NULL AND n BETWEEN 1 AND 1024
        AND json_typeof(batch) = 'array' END);
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE change_events ALTER COLUMN batch SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'change_events.batch keeps the default compression: %', SQLERRM;
END
$$;
-- +goose StatementEnd
ALTER TABLE change_events ALTER COLUMN seq SET INCREMENT BY 1024;
SELECT setval(pg_get_serial_sequence('change_events', 'seq'), (coalesce(max(seq), 0) / 1024 + 1) * 1024, false)
FROM change_events;

CREATE VIEW change_feed AS
SELECT e.xid, e.seq AS row_seq, e.seq + o.k AS seq,
    coalesce(e.id, change_event_id(e.xid, e.seq + o.k)) AS id,
    e.tenant_id, e.type, e.occurred_at, o.data
FROM change_events e
CROSS JOIN LATERAL (
    SELECT 0::bigint AS k, e.data AS data WHERE e.batch IS NULL
    UNION ALL
    SELECT a.i - 1, a.d::jsonb FROM json_array_elements(e.batch) WITH ORDINALITY AS a(d, i)
) o;

-- +goose Down
DROP VIEW change_feed;
WITH rows AS (DELETE FROM change_events WHERE batch IS NOT NULL RETURNING *)
INSERT INTO change_events (xid, seq, id, tenant_id, type, occurred_at, data) OVERRIDING SYSTEM VALUE
SELECT e.xid, e.seq + a.i - 1, NULL, e.tenant_id, e.type, e.occurred_at, a.d::jsonb
FROM rows e, json_array_elements(e.batch) WITH ORDINALITY AS a(d, i);
ALTER TABLE change_events DROP CONSTRAINT change_events_one_form;
ALTER TABLE change_events DROP COLUMN n, DROP COLUMN batch;
ALTER TABLE change_events ALTER COLUMN data SET NOT NULL;
ALTER TABLE change_events ALTER COLUMN seq SET INCREMENT BY 1;
