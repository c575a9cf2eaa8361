package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tenantsync/tenantsync/internal/retry"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// Deps are what the workers use. Durations say their unit in the type; a
// zero value takes the default named on the field.
type Deps struct {
	Store  *postgres.Store
	Tokens *entra.TokenSource
	Graph  *graph.Client
	Syncer *dirsync.Syncer // nil: NewSyncer(Graph, Store)
	Logger *slog.Logger    // nil: discard
	Now    func() time.Time

	// SyncInterval is how often an active tenant is synced (SYNC_INTERVAL; default 1h).
	SyncInterval time.Duration
	// PurgeAfter is how long a disconnected or revoked tenant's copy is kept (PURGE_AFTER; default 0).
	PurgeAfter time.Duration
	// ConsentPropagationWait bounds retries of AADSTS700016 and of missing
	// roles after a fresh consent (CONSENT_PROPAGATION_WAIT; default 2m, facts §6.1).
	ConsentPropagationWait time.Duration
	// SyncTimeout is a sync job's timeout, long enough for the largest tenant (default 6h).
	SyncTimeout time.Duration
	// FanoutInterval is how often the leader enqueues due tenants (default 1m).
	FanoutInterval time.Duration
	// CredentialBrokenSnooze is how long a job waits when the app's own
	// credential is rejected (default 5m).
	CredentialBrokenSnooze time.Duration
	// MaxSnoozes bounds how often one sync job snoozes on throttling before
	// it counts as a failure (default 50).
	MaxSnoozes int
	// Metrics records sync runs; nil records nothing.
	Metrics *metrics.Metrics

	credBroken atomic.Bool
}

func (d *Deps) defaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.SyncInterval <= 0 {
		d.SyncInterval = time.Hour
	}
	if d.ConsentPropagationWait == 0 {
		d.ConsentPropagationWait = 2 * time.Minute
	}
	if d.SyncTimeout <= 0 {
		d.SyncTimeout = 6 * time.Hour
	}
	if d.FanoutInterval <= 0 {
		d.FanoutInterval = time.Minute
	}
	if d.CredentialBrokenSnooze <= 0 {
		d.CredentialBrokenSnooze = 5 * time.Minute
	}
	if d.MaxSnoozes <= 0 {
		d.MaxSnoozes = 50
	}
	if d.Syncer == nil {
		d.Syncer = NewSyncer(d.Graph, d.Store)
	}
}

// ClientConfig configures NewWorkerClient.
type ClientConfig struct {
	// Concurrency is WORKER_CONCURRENCY: jobs run at once by this process.
	Concurrency int
	// Tune, if set, adjusts River's configuration last (tests shorten polls).
	Tune func(*river.Config)
}

// SyncFanoutArgs is the periodic job that enqueues due tenants.
type SyncFanoutArgs struct{}

// Kind names the job kind.
func (SyncFanoutArgs) Kind() string { return "sync_fanout" }

// InsertOpts keeps at most one fan-out queued or running.
func (SyncFanoutArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: activeStates}}
}

// NewWorkerClient builds the worker process's River client: the verify,
// sync, purge and fan-out workers on the default queue, and the periodic
// fan-out, which River runs on the elected leader only.
func NewWorkerClient(pool *pgxpool.Pool, d *Deps, cc ClientConfig) (*river.Client[pgx.Tx], error) {
	d.defaults()
	workers := river.NewWorkers()
	river.AddWorker(workers, &verifyWorker{d: d})
	river.AddWorker(workers, &syncWorker{d: d})
	river.AddWorker(workers, &purgeWorker{d: d})
	river.AddWorker(workers, &fanoutWorker{d: d})
	if cc.Concurrency <= 0 {
		cc.Concurrency = 8
	}
	cfg := &river.Config{
		Logger:  d.Logger,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cc.Concurrency}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(d.FanoutInterval),
			func() (river.JobArgs, *river.InsertOpts) { return SyncFanoutArgs{}, nil },
			&river.PeriodicJobOpts{ID: "sync_fanout", RunOnStart: true})},
		// A sync may run for hours; River must not rescue it as stuck meanwhile.
		RescueStuckJobsAfter: d.SyncTimeout + time.Hour,
	}
	if cc.Tune != nil {
		cc.Tune(cfg)
	}
	return river.NewClient(riverpgxv5.New(pool), cfg)
}

// ---- VerifyTenant ----

type verifyWorker struct {
	river.WorkerDefaults[VerifyTenantArgs]
	d *Deps
}

