package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const syncRunColumns = `id, tenant_id::text, kind, started_at, finished_at, pages, upserts, deletes, requests,
	throttled_waits, throttled_ms, outcome, error, error_code`

const syncRunList = `SELECT ` + syncRunColumns + ` FROM sync_runs WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2`

// SyncRunList returns a tenant's newest sync runs first.
func (s *Store) SyncRunList(ctx context.Context, tenantID string, limit int) ([]domain.SyncRun, error) {
	rows, err := s.db.Query(ctx, syncRunList, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("sync runs of tenant %s: %w", tenantID, err)
	}
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.SyncRun])
	if err != nil {
		return nil, fmt.Errorf("sync runs of tenant %s: %w", tenantID, err)
	}
	return runs, nil
}

const directoryCounts = `SELECT
	(SELECT count(*) FROM directory_users WHERE tenant_id = $1) AS users,
	(SELECT count(*) FROM directory_groups WHERE tenant_id = $1) AS groups,
	(SELECT count(*) FROM group_members WHERE tenant_id = $1) AS memberships`

// DirectoryCounts sizes a tenant's directory copy.
func (s *Store) DirectoryCounts(ctx context.Context, tenantID string) (domain.DirectoryCounts, error) {
	var c domain.DirectoryCounts
	if err := s.db.QueryRow(ctx, directoryCounts, tenantID).Scan(&c.Users, &c.Groups, &c.Memberships); err != nil {
		return c, fmt.Errorf("directory counts of tenant %s: %w", tenantID, err)
	}
	return c, nil
}
