-- A tenant's directory copy, its sync checkpoints and its sync history.
-- +goose Up
CREATE TABLE directory_users (
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                  uuid NOT NULL,
    user_principal_name text NOT NULL DEFAULT '',
    display_name        text NOT NULL DEFAULT '',
    given_name          text NOT NULL DEFAULT '',
    surname             text NOT NULL DEFAULT '',
    mail                text NOT NULL DEFAULT '',
    job_title           text NOT NULL DEFAULT '',
    account_enabled     boolean NOT NULL DEFAULT true,
    -- the full round that last saw the row; a full round deletes the rows it did not see
    seen_round          bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE directory_groups (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    display_name text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    seen_round   bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE group_members (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_id   uuid NOT NULL,
    member_id  uuid NOT NULL,
    seen_round bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, group_id, member_id)
);

CREATE TABLE sync_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('full', 'delta')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    pages           integer NOT NULL DEFAULT 0,
    upserts         integer NOT NULL DEFAULT 0,
    deletes         integer NOT NULL DEFAULT 0,
    requests        integer NOT NULL DEFAULT 0,
    throttled_waits integer NOT NULL DEFAULT 0,
    throttled_ms    bigint NOT NULL DEFAULT 0,
    outcome         text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'succeeded', 'failed', 'snoozed')),
    error           text NOT NULL DEFAULT '',
    error_code      text NOT NULL DEFAULT ''
);

CREATE INDEX sync_runs_tenant_idx ON sync_runs (tenant_id, started_at DESC, id DESC);

-- Where each resource's sync stands: the page link to resume from (nextLink)
-- or the deltaLink of the last completed round.
CREATE TABLE sync_state (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource   text NOT NULL CHECK (resource IN ('users', 'groups')),
    link       text NOT NULL DEFAULT '',
    link_kind  text NOT NULL DEFAULT '' CHECK (link_kind IN ('', 'next', 'delta')),
    round      bigint NOT NULL DEFAULT 0,
    round_kind text NOT NULL DEFAULT 'full' CHECK (round_kind IN ('full', 'delta')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, resource)
);

-- +goose Down
DROP TABLE sync_state;
DROP TABLE sync_runs;
DROP TABLE group_members;
DROP TABLE directory_groups;
DROP TABLE directory_users;
