package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// connectStateKeep is how long unused connect states stay before they are
// swept; far longer than any state may live (10 min), so the sweep never
// decides validity.
const connectStateKeep = 24 * time.Hour

const connectStatePut = `INSERT INTO connect_states (state_hash, binding_hash, issued_at) VALUES ($1, $2, $3)`

const connectStateSweep = `DELETE FROM connect_states WHERE issued_at < $1`

// ConnectStatePut stores a connect state bound to a session binding; only
// hashes of both reach the database. Old unused states are swept.
func (s *Store) ConnectStatePut(ctx context.Context, state, binding string, issued time.Time) error {
	sh, bh := sha256.Sum256([]byte(state)), sha256.Sum256([]byte(binding))
	if _, err := s.db.Exec(ctx, connectStatePut, sh[:], bh[:], issued.UTC()); err != nil {
		return fmt.Errorf("put connect state: %w", err)
	}
	if _, err := s.db.Exec(ctx, connectStateSweep, issued.Add(-connectStateKeep)); err != nil {
		return fmt.Errorf("sweep connect states: %w", err)
	}
	return nil
}

// stateTake spends a state whoever presents it and says whether the binding
// held it within the window; its parameters are numbered from %[1]d
// (state hash, binding hash, not before, not after), so it also serves as a
// CTE of a larger statement.
const stateTake = `DELETE FROM connect_states WHERE state_hash = $%[1]d
RETURNING binding_hash = $%[2]d AND issued_at BETWEEN $%[3]d AND $%[4]d AS held`

var connectStateTake = fmt.Sprintf(stateTake, 1, 2, 3, 4)

// ConnectStateTake deletes a connect state whoever presents it, so it is
// used once even under concurrent requests, and reports whether binding
// held it with an issue time in [notBefore, notAfter].
func (s *Store) ConnectStateTake(ctx context.Context, state, binding string, notBefore, notAfter time.Time) (bool, error) {
	sh, bh := sha256.Sum256([]byte(state)), sha256.Sum256([]byte(binding))
	var held bool
	err := s.db.QueryRow(ctx, connectStateTake, sh[:], bh[:], notBefore.UTC(), notAfter.UTC()).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take connect state: %w", err)
	}
	return held && binding != "", nil
}

// connectStateTakeConsent is stateTake ($7–$10) followed, only when the
// state was held, by the consent of consentFrom ($1–$6).
var connectStateTakeConsent = "WITH taken AS (" + fmt.Sprintf(stateTake, 7, 8, 9, 10) + "), " +
	fmt.Sprintf(consentFrom, "FROM taken WHERE held")

// ConnectStateTakeConsent is ConnectStateTake and, when binding held the
// state, TenantUpsertConsented, in one statement and one round trip. held
// says whether the consent was recorded.
func (s *Store) ConnectStateTakeConsent(ctx context.Context, state, binding string, notBefore, notAfter time.Time, tenantID, by, byOID string) (t domain.Tenant, held bool, err error) {
	if binding == "" {
		ok, err := s.ConnectStateTake(ctx, state, binding, notBefore, notAfter)
		return domain.Tenant{}, ok, err
	}
	sh, bh := sha256.Sum256([]byte(state)), sha256.Sum256([]byte(binding))
	return s.consent(ctx, connectStateTakeConsent, tenantID, by, byOID, sh[:], bh[:], notBefore.UTC(), notAfter.UTC())
}
