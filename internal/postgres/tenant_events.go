package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const tenantEventAdd = `
INSERT INTO tenant_events (tenant_id, at, kind, from_status, to_status, reason, actor)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

// TenantEventAdd appends one entry to a tenant's history.
func (s *Store) TenantEventAdd(ctx context.Context, ev domain.TenantEvent) error {
	if ev.At.IsZero() {
		ev.At = s.now().UTC()
	}
	if _, err := s.db.Exec(ctx, tenantEventAdd, ev.TenantID, ev.At, ev.Kind, ev.FromStatus, ev.ToStatus, ev.Reason, ev.Actor); err != nil {
		return fmt.Errorf("add event for tenant %s: %w", ev.TenantID, err)
	}
	return nil
}

const tenantEventList = `
SELECT id, tenant_id::text, at, kind, from_status, to_status, reason, actor
FROM tenant_events WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2`

// TenantEvents returns a tenant's newest events first.
func (s *Store) TenantEvents(ctx context.Context, id string, limit int) ([]domain.TenantEvent, error) {
	rows, err := s.db.Query(ctx, tenantEventList, id, limit)
	if err != nil {
		return nil, fmt.Errorf("events of tenant %s: %w", id, err)
	}
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.TenantEvent])
	if err != nil {
		return nil, fmt.Errorf("events of tenant %s: %w", id, err)
	}
	return evs, nil
}
