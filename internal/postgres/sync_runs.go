package postgres

import (
	"context"
	"fmt"
	"time"

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

const syncRunStart = `INSERT INTO sync_runs (tenant_id, kind, started_at) VALUES ($1, $2, $3) RETURNING id`

// SyncRunStart records a run of tenantID as running since startedAt and
// returns its ID.
func (s *Store) SyncRunStart(ctx context.Context, tenantID string, kind domain.SyncKind, startedAt time.Time) (int64, error) {
	var id int64
	if err := s.db.QueryRow(ctx, syncRunStart, tenantID, kind, startedAt.UTC()).Scan(&id); err != nil {
		return 0, fmt.Errorf("start sync run of tenant %s: %w", tenantID, err)
	}
	return id, nil
}

const syncRunFinish = `
UPDATE sync_runs SET kind = $3, finished_at = $4, pages = $5, upserts = $6, deletes = $7, requests = $8,
	throttled_waits = $9, throttled_ms = $10, outcome = $11, error = $12, error_code = $13
WHERE tenant_id = $1 AND id = $2
RETURNING id`

// syncRunRecord writes a whole run at once ($2 its start, the rest as in
// syncRunFinish).
const syncRunRecord = `
INSERT INTO sync_runs (tenant_id, started_at, kind, finished_at, pages, upserts, deletes, requests, throttled_waits,
	throttled_ms, outcome, error, error_code)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id`

// SyncRunFinish records how run ended (finished now unless FinishedAt is
// set) and returns its ID. A run that was never started (ID 0) is written
// whole, in one statement: dirsync starts a run's row only once the run
// has more than one page of a resource to fetch, so the round of a small
// tenant writes sync_runs, and its counters (migrations 00075, 00098), once.
func (s *Store) SyncRunFinish(ctx context.Context, run domain.SyncRun) (int64, error) {
	b := &pgx.Batch{}
	id := s.queueRunFinish(b, run)
	s.relax(b) // a run's record: no event
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("finish sync run %d of tenant %s: %w", run.ID, run.TenantID, notFound(err))
	}
	return *id, nil
}

// queueRunFinish queues SyncRunFinish's statement on b; the run's ID is
// read into *id.
func (s *Store) queueRunFinish(b *pgx.Batch, run domain.SyncRun) *int64 {
	at := s.now().UTC()
	if run.FinishedAt != nil {
		at = *run.FinishedAt
	}
	q, key := syncRunFinish, any(run.ID)
	if run.ID == 0 {
		q, key = syncRunRecord, run.StartedAt.UTC()
	}
	var id int64
	b.Queue(q, run.TenantID, key, run.Kind, at, run.Pages, run.Upserts, run.Deletes, run.Requests, run.ThrottledWaits,
		run.ThrottledFor, run.Outcome, run.Error, run.ErrorCode).QueryRow(func(row pgx.Row) error { return row.Scan(&id) })
	return &id
}

// SyncRunEnd records run, a successful one, as SyncRunFinish does, and the
// end of its round as TenantSyncSucceeded does, due again end.Interval from
// now: one round trip where the two took two (issue 13). A failing tenant
// (which becomes active, with its event) takes the second in a transaction
// after the first, as it would alone.
//
// held are the pages dirsync held back to commit here, in order: the only
// page of a resource's round, as every resource of a small tenant's round
// is. When each is an inserted page (directory_insert.go) or changes no
// row, their statements go first in the same round trip and commit with
// the run, and applied is what they wrote (run's counts did not include
// it). A small tenant's round is then two round trips, the lease taken and
// this, where the pages took one each (and each a commit). Any other page,
// or an inserted page Postgres refuses (its guard or a key), and nothing
// is written: domain.ErrHeldPagesRefused says to apply them one by one.
// The first page's commit holds the lease for the whole: a lost lease is
// domain.ErrSyncLeaseLost, with nothing written either.
func (s *Store) SyncRunEnd(ctx context.Context, run domain.SyncRun, end domain.SyncEnd, held []domain.SyncPage) (id int64, applied domain.SyncApplied, err error) {
	b := &pgx.Batch{}
	for i, p := range held {
		c := p.Commit
		if i > 0 {
			c.Lease = domain.SyncLease{} // held by the first page's check
		}
		rows, ok := s.queueHeld(b, run.TenantID, p, c)
		if !ok {
			return 0, domain.SyncApplied{}, domain.ErrHeldPagesRefused
		}
		applied.Upserts += rows
	}
	run.Upserts += applied.Upserts
	ids := s.queueRunFinish(b, run)
	if applied.Upserts == 0 {
		s.relax(b) // no row, no event: the run's record and the round's end
	}
	now := s.now().UTC()
	if err := s.syncSucceeded(ctx, b, run.TenantID, now, now.Add(end.Interval), end.LeaseOwner); err != nil {
		if len(held) > 0 && insertRefused(err) {
			return 0, domain.SyncApplied{}, domain.ErrHeldPagesRefused
		}
		return 0, domain.SyncApplied{}, fmt.Errorf("end sync run %d: %w", run.ID, leaseLost(err))
	}
	return *ids, applied, nil
}

// queueHeld queues held page p with its commit c on b, and returns how many
// rows it writes: ok false, with nothing queued, unless that is known now —
// a page that changes no row (none, and no sweep), or an inserted page,
// which writes all its rows or fails.
func (s *Store) queueHeld(b *pgx.Batch, tenantID string, p domain.SyncPage, c domain.SyncCommit) (rows int, ok bool) {
	var q string
	var args []any
	u, g := p.Users, p.Groups
	switch {
	case !c.Sweep && u != nil && len(u.Users)+len(u.Removed) == 0,
		!c.Sweep && g != nil && len(g.Groups)+len(g.Removed)+len(g.Members)+len(g.MembersRemoved) == 0:
	case !insertPage(c):
		return 0, false
	case u != nil:
		if args, ok = s.usersInsert(tenantID, u, c); !ok {
			return 0, false
		}
		q, rows = directoryUserInsert, len(u.Users)
	default:
		if args, rows, ok = s.groupsInsert(tenantID, g, c); !ok {
			return 0, false
		}
		q = directoryGroupInsert
	}
	s.queueCommit(b, tenantID, c)
	if q != "" {
		b.Queue(q, args...)
	}
	return rows, true
}