func (w *verifyWorker) Timeout(*river.Job[VerifyTenantArgs]) time.Duration {
	return w.d.ConsentPropagationWait + 2*time.Minute
}

// Work confirms a fresh consent: a token for the tenant (retrying through
// propagation), its roles, the organization; then active + first sync.
func (w *verifyWorker) Work(ctx context.Context, job *river.Job[VerifyTenantArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	t, err := d.Store.TenantGet(ctx, tid)
	if errors.Is(err, domain.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if t.Status != domain.TenantPending {
		return nil // verified already, or disconnected since
	}
	deadline := job.CreatedAt.Add(d.ConsentPropagationWait)
	backoff := 500 * time.Millisecond
	var tok entra.Token
	for {
		tok, err = d.Tokens.Token(ctx, tid)
		var missing []string
		if err == nil {
			missing = entra.MissingRoles(tok.Roles)
			if len(missing) == 0 {
				break
			}
		}
		te, isTok := entra.AsTokenError(err)
		propagating := err == nil || isTok && te.Kind == entra.ConsentMissing
		if !propagating || !d.Now().Before(deadline) {
			if err != nil {
				return d.handleFailure(ctx, tid, err, true)
			}
			reason := "missing Microsoft Graph application permissions: " + strings.Join(missing, ", ") +
				"; an administrator must reconnect and accept all of them"
			return d.Store.Tx(ctx, func(_ pgx.Tx, st *postgres.Store) error {
				if err := st.TenantSetOrganization(ctx, tid, t.DisplayName, t.Domains, tok.Roles); err != nil {
					return err
				}
				return st.TenantSetStatus(ctx, tid, domain.TenantInsufficientPermissions, reason, "worker")
			})
		}
		// Facts §6.1: a new service principal and its role assignments
		// replicate for a while; AADSTS700016 or a token without roles then
		// is expected (ARO retries 700016 for 2 minutes).
		if err == nil {
			d.Tokens.Invalidate(tid)
		}
		wait := min(backoff, deadline.Sub(d.Now()))
		backoff = min(backoff*2, 10*time.Second)
		if err := retry.Sleep(ctx, wait); err != nil {
			return river.JobSnooze(0)
		}
	}
	d.credentialOK()
	org, _, err := d.Graph.Organization(ctx, tid)
	if err != nil {
		return d.handleFailure(ctx, tid, err, true)
	}
	domains := org.Domains
	if domains == nil {
		domains = []string{}
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	return d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		if err := st.TenantSetOrganization(ctx, tid, org.DisplayName, domains, tok.Roles); err != nil {
			return err
		}
		if err := st.TenantSetStatus(ctx, tid, domain.TenantActive, "consent verified", "worker"); err != nil {
			return err
		}
		if err := st.TenantSetNextSync(ctx, tid, d.Now().Add(d.SyncInterval)); err != nil {
			return err
		}
		if _, err := client.InsertTx(ctx, tx, SyncTenantArgs{TenantID: tid, Full: true}, nil); err != nil {
			return fmt.Errorf("enqueue first sync of tenant %s: %w", tid, err)
		}
		return nil
	})
}

// ---- SyncTenant ----

type syncWorker struct {
	river.WorkerDefaults[SyncTenantArgs]
	d *Deps
}

func (w *syncWorker) Timeout(*river.Job[SyncTenantArgs]) time.Duration { return w.d.SyncTimeout }

// Work syncs one tenant and records the outcome on the tenant.
func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncTenantArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	t, err := d.Store.TenantGet(ctx, tid)
	if errors.Is(err, domain.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if (t.Status != domain.TenantActive && t.Status != domain.TenantFailing) || t.SyncSuspended {
		return nil
	}
	release, err := d.Store.TenantSyncLock(ctx, tid)
	if errors.Is(err, postgres.ErrLocked) {
		return river.JobSnooze(30 * time.Second)
	}
	if err != nil {
		return err
	}
	defer release()
	run, err := d.Syncer.Sync(ctx, tid, dirsync.Options{Full: job.Args.Full})
	if run.ID != 0 {
		outcome := domain.SyncSucceeded
		if err != nil {
			outcome = domain.SyncFailed
			if dirsync.RetryAfter(err) > 0 || errors.Is(ctx.Err(), context.Canceled) {
				outcome = domain.SyncSnoozed
			}
		}
		d.Metrics.ObserveSync(string(run.Kind), string(outcome), run.Duration(d.Now()), run.Pages, run.Upserts, run.Deletes)
	}
	if err != nil {
		if snoozes(job.Metadata) >= d.MaxSnoozes && dirsync.RetryAfter(err) > 0 {
			return d.recordFailure(ctx, tid, err)
		}
		return d.handleFailure(ctx, tid, err, false)
	}
	d.credentialOK()
	d.log(ctx).Info("tenant synced", "tenant_id", tid, "sync_run_id", run.ID, "kind", run.Kind, "pages", run.Pages,
		"upserts", run.Upserts, "deletes", run.Deletes, "requests", run.Requests)
	return d.Store.TenantSyncSucceeded(ctx, tid, d.Now().Add(d.SyncInterval))
}

func snoozes(metadata []byte) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.Snoozes
}

