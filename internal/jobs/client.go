package jobs

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"golang.org/x/time/rate"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
	"github.com/tenantsync/tenantsync/internal/webhook"
)

// Deps are what the workers use. Durations say their unit in the type; a
// zero value takes the default named on the field.
type Deps struct {
	Store  *postgres.Store
	Tokens *entra.TokenSource
	Graph  *graph.Client
	Syncer *dirsync.Syncer // nil: dirsync.New(Graph, Store, nil)
	Logger *slog.Logger    // nil: discard
	Now    func() time.Time

	// SyncInterval is how often an active tenant is synced (SYNC_INTERVAL; default 1h).
	SyncInterval time.Duration
	// PurgeAfter is how long a disconnected or revoked tenant's copy is kept (PURGE_AFTER; default 0).
	PurgeAfter time.Duration
	// ConsentPropagationWait bounds retries of AADSTS700016 and of missing
	// roles after a fresh consent (CONSENT_PROPAGATION_WAIT; default 2m, protocol §6.1).
	ConsentPropagationWait time.Duration
	// SyncSlice is how long one sync job fetches pages before it snoozes
	// and continues from its checkpoint (SYNC_SLICE; default 1m).
	SyncSlice time.Duration
	// SyncLease is how long a sync's claim on its tenant lasts past its last
	// committed page (SYNC_LEASE; default 2m): the longest a dead worker
	// keeps another job from syncing the tenant.
	SyncLease time.Duration
	// RescueAfter is how long a job may stay running before River takes it
	// for one of a dead worker and runs it again (WORKER_RESCUE_AFTER;
	// default 10m). Every job's timeout is at most half of it.
	RescueAfter time.Duration
	// FanoutInterval is how often the leader enqueues due tenants (default 1m).
	FanoutInterval time.Duration
	// EventsRetention is how long change-feed events are kept
	// (EVENTS_RETENTION; default 720h, docs/events.md).
	EventsRetention time.Duration
	// EventsPruneInterval is how often the leader deletes events older than
	// EventsRetention (default 10m).
	EventsPruneInterval time.Duration
	// EventsPruneBatch is how many events one prune transaction deletes at
	// most (default 5000), so no transaction holds the feed back for long.
	EventsPruneBatch int
	// CredentialBrokenSnooze is how long a job waits when the app's own
	// credential is rejected (default 5m).
	CredentialBrokenSnooze time.Duration
	// MaxSnoozes bounds how often one sync job snoozes on throttling before
	// it counts as a failure (default 50).
	MaxSnoozes int
	// Metrics records sync runs; nil records nothing.
	Metrics *metrics.Metrics

	// WebhookAllowPrivate lets deliveries go to http URLs and to loopback
	// and private addresses (WEBHOOK_ALLOW_PRIVATE; development and tests).
	WebhookAllowPrivate bool
	// WebhookTLS configures TLS of deliveries; nil is the default (tests add
	// their receiver's root).
	WebhookTLS *tls.Config
	// WebhookDispatchInterval is how often the leader hands new events to
	// the endpoints (default 1s).
	WebhookDispatchInterval time.Duration
	// WebhookSweepInterval is how often the dispatcher also enqueues every
	// (endpoint, tenant) pair that still has deliveries to make (default 15s).
	WebhookSweepInterval time.Duration
	// WebhookTimeout bounds one delivery attempt (default 15s, at most half
	// of the job timeout).
	WebhookTimeout time.Duration
	// WebhookRetrySchedule is the wait after each failed attempt, the last
	// entry repeating (default 5s, 5m, 30m, 2h, 5h, 10h, 10h, after
	// Standard Webhooks' reference schedule).
	WebhookRetrySchedule []time.Duration
	// WebhookDisableAfter is how long an endpoint may fail without a single
	// success before it is disabled (default 5 days).
	WebhookDisableAfter time.Duration
	// WebhookSlice is how long one deliver job sends before it makes way
	// for other pairs (default 30s, at most a quarter of the job timeout).
	WebhookSlice time.Duration
	// WebhookHistoryRetention is how long finished deliveries stay in an
	// endpoint's history (default 720h); the dispatcher's sweep deletes
	// older ones in batches.
	WebhookHistoryRetention time.Duration

	// ChangeNotifications keeps Graph change notification subscriptions for
	// active tenants (CHANGE_NOTIFICATIONS=on; default off, issue 17).
	ChangeNotifications bool
	// NotificationURL and LifecycleURL are the server's
	// PUBLIC_BASE_URL/graph/notifications and /graph/lifecycle.
	NotificationURL, LifecycleURL string
	// SyncIntervalSubscribed is how often a subscribed tenant is synced
	// periodically (SYNC_INTERVAL_SUBSCRIBED; default 6h, at least SyncInterval).
	SyncIntervalSubscribed time.Duration
	// SubscriptionRenewWindow: a subscription expiring within it is renewed
	// (default 7 days).
	SubscriptionRenewWindow time.Duration
	// SubscriptionSpread is the largest random amount taken off a
	// subscription's expiration, so that renewals spread out (default 3 days).
	SubscriptionSpread time.Duration
	// SubscriptionRetry is how long a tenant left periodic (quota,
	// permission, unreachable, error) waits before the next attempt
	// (default 6h).
	SubscriptionRetry time.Duration
	// SubscriptionCheckInterval is how often the leader enqueues the upkeep
	// of expiring and missing subscriptions (default 10m).
	SubscriptionCheckInterval time.Duration
	// SubscriptionBatch bounds the tenants one check enqueues, of each kind
	// (default 500).
	SubscriptionBatch int
	// SubscriptionWrites paces this process's subscription writes (POST,
	// PATCH, DELETE). Graph allows 2,000 per 20 s per app over all tenants
	// (protocol §7); the default, 50/s with a burst of 50, leaves room for
	// two worker processes. It is per process: more processes need a lower
	// rate each.
	SubscriptionWrites *rate.Limiter

	credBroken       atomic.Bool
	webhookClient    *http.Client
	lastWebhookSweep atomic.Int64 // UnixNano
}

