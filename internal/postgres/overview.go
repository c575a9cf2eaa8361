package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// FleetOverview is what the operator console's first page shows about every
// tenant at once (issue 15). Each figure comes from a summary kept by
// triggers, an index-only scan or a bounded index walk (migration 00075),
// all sent in one round trip. The statements do not share a snapshot, so
// figures may disagree by what was written between them.
type FleetOverview struct {
	// ByStatus counts tenants per status; every status is present.
	ByStatus map[domain.TenantStatus]int
	// Attention are tenants failing or needing their customer's admin, the
	// most recent status change first, at most the limit asked for.
	Attention []domain.Tenant
	// Lag is the sync lag of active tenants whose syncing is not suspended.
	Lag SyncLag
	// Since is the start of the run window: the top of the hour 23 hours
	// before now, so that Hours holds 24 hourly buckets, the last one the
	// current, unfinished hour.
	Since time.Time
	// Hours are the sync runs started in each hour of the window, oldest
	// first, always 24 of them.
	Hours []RunHour
	// Runs totals Hours, with distinct tenants for throttling and tokens.
	Runs RunTotals
	// ThrottledNow counts tenants inside a Graph Retry-After window now.
	ThrottledNow int
	// Queue counts River jobs waiting or running, by kind.
	Queue []QueueDepth
}

// SyncLag is the time since the last successful sync of active tenants; a
// tenant never synced counts from when it became active.
type SyncLag struct {
	Tenants  int           // active tenants that sync
	P50, P95 time.Duration // percentile_disc of the lag; zero without tenants
	Worst    []LaggingTenant
}

// LaggingTenant is one of the active tenants with the oldest sync.
type LaggingTenant struct {
	ID           string
	DisplayName  string
	LastSyncedAt *time.Time // nil when it never synced
	Lag          time.Duration
}

// RunHour counts the sync runs started in one hour by outcome.
type RunHour struct {
	Hour                                           time.Time
	Succeeded, Failed, Snoozed, Abandoned, Running int
	// Throttled and TokenFailed are as in RunTotals.
	Throttled, TokenFailed int
}

// Total is every run of the hour.
func (h RunHour) Total() int { return h.Succeeded + h.Failed + h.Snoozed + h.Abandoned + h.Running }

// RunTotals sums the window's runs.
type RunTotals struct {
	RunHour
	// Throttled runs waited on at least one Graph Retry-After
	// (throttled_waits > 0) or were paused by one (snoozed with a throttling
	// code); ThrottledTenants is how many tenants they belong to.
	ThrottledTenants int
	// TokenFailed runs ended because Microsoft Entra ID refused the app-only
	// token (an AADSTS error code); TokenFailedTenants is how many tenants.
	TokenFailedTenants int
}

// QueueDepth counts one kind of River job by the states that still wait or
// run.
type QueueDepth struct {
	Kind                                     string
	Available, Scheduled, Retryable, Running int
}

// Total is every job of the kind still to finish.
func (q QueueDepth) Total() int { return q.Available + q.Scheduled + q.Retryable + q.Running }

// runThrottled and runTokenFailed define, on a sync_runs row, the figures
// RunTotals explains.
// Migration 00075's sync_run_throttled and sync_run_token_failed say the same.
const (
	runThrottled   = `throttled_waits > 0 OR (outcome = 'snoozed' AND error_code IN ` + throttleCodes + `)`
	runTokenFailed = `outcome IN ('failed', 'snoozed') AND error_code LIKE 'AADSTS%'`
)

// throttleCodes are the error codes of a run paused by Graph throttling:
// Graph's own (protocol §5.7) and the client's for a window still open.
const throttleCodes = `('TooManyRequests', 'activityLimitReached', 'tenantThrottled')`

