-- A full round that started on an empty copy (the first sync after
-- consent, or the first after a purge) writes its pages straight into the
-- directory tables with COPY instead of staging and upserting them (issue
-- 13, internal/postgres/directory_bulk.go). Whether it did is decided at
-- its first page and kept with its checkpoint, so a round that is
-- interrupted and resumed goes on the same way.
-- +goose Up
ALTER TABLE sync_state ADD COLUMN bulk boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE sync_state DROP COLUMN bulk;
