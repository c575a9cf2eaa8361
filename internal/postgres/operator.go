package postgres

import (
	"context"
	"fmt"
)

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
