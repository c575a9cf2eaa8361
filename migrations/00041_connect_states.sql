-- Pending admin-consent states of the portal's connect flow: single use
-- (deleted on first use), bound to the browser session that started it.
-- Only a SHA-256 of each value is stored.
-- +goose Up
CREATE TABLE connect_states (
    state_hash   bytea PRIMARY KEY,
    binding_hash bytea NOT NULL,
    issued_at    timestamptz NOT NULL
);

CREATE INDEX connect_states_issued_idx ON connect_states (issued_at);

-- +goose Down
DROP TABLE connect_states;
