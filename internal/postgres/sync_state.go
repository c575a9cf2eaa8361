package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const syncStateList = `SELECT resource, link, link_kind, round, round_kind, full_job FROM sync_state WHERE tenant_id = $1 ORDER BY resource`

// SyncStateList returns a tenant's checkpoints, one per resource synced so far.
func (s *Store) SyncStateList(ctx context.Context, tenantID string) ([]domain.SyncCheckpoint, error) {
	rows, err := s.db.Query(ctx, syncStateList, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sync state of tenant %s: %w", tenantID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.SyncCheckpoint])
	if err != nil {
		return nil, fmt.Errorf("sync state of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

const syncStateSave = `
INSERT INTO sync_state (tenant_id, resource, link, link_kind, round, round_kind, full_job, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now())
ON CONFLICT (tenant_id, resource) DO UPDATE SET
	link = EXCLUDED.link, link_kind = EXCLUDED.link_kind, round = EXCLUDED.round,
	round_kind = EXCLUDED.round_kind, full_job = EXCLUDED.full_job, updated_at = EXCLUDED.updated_at`

// queueCommit queues what every page commits besides its rows: the lease
// check and extension (first, so a lost lease fails the page before its
// writes count) and the checkpoint.
func (s *Store) queueCommit(b *pgx.Batch, tenantID string, c domain.SyncCommit) {
	if c.Lease.Owner != "" {
		b.Queue(syncLeaseExtend, tenantID, c.Lease.Owner, s.now().Add(c.Lease.TTL).UTC()).Exec(func(tag pgconnTag) error {
			if tag.RowsAffected() != 1 {
				return domain.ErrSyncLeaseLost
			}
			return nil
		})
	}
	cp := c.Checkpoint
	b.Queue(syncStateSave, tenantID, cp.Resource, cp.Link, cp.LinkKind, cp.Round, cp.RoundKind, cp.FullJob)
}
