-- Cheaper events (issue 14). The change feed's bulk, the directory's
-- events, no longer store an id with a unique index of its own, which cost
-- a full sync into an empty copy most of what the feed adds to it
-- (docs/events.md, Cost): they are written with a NULL id, and their
-- public id is change_event_id(xid, seq), a version-8 uuid holding both
-- numbers — unique because (xid, seq) is the primary key, and the same
-- every time it is read. Other writers (tenant lifecycle events, a few a
-- day) still get a random version-4 uuid from the column's default, as did
-- every event written before this migration, which readers already hold;
-- only those are in the partial unique index, for lookups by id (a webhook
-- replay). The occurred_at index goes too: retention walks the feed in
-- (xid, seq) order, by the primary key.
--
-- Layout of a derived id, 32 hex digits: xid's 60 low bits as 12 digits,
-- the version digit 8, its last 3 digits, the variant digit 8, then seq's
-- 60 low bits as 15 digits. Both numbers stay far below 2^60 (xid8 counts
-- transactions since the cluster was created; seq counts events).
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION change_event_id(x xid8, s bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT (substr(h, 1, 12) || '8' || substr(h, 13, 3) || '8' || lpad(to_hex(s), 15, '0'))::uuid
	FROM (SELECT lpad(to_hex(x::text::bigint), 15, '0') AS h) p
$$;
-- +goose StatementEnd
ALTER TABLE change_events ALTER COLUMN id DROP NOT NULL;
CREATE UNIQUE INDEX change_events_stored_id_idx ON change_events (id) WHERE id IS NOT NULL;
DROP INDEX change_events_id_idx;
DROP INDEX change_events_occurred_idx;

-- +goose Down
UPDATE change_events SET id = change_event_id(xid, seq) WHERE id IS NULL;
ALTER TABLE change_events ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX change_events_id_idx ON change_events (id);
CREATE INDEX change_events_occurred_idx ON change_events (occurred_at);
DROP INDEX change_events_stored_id_idx;
DROP FUNCTION change_event_id(xid8, bigint);
