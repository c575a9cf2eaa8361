package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// TenantCountByStatus counts tenants per status, every status present.
func (s *Store) TenantCountByStatus(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	for _, st := range domain.TenantStatuses {
		out[string(st)] = 0
	}
	if err := s.countBy(ctx, `SELECT status, count(*) FROM tenants GROUP BY status`, out); err != nil {
		return nil, fmt.Errorf("count tenants: %w", err)
	}
	return out, nil
}

// JobCountByState counts River jobs per state.
func (s *Store) JobCountByState(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	for _, st := range []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"} {
		out[st] = 0
	}
	if err := s.countBy(ctx, `SELECT state::text, count(*) FROM river_job GROUP BY state`, out); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}

func (s *Store) countBy(ctx context.Context, sql string, out map[string]float64) error {
	rows, err := s.db.Query(ctx, sql)
	if err != nil {
		return err
	}
	var (
		k string
		n int64
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &n}, func() error { out[k] = float64(n); return nil })
	return err
}
