package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// A sync's claim on its tenant lives in the tenant row (sync_lease_owner,
// sync_lease_until): taken before a sync starts, extended by every page the
// sync commits (see queueCommit), released when the sync ends. Unlike a
// session advisory lock it holds no connection while the sync talks to
// Graph, and a worker that dies leaves a claim that lapses by itself.

// syncLeaseTake claims the tenant when nobody holds a live lease (or the
// owner already does) and, in the same statement, closes the runs a dead
// holder left running: runs are only started under a lease, so a running
// run whose lease lapsed can only belong to a worker that is gone. With $5
// it claims only a tenant that syncs (active or failing, not suspended: the
// predicate of tenants_due_idx).
const syncLeaseTake = `
WITH claim AS (
	UPDATE tenants SET sync_lease_owner = $2, sync_lease_until = $4
	WHERE id = $1 AND (sync_lease_owner IS NULL OR sync_lease_owner = $2 OR sync_lease_until < $3)
		AND (NOT $5 OR status IN ('active', 'failing') AND NOT sync_suspended)
	RETURNING id),
abandoned AS (
	UPDATE sync_runs SET outcome = 'abandoned', finished_at = $3,
		error = 'the worker running this sync stopped before it ended; the next sync resumed from its last committed page'
	WHERE tenant_id = $1 AND outcome = 'running' AND EXISTS (SELECT 1 FROM claim)
	RETURNING id)
SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM abandoned)`

// SyncLeaseTake claims tenantID's sync for lease.Owner until lease.TTL from
// now. It reports whether the claim was taken and how many runs of a dead
// holder it closed as abandoned.
func (s *Store) SyncLeaseTake(ctx context.Context, tenantID string, lease domain.SyncLease) (taken bool, abandoned int, err error) {
	now := s.now().UTC()
	var n int
	if err := s.db.QueryRow(ctx, syncLeaseTake, tenantID, lease.Owner, now, now.Add(lease.TTL), false).Scan(&n, &abandoned); err != nil {
		return false, 0, fmt.Errorf("take sync lease of tenant %s: %w", tenantID, err)
	}
	return n == 1, abandoned, nil
}

// syncBeginTenant is tenantGet with the tenant's Graph throttle window.
const syncBeginTenant = `SELECT ` + tenantColumns + `, graph_throttled_until FROM tenants WHERE id = $1`

// SyncBegin begins a sync job of tenantID in one round trip (issue 13: it
// was four): it reads the tenant, takes its lease for lease.Owner when the
// tenant syncs and nobody holds a live lease (closing a dead holder's runs,
// as SyncLeaseTake), and reads the checkpoints and the Graph throttle window
// the sync starts from. The statements run in one batch, one implicit
// transaction. An unknown tenant is
// domain.ErrNotFound.
func (s *Store) SyncBegin(ctx context.Context, tenantID string, lease domain.SyncLease) (domain.SyncStart, error) {
	var st domain.SyncStart
	if !domain.IsGUID(tenantID) {
		return st, fmt.Errorf("begin sync of tenant %q: %w", tenantID, domain.ErrNotFound)
	}
	now := s.now().UTC()
	b := &pgx.Batch{}
	b.Queue(syncBeginTenant, tenantID).Query(func(rows pgx.Rows) error {
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[struct {
			domain.Tenant
			ThrottledUntil *time.Time
		}])
		st.Tenant = r.Tenant
		if r.ThrottledUntil != nil {
			st.ThrottledUntil = *r.ThrottledUntil
		}
		return notFound(err)
	})
	b.Queue(syncLeaseTake, tenantID, lease.Owner, now, now.Add(lease.TTL), true).QueryRow(func(row pgx.Row) error {
		var n int
		err := row.Scan(&n, &st.Abandoned)
		st.Taken = n == 1
		return err
	})
	b.Queue(syncStateList, tenantID).Query(func(rows pgx.Rows) error {
		var err error
		st.Checkpoints, err = pgx.CollectRows(rows, pgx.RowToStructByPos[domain.SyncCheckpoint])
		return err
	})
	s.relax(b) // a lease, and abandoned runs closed: no event
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return domain.SyncStart{}, fmt.Errorf("begin sync of tenant %s: %w", tenantID, err)
	}
	return st, nil
}

const syncLeaseExtend = `UPDATE tenants SET sync_lease_until = $3 WHERE id = $1 AND sync_lease_owner = $2`

// SyncLeaseExtend extends a held lease by lease.TTL from now, or returns
// domain.ErrSyncLeaseLost when another sync holds the tenant.
func (s *Store) SyncLeaseExtend(ctx context.Context, tenantID string, lease domain.SyncLease) error {
	tag, err := s.db.Exec(ctx, syncLeaseExtend, tenantID, lease.Owner, s.now().Add(lease.TTL).UTC())
	if err != nil {
		return fmt.Errorf("extend sync lease of tenant %s: %w", tenantID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("extend sync lease of tenant %s: %w", tenantID, domain.ErrSyncLeaseLost)
	}
	return nil
}

const syncLeaseRelease = `
UPDATE tenants SET sync_lease_owner = NULL, sync_lease_until = NULL WHERE id = $1 AND sync_lease_owner = $2`

// SyncLeaseRelease gives up owner's claim on tenantID, if it still holds it.
func (s *Store) SyncLeaseRelease(ctx context.Context, tenantID, owner string) error {
	if _, err := s.db.Exec(ctx, syncLeaseRelease, tenantID, owner); err != nil {
		return fmt.Errorf("release sync lease of tenant %s: %w", tenantID, err)
	}
	return nil
}

// syncRunAbandonLapsed closes the runs whose tenant holds no live lease:
// for tenants that no sync claims again (disconnected, revoked), nobody
// else would close them.
const syncRunAbandonLapsed = `
UPDATE sync_runs r SET outcome = 'abandoned', finished_at = $1,
	error = 'the worker running this sync stopped before it ended'
FROM tenants t
WHERE r.outcome = 'running' AND t.id = r.tenant_id AND (t.sync_lease_until IS NULL OR t.sync_lease_until < $1)
	AND r.started_at < $2`

// SyncRunAbandonLapsed closes as abandoned every run still marked running
// whose tenant's lease has lapsed and that started before startedBefore
// (a run is started just after its lease is taken). It returns how many.
func (s *Store) SyncRunAbandonLapsed(ctx context.Context, startedBefore time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, syncRunAbandonLapsed, s.now().UTC(), startedBefore.UTC())
	if err != nil {
		return 0, fmt.Errorf("abandon lapsed sync runs: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