const (
	// Kept by triggers on tenants (migration 00075).
	overviewStatusCounts = `SELECT status, n FROM tenant_status_counts`

	overviewAttention = `SELECT ` + tenantColumns + ` FROM tenants
WHERE status IN ('failing', 'consent_revoked', 'insufficient_permissions')
ORDER BY status_changed_at DESC, tenants.id DESC LIMIT $1`

	// percentile_disc of the lag, read from tenants_lag_idx in order rather
	// than sorted: the p-th percentile of the lag is the sync time at
	// position ceil(p·n) from the newest, that is n − ceil(p·n) rows past
	// the oldest.
	overviewLag = `WITH n AS (SELECT count(*) AS n FROM tenants WHERE status = 'active' AND NOT sync_suspended)
SELECT n.n,
	(SELECT coalesce(last_synced_at, status_changed_at) FROM tenants WHERE status = 'active' AND NOT sync_suspended
		ORDER BY coalesce(last_synced_at, status_changed_at) OFFSET greatest(n.n - ceil(0.5 * n.n), 0)::bigint LIMIT 1),
	(SELECT coalesce(last_synced_at, status_changed_at) FROM tenants WHERE status = 'active' AND NOT sync_suspended
		ORDER BY coalesce(last_synced_at, status_changed_at) OFFSET greatest(n.n - ceil(0.95 * n.n), 0)::bigint LIMIT 1)
FROM n`

	overviewLagWorst = `SELECT id::text, display_name, last_synced_at, coalesce(last_synced_at, status_changed_at)
FROM tenants WHERE status = 'active' AND NOT sync_suspended
ORDER BY coalesce(last_synced_at, status_changed_at), id LIMIT $1`

	// Kept by triggers on sync_runs (migration 00075), hours in UTC, in
	// shards (00098) that are summed here.
	overviewRuns = `SELECT hour, outcome, sum(runs)::bigint, sum(throttled)::bigint, sum(token_failed)::bigint FROM sync_run_hours WHERE hour >= $1
	GROUP BY hour, outcome`

	// The distinct tenants behind the few throttled or token-failed runs,
	// from sync_runs_trouble_idx (each condition implies its predicate),
	// hashed rather than sorted as count(DISTINCT) would.
	overviewRunTenants = `SELECT
	(SELECT count(*) FROM (SELECT DISTINCT tenant_id FROM sync_runs WHERE started_at >= $1 AND (` + runThrottled + `)) AS t),
	(SELECT count(*) FROM (SELECT DISTINCT tenant_id FROM sync_runs WHERE started_at >= $1 AND (` + runTokenFailed + `)) AS t)`

	overviewThrottledNow = `SELECT count(*) FROM tenants WHERE graph_throttled_until > $1`

	overviewQueue = `SELECT kind, state::text, count(*) FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'running')
GROUP BY kind, state ORDER BY kind`
)

// FleetOverview reads the overview as of now: at most attention tenants
// needing attention and worst lagging ones.
func (s *Store) FleetOverview(ctx context.Context, now time.Time, attention, worst int) (FleetOverview, error) {
	now = now.UTC()
	o := FleetOverview{ByStatus: map[domain.TenantStatus]int{}, Since: now.Truncate(time.Hour).Add(-23 * time.Hour)}
	for _, st := range domain.TenantStatuses {
		o.ByStatus[st] = 0
	}
	b := &pgx.Batch{}
	b.Queue(overviewStatusCounts)
	b.Queue(overviewAttention, attention)
	b.Queue(overviewLag)
	b.Queue(overviewLagWorst, worst)
	b.Queue(overviewRuns, o.Since)
	b.Queue(overviewRunTenants, o.Since)
	b.Queue(overviewThrottledNow, now)
	b.Queue(overviewQueue)
	res := s.db.SendBatch(ctx, b)
	defer res.Close()
	if err := o.read(res, now); err != nil {
		return FleetOverview{}, fmt.Errorf("fleet overview: %w", err)
	}
	if err := res.Close(); err != nil {
		return FleetOverview{}, fmt.Errorf("fleet overview: %w", err)
	}
	return o, nil
}

