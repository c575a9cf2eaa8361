package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// The worker's writes to tenants: verification results, sync outcomes, the
// due list of the periodic fan-out.

const tenantSetOrganization = `
UPDATE tenants SET display_name = $2, domains = $3, granted_roles = $4, updated_at = $5 WHERE id = $1`

// TenantSetOrganization stores what verification learned: the tenant's
// display name, verified domains and the Graph roles its token carries.
func (s *Store) TenantSetOrganization(ctx context.Context, id, displayName string, domains, roles []string) error {
	if domains == nil {
		domains = []string{}
	}
	if roles == nil {
		roles = []string{}
	}
	tag, err := s.db.Exec(ctx, tenantSetOrganization, id, displayName, domains, roles, s.now().UTC())
	if err != nil {
		return fmt.Errorf("set organization of tenant %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set organization of tenant %s: %w", id, domain.ErrNotFound)
	}
	return nil
}

const tenantSyncSucceeded = `
UPDATE tenants SET last_synced_at = $2, next_sync_at = $3, failure_count = 0, updated_at = $2,
	user_count = (SELECT count(*) FROM directory_users WHERE tenant_id = $1),
	group_count = (SELECT count(*) FROM directory_groups WHERE tenant_id = $1)
WHERE id = $1
RETURNING status`

// TenantSyncSucceeded records a successful sync: the next one is due at
// next, the failure count resets and a failing tenant is active again.
func (s *Store) TenantSyncSucceeded(ctx context.Context, id string, next time.Time) error {
	now := s.now().UTC()
	return s.Tx(ctx, func(_ pgx.Tx, st *Store) error {
		var status domain.TenantStatus
		if err := st.db.QueryRow(ctx, tenantSyncSucceeded, id, now, next.UTC()).Scan(&status); err != nil {
			return fmt.Errorf("record sync of tenant %s: %w", id, notFound(err))
		}
		if status == domain.TenantFailing {
			return st.TenantSetStatus(ctx, id, domain.TenantActive, "sync succeeded", "worker")
		}
		return nil
	})
}

const tenantSyncFailed = `
UPDATE tenants SET failure_count = failure_count + 1, updated_at = $2 WHERE id = $1
RETURNING status, failure_count`

// TenantSyncFailed counts a failed sync of an active or failing tenant:
// it becomes failing with reason, and next(failures) sets when the next
// sync is due (the caller's backoff). It returns the new failure count.
func (s *Store) TenantSyncFailed(ctx context.Context, id, reason string, next func(failures int) time.Time) (int, error) {
	now := s.now().UTC()
	var failures int
	err := s.Tx(ctx, func(_ pgx.Tx, st *Store) error {
		var status domain.TenantStatus
		if err := st.db.QueryRow(ctx, tenantSyncFailed, id, now).Scan(&status, &failures); err != nil {
			return fmt.Errorf("record failed sync of tenant %s: %w", id, notFound(err))
		}
		if _, err := st.db.Exec(ctx, `UPDATE tenants SET next_sync_at = $2 WHERE id = $1`, id, next(failures).UTC()); err != nil {
			return fmt.Errorf("record failed sync of tenant %s: %w", id, err)
		}
		if status.Syncs() {
			return st.TenantSetStatus(ctx, id, domain.TenantFailing, reason, "worker")
		}
		return nil
	})
	return failures, err
}

// TenantSetNextSync sets when the tenant's next sync is due.
func (s *Store) TenantSetNextSync(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE tenants SET next_sync_at = $2 WHERE id = $1`, id, at.UTC()); err != nil {
		return fmt.Errorf("set next sync of tenant %s: %w", id, err)
	}
	return nil
}

const tenantClaimDue = `
UPDATE tenants SET next_sync_at = $2
WHERE id IN (
	SELECT id FROM tenants
	WHERE status IN ('active', 'failing') AND NOT sync_suspended AND (next_sync_at IS NULL OR next_sync_at <= $1)
	ORDER BY next_sync_at NULLS FIRST, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED)
RETURNING id::text`

// TenantClaimDue moves up to limit due tenants' next_sync_at to lease and
// returns their IDs: the fan-out enqueues each once, and the sync sets the
// real next time when it ends.
func (s *Store) TenantClaimDue(ctx context.Context, now, lease time.Time, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, tenantClaimDue, now.UTC(), lease.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim due tenants: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("claim due tenants: %w", err)
	}
	return ids, nil
}