// ---- failures shared by verify and sync ----

// handleFailure decides what a failed token or Graph call means: pause the
// job (shutdown, throttling, the app's own credential), a status that only
// the customer's admin can fix, or a counted, backed-off failure.
func (d *Deps) handleFailure(ctx context.Context, tid string, err error, verifying bool) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		// Shutdown: run again from the last checkpoint without using an attempt.
		return river.JobSnooze(0)
	}
	if te, ok := entra.AsTokenError(err); ok {
		switch te.Kind {
		case entra.ConsentMissing:
			if verifying {
				return d.revoke(ctx, tid, fmt.Sprintf("the app was not found in the tenant after waiting %s (%s): consent was not granted or was removed", d.ConsentPropagationWait, te.Code()))
			}
			return d.revoke(ctx, tid, fmt.Sprintf("the app is no longer installed in the tenant (%s)", te.Code()))
		case entra.TenantNotFound:
			return d.revoke(ctx, tid, fmt.Sprintf("the tenant no longer exists in Microsoft Entra ID (%s)", te.Code()))
		case entra.ServicePrincipalDisabled:
			return d.revoke(ctx, tid, fmt.Sprintf("an administrator disabled the app in the tenant (%s)", te.Code()))
		case entra.AppCredentialBroken:
			// Not the tenant's fault: every tenant fails alike until an
			// operator fixes the credential. Say so once, loudly.
			if d.credBroken.CompareAndSwap(false, true) {
				d.log(ctx).Error("Microsoft Entra ID rejects the app's own credential; fix ENTRA_CLIENT_SECRET / ENTRA_CLIENT_CERT_FILE / ENTRA_FEDERATED_TOKEN_FILE. Tenants keep their status; jobs wait.",
					"tenant_id", tid, "error_code", te.Code(), "oauth_error", te.OAuthError)
			}
			return river.JobSnooze(d.CredentialBrokenSnooze)
		}
	}
	var ge *graph.Error
	if errors.As(err, &ge) {
		switch ge.Kind {
		case graph.ErrConsentRevoked:
			return d.revoke(ctx, tid, "Microsoft Graph no longer recognises the app in the tenant (Authorization_IdentityNotFound)")
		case graph.ErrInsufficientPermissions:
			return d.insufficient(ctx, tid, ge)
		}
	}
	if wait := dirsync.RetryAfter(err); wait > 0 {
		// Throttled longer than the Graph client waits in process.
		d.log(ctx).Info("tenant throttled; job snoozed", "tenant_id", tid, "retry_after", wait.String())
		return river.JobSnooze(wait)
	}
	return d.recordFailure(ctx, tid, err)
}

// recordFailure counts a transient failure and backs the tenant off, as
// miniflux parks failing feeds: the job completes and the fan-out retries
// the tenant when its next_sync_at comes.
func (d *Deps) recordFailure(ctx context.Context, tid string, err error) error {
	reason := "sync failed: " + err.Error()
	n, ferr := d.Store.TenantSyncFailed(ctx, tid, reason, func(failures int) time.Time {
		return d.Now().Add(FailureBackoff(failures, d.SyncInterval))
	})
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	d.log(ctx).Warn("tenant sync failed", "tenant_id", tid, "failures", n, "error", err.Error())
	return nil
}

// FailureBackoff is the wait before the next sync after failures
// consecutive failures: 2m, 4m, 8m … doubling, at most max(interval, 12h)…
// capped at 24h.
func FailureBackoff(failures int, interval time.Duration) time.Duration {
	d := time.Minute << min(failures, 11)
	return min(d, max(interval, 12*time.Hour), 24*time.Hour)
}

