package postgres

import (
	"context"
	"fmt"
	"slices"

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
			return fmt.Errorf("set status of tenant %s: %w: %s cannot become %s", id, domain.ErrConflict, from, tr.To)
		}
		moved = true
		tag, err := st.db.Exec(ctx, `UPDATE tenants SET status = $2, status_reason = $3, status_changed_at = $4, updated_at = $4
			WHERE id = $1 AND (status <> $2 OR status_reason <> $3)`, id, tr.To, tr.Reason, now)
		if err != nil {
			return fmt.Errorf("set status of tenant %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return st.TenantEventAdd(ctx, domain.TenantEvent{
			TenantID: id, At: now, Kind: domain.EventStatusChanged, FromStatus: string(from),
			ToStatus: string(tr.To), Reason: tr.Reason, Actor: tr.Actor,
		})
	})
	return moved && err == nil, err
}

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
