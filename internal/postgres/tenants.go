package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const tenantColumns = `id::text, status, status_reason, status_changed_at, display_name, domains,
	consented_at, consented_by, consented_by_oid, granted_roles, last_synced_at, next_sync_at,
	failure_count, sync_suspended, created_at, updated_at, user_count, group_count`

const tenantGet = `SELECT ` + tenantColumns + ` FROM tenants WHERE id = $1`

// TenantGet returns one tenant, or domain.ErrNotFound.
func (s *Store) TenantGet(ctx context.Context, id string) (domain.Tenant, error) {
	return s.tenantGet(ctx, tenantGet, id)
}

// TenantGetForUpdate returns one tenant and locks its row until the
// transaction ends, so concurrent actions on it serialize.
func (s *Store) TenantGetForUpdate(ctx context.Context, id string) (domain.Tenant, error) {
	return s.tenantGet(ctx, tenantGet+" FOR UPDATE", id)
}

func (s *Store) tenantGet(ctx context.Context, query, id string) (domain.Tenant, error) {
	if !domain.IsGUID(id) {
		return domain.Tenant{}, fmt.Errorf("get tenant %q: %w", id, domain.ErrNotFound)
	}
	rows, err := s.db.Query(ctx, query, id)
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[domain.Tenant])
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("get tenant %s: %w", id, notFound(err))
	}
	return t, nil
}

// consentFrom upserts the tenant as pending and adds its consent event in
// one statement, from a source that gives the row only when the consent may
// be recorded (%s: a FROM … WHERE clause, or nothing). Every part of a
// statement sees the snapshot taken when it starts (PostgreSQL,
// "Data-Modifying Statements in WITH"), so ev reads the status up replaces;
// the event's foreign key is checked at the end of the statement, after up
// has inserted a new tenant. The row lock sent before it in the same batch
// (consent) makes that status the current one.
const consentFrom = `up AS (
	INSERT INTO tenants (id, status, status_reason, status_changed_at, consented_at, consented_by, consented_by_oid, created_at, updated_at)
	SELECT $1::uuid, 'pending', $2::text, $3::timestamptz, $3, $4::text, $5::text, $3, $3 %s
	ON CONFLICT (id) DO UPDATE SET
		status = 'pending', status_reason = EXCLUDED.status_reason, status_changed_at = EXCLUDED.status_changed_at,
		consented_at = EXCLUDED.consented_at, consented_by = EXCLUDED.consented_by,
		consented_by_oid = EXCLUDED.consented_by_oid, failure_count = 0, updated_at = EXCLUDED.updated_at
	RETURNING ` + tenantColumns + `
), ev AS (
	INSERT INTO tenant_events (tenant_id, at, kind, from_status, to_status, reason, actor)
	SELECT $1::uuid, $3, $6::text, coalesce((SELECT status FROM tenants WHERE id = $1::uuid), ''), 'pending', $2, $4 FROM up
), feed AS (
	INSERT INTO change_events (tenant_id, type, data)
	SELECT $1::uuid, 'tenant.connected', ` + tenantData + ` FROM up
)
SELECT * FROM up`

var tenantUpsertConsented = "WITH " + fmt.Sprintf(consentFrom, "")

// consentReason is the status reason of a tenant whose consent awaits
// verification.
const consentReason = "admin consent granted; waiting for verification"

// TenantUpsertConsented records a fresh admin consent: the tenant (new or
// reconnecting from any state) becomes pending, and the history says who
// consented. Run it inside Tx together with the verification job.
func (s *Store) TenantUpsertConsented(ctx context.Context, id, by, byOID string) (domain.Tenant, error) {
	t, _, err := s.consent(ctx, tenantUpsertConsented, id, by, byOID)
	return t, err
}

// consent locks the tenant's row and runs query (built on consentFrom, with
// any arguments after the first six) in the same round trip. ok is false
// when query's source gave no row, so nothing was written.
func (s *Store) consent(ctx context.Context, query, id, by, byOID string, more ...any) (t domain.Tenant, ok bool, err error) {
	var b pgx.Batch
	b.Queue(tenantStatusForUpdate, id)
	b.Queue(query, append([]any{id, consentReason, s.now().UTC(), by, byOID, domain.EventConsented}, more...)...)
	res := s.db.SendBatch(ctx, &b)
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return domain.Tenant{}, false, fmt.Errorf("lock tenant %s: %w", id, err)
	}
	rows, err := res.Query()
	if err != nil {
		return domain.Tenant{}, false, fmt.Errorf("upsert tenant %s: %w", id, err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.Tenant])
	if err != nil {
		return domain.Tenant{}, false, fmt.Errorf("upsert tenant %s: %w", id, err)
	}
	if err := res.Close(); err != nil {
		return domain.Tenant{}, false, fmt.Errorf("upsert tenant %s: %w", id, err)
	}
	if len(ts) == 0 {
		return domain.Tenant{}, false, nil
	}
	return ts[0], true, nil
}

const tenantStatusForUpdate = `SELECT status FROM tenants WHERE id = $1 FOR UPDATE`

// tenantData is a tenant event's payload, from a tenants row (docs/events.md).
const tenantData = `jsonb_build_object('id', id, 'status', status, 'display_name', display_name, 'reason', status_reason)`

// tenantStatusSet moves the tenant and, when its status (not only the
// reason) changes and the new status has an event type ($5, else empty),
// writes that event to the change feed in the same statement.
const tenantStatusSet = `
WITH up AS (
	UPDATE tenants SET status = $2, status_reason = $3, status_changed_at = $4, updated_at = $4
	WHERE id = $1 AND (status <> $2 OR status_reason <> $3)
	RETURNING id, status, display_name, status_reason
), feed AS (
	INSERT INTO change_events (tenant_id, type, data)
	SELECT id, $5::text, ` + tenantData + ` FROM up WHERE $5::text <> ''
)
SELECT count(*) FROM up`