// revoke moves the tenant to consent_revoked and schedules the purge of its
// copy after PURGE_AFTER, in one transaction.
func (d *Deps) revoke(ctx context.Context, tid, reason string) error {
	ctx = context.WithoutCancel(ctx)
	client := river.ClientFromContext[pgx.Tx](ctx)
	err := d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		if err := st.TenantSetStatus(ctx, tid, domain.TenantConsentRevoked, reason, "worker"); err != nil {
			return err
		}
		opts := PurgeTenantArgs{}.InsertOpts()
		opts.ScheduledAt = d.Now().Add(d.PurgeAfter)
		_, err := client.InsertTx(ctx, tx, PurgeTenantArgs{TenantID: tid}, &opts)
		return err
	})
	if err != nil {
		return err
	}
	d.log(ctx).Warn("tenant consent revoked", "tenant_id", tid, "reason", reason)
	return nil
}

// insufficient moves the tenant to insufficient_permissions, naming the
// roles a fresh token lacks when it can tell.
func (d *Deps) insufficient(ctx context.Context, tid string, ge *graph.Error) error {
	reason := fmt.Sprintf("Microsoft Graph denied access (HTTP 403 %s)", ge.Code)
	if tok, err := d.Tokens.Token(ctx, tid); err == nil {
		if missing := entra.MissingRoles(tok.Roles); len(missing) > 0 {
			reason += "; missing application permissions: " + strings.Join(missing, ", ")
		}
	}
	if err := d.Store.TenantSetStatus(ctx, tid, domain.TenantInsufficientPermissions, reason, "worker"); err != nil {
		return err
	}
	d.log(ctx).Warn("tenant lacks permissions", "tenant_id", tid, "reason", reason)
	return nil
}

func (d *Deps) credentialOK() {
	if d.credBroken.CompareAndSwap(true, false) {
		d.Logger.Info("Microsoft Entra ID accepts the app's credential again")
	}
}

// ---- PurgeTenant ----

type purgeWorker struct {
	river.WorkerDefaults[PurgeTenantArgs]
	d *Deps
}

// Work deletes the directory copy of a tenant that is still disconnected or
// revoked PURGE_AFTER after it became so; a reconnected tenant keeps it.
func (w *purgeWorker) Work(ctx context.Context, job *river.Job[PurgeTenantArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	t, err := d.Store.TenantGet(ctx, tid)
	if errors.Is(err, domain.ErrNotFound) {
		return nil // the tenant row is gone, and its copy with it (ON DELETE CASCADE)
	}
	if err != nil {
		return err
	}
	if t.Status != domain.TenantDisconnected && t.Status != domain.TenantConsentRevoked {
		return nil
	}
	if due := t.StatusChangedAt.Add(d.PurgeAfter); d.Now().Before(due) {
		return river.JobSnooze(due.Sub(d.Now()))
	}
	if err := d.Store.DirectoryPurge(ctx, tid); err != nil {
		return err
	}
	if err := d.Store.TenantEventAdd(ctx, domain.TenantEvent{TenantID: tid, Kind: domain.EventPurged,
		FromStatus: string(t.Status), ToStatus: string(t.Status), Reason: "directory copy deleted", Actor: "worker"}); err != nil {
		return err
	}
	d.log(ctx).Info("tenant directory purged", "tenant_id", tid)
	return nil
}

// ---- periodic fan-out ----

type fanoutWorker struct {
	river.WorkerDefaults[SyncFanoutArgs]
	d *Deps
}

const fanoutBatch = 1000

// Work enqueues a SyncTenant for every due tenant, claiming each (next_sync_at
// moves one interval ahead) in the same transaction as its InsertMany, so a
// tenant is enqueued once however long its queue wait.
func (w *fanoutWorker) Work(ctx context.Context, _ *river.Job[SyncFanoutArgs]) error {
	d := w.d
	client := river.ClientFromContext[pgx.Tx](ctx)
	total := 0
	for {
		n := 0
		err := d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
			now := d.Now()
			ids, err := st.TenantClaimDue(ctx, now, now.Add(d.SyncInterval), fanoutBatch)
			if err != nil || len(ids) == 0 {
				return err
			}
			params := make([]river.InsertManyParams, len(ids))
			for i, id := range ids {
				params[i] = river.InsertManyParams{Args: SyncTenantArgs{TenantID: id}}
			}
			if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("enqueue due syncs: %w", err)
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return err
		}
		total += n
		if n < fanoutBatch {
			break
		}
	}
	if total > 0 {
		d.Logger.Info("due tenants enqueued", "count", total)
	}
	return nil
}

type jobIDKey struct{}

func withJobID(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, jobIDKey{}, id)
}

// log is the logger for a job's lines: it carries the job's job_id.
func (d *Deps) log(ctx context.Context) *slog.Logger {
	if id, ok := ctx.Value(jobIDKey{}).(int64); ok {
		return d.Logger.With("job_id", id)
	}
	return d.Logger
}
