package postgres

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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

const connectStateTake = `DELETE FROM connect_states WHERE state_hash = $1 RETURNING binding_hash, issued_at`

// ConnectStateTake deletes a connect state whoever presents it, so it is
// used once even under concurrent requests, and returns when it was issued
// if it was bound to binding.
func (s *Store) ConnectStateTake(ctx context.Context, state, binding string) (time.Time, bool, error) {
	sh, bh := sha256.Sum256([]byte(state)), sha256.Sum256([]byte(binding))
	var stored []byte
	var issued time.Time
	err := s.db.QueryRow(ctx, connectStateTake, sh[:]).Scan(&stored, &issued)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("take connect state: %w", err)
	}
	if binding == "" || subtle.ConstantTimeCompare(stored, bh[:]) != 1 {
		return time.Time{}, false, nil
	}
	return issued, true, nil
}
