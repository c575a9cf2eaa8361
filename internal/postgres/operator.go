package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// TenantGetForUpdate returns one tenant and locks its row until the
// transaction ends, so concurrent actions on it serialize.
func (s *Store) TenantGetForUpdate(ctx context.Context, id string) (domain.Tenant, error) {
	if !domain.IsGUID(id) {
		return domain.Tenant{}, fmt.Errorf("get tenant %q: %w", id, domain.ErrNotFound)
	}
	rows, err := s.db.Query(ctx, tenantGet+" FOR UPDATE", id)
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[domain.Tenant])
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("get tenant %s: %w", id, notFound(err))
	}
	return t, nil
}

const tenantSetSuspended = `UPDATE tenants SET sync_suspended = $2, updated_at = $3 WHERE id = $1 AND sync_suspended <> $2`

// TenantSetSuspended sets whether periodic syncs skip the tenant and says
// whether anything changed.
func (s *Store) TenantSetSuspended(ctx context.Context, id string, suspended bool) (bool, error) {
	if _, err := s.TenantGetForUpdate(ctx, id); err != nil {
		return false, err
	}
	tag, err := s.db.Exec(ctx, tenantSetSuspended, id, suspended, s.now().UTC())
	if err != nil {
		return false, fmt.Errorf("suspend tenant %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
