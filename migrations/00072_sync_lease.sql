-- A tenant's sync is claimed by a lease instead of a session advisory lock:
-- the claim lives in the row, is extended by every page the sync commits, and
-- lapses by itself when its worker dies, holding no connection meanwhile.
-- A forced full round remembers the job that started it, so the job resumes
-- its round after a snooze or a retry instead of starting over.
-- +goose Up
ALTER TABLE tenants
    ADD COLUMN sync_lease_owner uuid,
    ADD COLUMN sync_lease_until timestamptz;

ALTER TABLE sync_state ADD COLUMN full_job bigint NOT NULL DEFAULT 0;

ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_outcome_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'snoozed', 'abandoned'));

-- Runs left running by a dead worker are found and closed by this index.
CREATE INDEX sync_runs_running_idx ON sync_runs (tenant_id) WHERE outcome = 'running';

-- +goose Down
DROP INDEX sync_runs_running_idx;
UPDATE sync_runs SET outcome = 'failed' WHERE outcome = 'abandoned';
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_outcome_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'snoozed'));
ALTER TABLE sync_state DROP COLUMN full_job;
ALTER TABLE tenants DROP COLUMN sync_lease_until, DROP COLUMN sync_lease_owner;