// DefaultWebhookRetrySchedule is the published retry schedule of webhook
// deliveries (docs/webhooks.md).
var DefaultWebhookRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

func (d *Deps) defaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	orDefault(&d.SyncInterval, time.Hour)
	if d.ConsentPropagationWait == 0 {
		d.ConsentPropagationWait = 2 * time.Minute
	}
	orDefault(&d.SyncSlice, time.Minute)
	orDefault(&d.SyncLease, 2*time.Minute)
	orDefault(&d.RescueAfter, 10*time.Minute)
	orDefault(&d.FanoutInterval, time.Minute)
	orDefault(&d.EventsRetention, 720*time.Hour)
	orDefault(&d.EventsPruneInterval, 10*time.Minute)
	orDefault(&d.EventsPruneBatch, 5000)
	orDefault(&d.CredentialBrokenSnooze, 5*time.Minute)
	orDefault(&d.MaxSnoozes, 50)
	orDefault(&d.SyncIntervalSubscribed, 6*time.Hour)
	d.SyncIntervalSubscribed = max(d.SyncIntervalSubscribed, d.SyncInterval)
	orDefault(&d.SubscriptionRenewWindow, 7*24*time.Hour)
	if d.SubscriptionSpread == 0 {
		d.SubscriptionSpread = 3 * 24 * time.Hour
	}
	orDefault(&d.SubscriptionRetry, 6*time.Hour)
	orDefault(&d.SubscriptionCheckInterval, 10*time.Minute)
	orDefault(&d.SubscriptionBatch, 500)
	if d.SubscriptionWrites == nil {
		d.SubscriptionWrites = rate.NewLimiter(50, 50)
	}
	if d.Syncer == nil {
		d.Syncer = dirsync.New(d.Graph, d.Store, nil)
	}
	orDefault(&d.WebhookDispatchInterval, time.Second)
	orDefault(&d.WebhookSweepInterval, 15*time.Second)
	orDefault(&d.WebhookTimeout, 15*time.Second)
	if len(d.WebhookRetrySchedule) == 0 {
		d.WebhookRetrySchedule = DefaultWebhookRetrySchedule
	}
	orDefault(&d.WebhookDisableAfter, 5*24*time.Hour)
	orDefault(&d.WebhookSlice, 30*time.Second)
	orDefault(&d.WebhookHistoryRetention, 720*time.Hour)
	d.WebhookSlice = min(d.WebhookSlice, d.jobTimeout()/4)
	// An attempt must time out by itself, and be recorded as failed, before
	// the job's own timeout cancels it (which only retries it at once).
	d.WebhookTimeout = min(d.WebhookTimeout, d.jobTimeout()/2)
	if d.webhookClient == nil {
		d.webhookClient = webhook.Policy{AllowPrivate: d.WebhookAllowPrivate}.Client(d.WebhookTimeout, d.WebhookTLS)
	}
}

