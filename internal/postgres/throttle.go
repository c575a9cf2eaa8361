package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const tenantThrottledUntilGet = `SELECT graph_throttled_until FROM tenants WHERE id = $1`

// TenantThrottledUntil returns the end of the tenant's Graph throttle
// window, or the zero time when it has none or the tenant is unknown (an
// unknown tenant has no window to honour). It makes *Store a graph.Gate.
func (s *Store) TenantThrottledUntil(ctx context.Context, id string) (time.Time, error) {
	if !domain.IsGUID(id) {
		return time.Time{}, nil
	}
	var until *time.Time
	err := s.db.QueryRow(ctx, tenantThrottledUntilGet, id).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) || until == nil {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("get throttle window of tenant %s: %w", id, err)
	}
	return *until, nil
}

// GREATEST ignores NULL: a later window already recorded by another
// process is never moved earlier.
const tenantThrottle = `UPDATE tenants SET graph_throttled_until = GREATEST(graph_throttled_until, $2)
	WHERE id = $1`

// TenantThrottle records that Graph asked for no request for the tenant
// before until. An unknown tenant is not an error: there is no row to hold
// its window.
func (s *Store) TenantThrottle(ctx context.Context, id string, until time.Time) error {
	if !domain.IsGUID(id) {
		return nil
	}
	if _, err := s.db.Exec(ctx, tenantThrottle, id, ceilMicrosecond(until)); err != nil {
		return fmt.Errorf("record throttle window of tenant %s: %w", id, err)
	}
	return nil
}

// ceilMicrosecond rounds t up to timestamptz's precision, so that storing a
// window never ends it early.
func ceilMicrosecond(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}
