package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
// writes count) and the checkpoint. sync_lease_hold raises when another job
// holds the lease (migrations/00097_sync_lease_hold.sql), which aborts the
// page's transaction in Postgres, explicit or implicit; see leaseLost.
func (s *Store) queueCommit(b *pgx.Batch, tenantID string, c domain.SyncCommit) {
	if c.Lease.Owner != "" {
		b.Queue(syncLeaseHold, tenantID, c.Lease.Owner, s.now().Add(c.Lease.TTL).UTC())
	}
	cp := c.Checkpoint
	b.Queue(syncStateSave, tenantID, cp.Resource, cp.Link, cp.LinkKind, cp.Round, cp.RoundKind, cp.FullJob)
}

const syncLeaseHold = `SELECT sync_lease_hold($1, $2, $3)`

// leaseLost turns sync_lease_hold's error into domain.ErrSyncLeaseLost.
func leaseLost(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "TS409" {
		return domain.ErrSyncLeaseLost
	}
	return err
}

// applyPage commits one page of tenantID with its checkpoint c: fill queues
// the page's statements on b, after the commit's, and may COPY on tx
// first. A page with nothing to COPY (copies false; fill gets a nil tx) is
// one batch, which Postgres runs as one implicit transaction (pgx's
// SendBatch): one round trip, where BEGIN … COMMIT around it took three. A
// steady round's pages are such pages; one that changes no row commits
// without waiting for the disk (relaxCommit). Either way the page and its
// checkpoint commit together or not at all.
func (s *Store) applyPage(ctx context.Context, tenantID string, c domain.SyncCommit, copies bool, fill func(tx pgx.Tx, b *pgx.Batch) error) error {
	send := func(db DB, tx pgx.Tx) error {
		b := &pgx.Batch{}
		s.queueCommit(b, tenantID, c)
		commitOnly := b.Len()
		if err := fill(tx, b); err != nil {
			return leaseLost(err)
		}
		if tx == nil && b.Len() == commitOnly {
			s.relax(b) // the page changes no row
		}
		return leaseLost(db.SendBatch(ctx, b).Close())
	}
	if !copies {
		return send(s.db, nil)
	}
	return s.Tx(ctx, func(tx pgx.Tx, _ *Store) error { return send(tx, tx) })
}