// read takes the batch's results in the order FleetOverview queued them.
func (o *FleetOverview) read(res pgx.BatchResults, now time.Time) error {
	var (
		status string
		n      int
	)
	rows, _ := res.Query()
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		o.ByStatus[domain.TenantStatus(status)] = n
		return nil
	}); err != nil {
		return err
	}

	rows, _ = res.Query()
	tenants, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.Tenant])
	if err != nil {
		return err
	}
	o.Attention = tenants

	var p50, p95 *time.Time
	if err := res.QueryRow().Scan(&o.Lag.Tenants, &p50, &p95); err != nil {
		return err
	}
	if p50 != nil {
		o.Lag.P50, o.Lag.P95 = max(now.Sub(*p50), 0), max(now.Sub(*p95), 0)
	}

	var lt LaggingTenant
	var since time.Time
	rows, _ = res.Query()
	if _, err := pgx.ForEachRow(rows, []any{&lt.ID, &lt.DisplayName, &lt.LastSyncedAt, &since}, func() error {
		lt.Lag = max(now.Sub(since), 0)
		o.Lag.Worst = append(o.Lag.Worst, lt)
		return nil
	}); err != nil {
		return err
	}

	byHour := map[time.Time]RunHour{}
	var (
		hour                         time.Time
		outcome                      string
		runs, throttled, tokenFailed int
	)
	rows, _ = res.Query()
	if _, err := pgx.ForEachRow(rows, []any{&hour, &outcome, &runs, &throttled, &tokenFailed}, func() error {
		h := byHour[hour.UTC()]
		switch domain.SyncOutcome(outcome) {
		case domain.SyncSucceeded:
			h.Succeeded += runs
		case domain.SyncFailed:
			h.Failed += runs
		case domain.SyncSnoozed:
			h.Snoozed += runs
		case domain.SyncAbandoned:
			h.Abandoned += runs
		case domain.SyncRunning:
			h.Running += runs
		}
		h.Throttled += throttled
		h.TokenFailed += tokenFailed
		byHour[hour.UTC()] = h
		return nil
	}); err != nil {
		return err
	}
	if err := res.QueryRow().Scan(&o.Runs.ThrottledTenants, &o.Runs.TokenFailedTenants); err != nil {
		return err
	}
	for i := range 24 {
		at := o.Since.Add(time.Duration(i) * time.Hour)
		h := byHour[at]
		h.Hour = at
		o.Hours = append(o.Hours, h)
		t := &o.Runs.RunHour
		t.Succeeded += h.Succeeded
		t.Failed += h.Failed
		t.Snoozed += h.Snoozed
		t.Abandoned += h.Abandoned
		t.Running += h.Running
		t.Throttled += h.Throttled
		t.TokenFailed += h.TokenFailed
	}

	if err := res.QueryRow().Scan(&o.ThrottledNow); err != nil {
		return err
	}

	var kind, state string
	rows, _ = res.Query()
	if _, err := pgx.ForEachRow(rows, []any{&kind, &state, &n}, func() error {
		if len(o.Queue) == 0 || o.Queue[len(o.Queue)-1].Kind != kind {
			o.Queue = append(o.Queue, QueueDepth{Kind: kind})
		}
		q := &o.Queue[len(o.Queue)-1]
		switch state {
		case "available":
			q.Available = n
		case "scheduled":
			q.Scheduled = n
		case "retryable":
			q.Retryable = n
		case "running":
			q.Running = n
		}
		return nil
	}); err != nil {
		return err
	}
	return nil
}

const tenantListNeedsAdmin = `SELECT ` + tenantColumns + ` FROM tenants
WHERE status IN ('consent_revoked', 'insufficient_permissions')
ORDER BY status_changed_at DESC, tenants.id DESC LIMIT $1`

// TenantListNeedsAdmin returns up to limit tenants that only their
// customer's admin can bring back (consent revoked, permissions missing),
// the most recent status change first.
func (s *Store) TenantListNeedsAdmin(ctx context.Context, limit int) ([]domain.Tenant, error) {
	rows, err := s.db.Query(ctx, tenantListNeedsAdmin, limit)
	if err != nil {
		return nil, fmt.Errorf("tenants needing their admin: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[domain.Tenant])
	if err != nil {
		return nil, fmt.Errorf("tenants needing their admin: %w", err)
	}
	return ts, nil
}