// orDefault sets *v to def unless it holds a positive value.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// jobTimeout is every job's timeout: half of RescueAfter, so that a job
// still alive is cancelled by its own timeout long before River would rescue
// it as a dead worker's.
func (d *Deps) jobTimeout() time.Duration { return d.RescueAfter / 2 }

// PoolSize is how many Postgres connections a worker process running
// concurrency jobs needs so that nothing waits on the pool for long: one
// per job, one more per job for the Graph requests a sync overlaps with its
// page writes, and River's own (the notifier's LISTEN connection, the
// producer, the completer, the elector and the leader's maintenance).
// No job holds a connection while it waits for another, so a smaller pool
// is slower, never stuck.
func PoolSize(concurrency int) int { return 2*concurrency + 6 }

// ClientConfig configures NewWorkerClient.
type ClientConfig struct {
	// Concurrency is WORKER_CONCURRENCY: jobs run at once by this process.
	Concurrency int
	// Tune, if set, adjusts River's configuration last (tests shorten polls).
	Tune func(*river.Config)
}

// NewWorkerClient builds the worker process's River client: the verify,
// sync, purge, fan-out, events-prune and webhook workers on the default
// queue, and the periodic fan-out, prune and webhook dispatch, which River
// runs on the elected leader only.
func NewWorkerClient(pool *pgxpool.Pool, d *Deps, cc ClientConfig) (*river.Client[pgx.Tx], error) {
	d.defaults()
	workers := river.NewWorkers()
	river.AddWorker(workers, &verifyWorker{d: d})
	river.AddWorker(workers, &syncWorker{d: d})
	river.AddWorker(workers, &purgeWorker{d: d})
	river.AddWorker(workers, &fanoutWorker{d: d})
	river.AddWorker(workers, &webhookDispatchWorker{d: d})
	river.AddWorker(workers, &webhookDeliverWorker{d: d})
	river.AddWorker(workers, &eventsPruneWorker{d: d})
	if d.ChangeNotifications {
		river.AddWorker(workers, &ensureSubscriptionsWorker{d: d})
		river.AddWorker(workers, &subscriptionsCheckWorker{d: d})
	}
	if cc.Concurrency <= 0 {
		cc.Concurrency = 8
	}
	cfg := &river.Config{
		Logger:  slog.New(quietShutdown{d.Logger.Handler()}),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cc.Concurrency}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(d.FanoutInterval),
				func() (river.JobArgs, *river.InsertOpts) { return queue.SyncFanoutArgs{}, nil },
				&river.PeriodicJobOpts{ID: "sync_fanout", RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(d.EventsPruneInterval),
				func() (river.JobArgs, *river.InsertOpts) { return queue.EventsPruneArgs{}, nil },
				&river.PeriodicJobOpts{ID: "events_prune", RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(d.WebhookDispatchInterval),
				func() (river.JobArgs, *river.InsertOpts) { return queue.WebhookDispatchArgs{}, nil },
				&river.PeriodicJobOpts{ID: "webhook_dispatch", RunOnStart: true}),
		},
		// Jobs are bounded (a sync runs in slices), so a job left running
		// longer than this belongs to a dead worker.
		JobTimeout:           d.jobTimeout(),
		RescueStuckJobsAfter: d.RescueAfter,
		// River waits FetchCooldown between two fetches (default 100 ms),
		// which caps a queue at MaxWorkers jobs per cooldown: 80 syncs/s at
		// the default concurrency, however short the syncs are
		// (docs/libraries.md §3, "Fetch cadence"). A fleet round is many short jobs.
		FetchCooldown: fetchCooldown,
	}
	if d.ChangeNotifications {
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(d.SubscriptionCheckInterval),
			func() (river.JobArgs, *river.InsertOpts) { return queue.SubscriptionsCheckArgs{}, nil },
			&river.PeriodicJobOpts{ID: "subscriptions_check", RunOnStart: true}))
	}
	if cc.Tune != nil {
		cc.Tune(cfg)
	}
	return river.NewClient(riverpgxv5.New(pool), cfg)
}

// fetchCooldown is River's pause between two fetches of jobs: with a sync
// of a small tenant taking a few milliseconds, a slot should not wait long
// for its next job (measured: BenchmarkFleetRound, make bench-fleet).
const fetchCooldown = 5 * time.Millisecond

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