// TenantSetStatus moves a tenant to status with a reason and records the
// transition; setting the same status and reason again records nothing. A
// move the lifecycle does not allow is domain.ErrConflict.
func (s *Store) TenantSetStatus(ctx context.Context, id string, status domain.TenantStatus, reason, actor string) error {
	_, err := s.TenantTransition(ctx, id, domain.Transition{To: status, Reason: reason, Actor: actor})
	return err
}

// TenantTransition applies tr with its history entry in one transaction.
// It reports false, changing nothing, when the tenant is no longer in one of
// tr.From; a move the lifecycle does not allow is domain.ErrConflict.
func (s *Store) TenantTransition(ctx context.Context, id string, tr domain.Transition) (bool, error) {
	if !tr.To.Valid() {
		return false, domain.Invalidf("unknown tenant status %q", tr.To)
	}
	now := s.now().UTC()
	moved := false
	err := s.Tx(ctx, func(_ pgx.Tx, st *Store) error {
		var from domain.TenantStatus
		if err := st.db.QueryRow(ctx, tenantStatusForUpdate, id).Scan(&from); err != nil {
			return fmt.Errorf("set status of tenant %s: %w", id, notFound(err))
		}
		if len(tr.From) > 0 && !slices.Contains(tr.From, from) {
			return nil
		}
		if !from.CanBecome(tr.To) {
			return fmt.Errorf("set status of tenant %s: %w", id, domain.Conflictf("a tenant that is %s cannot become %s", from, tr.To))
		}
		moved = true
		var feed domain.EventType
		if from != tr.To {
			feed, _ = domain.TenantStatusEvent(tr.To)
		}
		var n int
		if err := st.db.QueryRow(ctx, tenantStatusSet, id, tr.To, tr.Reason, now, feed).Scan(&n); err != nil {
			return fmt.Errorf("set status of tenant %s: %w", id, err)
		}
		if n == 0 {
			return nil
		}
		return st.TenantEventAdd(ctx, domain.TenantEvent{
			TenantID: id, At: now, Kind: domain.EventStatusChanged, FromStatus: string(from),
			ToStatus: string(tr.To), Reason: tr.Reason, Actor: tr.Actor,
		})
	})
	return moved && err == nil, err
}

// TenantCountByStatus counts tenants per status, every status present. It
// reads the counts the tenants table's triggers keep (migration 00075, as
// the console's overview does): counting the table took about 200 ms a
// call at 100,000 tenants (pg_stat_statements, docs/benchmarks.md), on
// every scrape of the worker's /metrics.
func (s *Store) TenantCountByStatus(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	for _, st := range domain.TenantStatuses {
		out[string(st)] = 0
	}
	if err := s.countBy(ctx, overviewStatusCounts, out); err != nil {
		return nil, fmt.Errorf("count tenants: %w", err)
	}
	return out, nil
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

// tenantSyncSucceeded records a round's end, releasing the lease of owner
// $4 (if any); it leaves a failing tenant alone unless $5, since that one
// also changes status, with its event, in a transaction.
const tenantSyncSucceeded = `
UPDATE tenants SET last_synced_at = $2, next_sync_at = $3, failure_count = 0, updated_at = $2,
	user_count = (SELECT count(*) FROM directory_users WHERE tenant_id = $1),
	group_count = (SELECT count(*) FROM directory_groups WHERE tenant_id = $1),
	sync_lease_owner = CASE WHEN sync_lease_owner = $4 THEN NULL ELSE sync_lease_owner END,
	sync_lease_until = CASE WHEN sync_lease_owner = $4 THEN NULL ELSE sync_lease_until END
WHERE id = $1 AND (status <> 'failing' OR $5)
RETURNING status`

// TenantSyncSucceeded records a successful sync: the next one is due at
// next, the failure count resets and a failing tenant is active again. A
// non-empty leaseOwner also gives up that owner's sync lease, in the same
// statement (issue 13: a steady round's end was four round trips). A tenant
// that is not failing, the usual case, takes one statement and no explicit
// transaction.
func (s *Store) TenantSyncSucceeded(ctx context.Context, id string, next time.Time, leaseOwner string) error {
	b := &pgx.Batch{}
	s.relax(b) // no status change, no event
	return s.syncSucceeded(ctx, b, id, s.now().UTC(), next, leaseOwner)
}

// syncSucceeded is TenantSyncSucceeded at now, after the statements queued
// on b, which commit with it (or, for a failing tenant, before it); the
// caller queues relaxCommit on b when they and it write no event.
func (s *Store) syncSucceeded(ctx context.Context, b *pgx.Batch, id string, now, next time.Time, leaseOwner string) error {
	var owner *string
	if leaseOwner != "" {
		owner = &leaseOwner
	}
	var status domain.TenantStatus
	b.Queue(tenantSyncSucceeded, id, now, next.UTC(), owner, false).QueryRow(func(row pgx.Row) error { return row.Scan(&status) })
	err := s.db.SendBatch(ctx, b).Close()
	if !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return fmt.Errorf("record sync of tenant %s: %w", id, err)
		}
		return nil
	}
	// Failing (or unknown): the status changes with its event, atomically.
	return s.Tx(ctx, func(_ pgx.Tx, st *Store) error {
		if err := st.db.QueryRow(ctx, tenantSyncSucceeded, id, now, next.UTC(), owner, true).Scan(&status); err != nil {
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
