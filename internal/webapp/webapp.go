// Package webapp is tenantsync's echo v4 server: the routes table, the
// middleware chain, browser sessions in Postgres, the customer portal's
// handlers (one file per page, noun_verb) and template rendering. It sits
// above onboarding, entra and postgres; only cmd/server builds it.
package webapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/health"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// Config holds the server's collaborators and settings. cmd/server fills it.
type Config struct {
	// PublicBaseURL is PUBLIC_BASE_URL; cookies are Secure when it is https.
	PublicBaseURL string
	// ClientID is ENTRA_CLIENT_ID, shown where admins must find the app.
	ClientID string
	// Pool is the database; sessions live in its sessions table.
	Pool *pgxpool.Pool
	// Store runs the queries.
	Store *postgres.Store
	// Jobs is an insert-only River client (queue.NewInserter).
	Jobs *river.Client[pgx.Tx]
	// SignIn runs OpenID Connect sign-in.
	SignIn *entra.SignIn
	// Onboarding runs the connect flow's rules (its Registry is NewRegistry,
	// its AdminLink is AdminLink).
	Onboarding *onboarding.Service
	// Actions are the operator's actions on tenants (console and API).
	Actions *operator.Actions
	// Ready answers /readyz; its owner closes it.
	Ready *health.Checker
	// Logger receives the request log and 5xx errors; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of sign-in and connect states; nil means time.Now.
	Now func() time.Time
	// TrustedProxies are the load balancers whose X-Forwarded-For names the
	// client; empty means the peer address is the client.
	TrustedProxies []netip.Prefix
	// CallbackRate is the requests per second allowed per client IP on
	// /auth/callback and /connect/callback; 0 means 2.
	CallbackRate rate.Limit
	// CallbackBurst is the burst on the callbacks; 0 means 20.
	CallbackBurst int
	// RequestTimeout bounds each request's context; 0 means 10 s.
	RequestTimeout time.Duration
	// SessionLifetime is the absolute lifetime of a session; 0 means 8 h.
	SessionLifetime time.Duration
	// SessionCleanup is how often expired sessions are deleted; 0 means 5 min.
	SessionCleanup time.Duration
	// APIToken is OPERATOR_API_TOKEN; the JSON API is mounted only when set.
	APIToken string
	// WebhookAllowPrivate is WEBHOOK_ALLOW_PRIVATE, for the API's webhook
	// endpoint URLs.
	WebhookAllowPrivate bool
	// OperatorTenantID is OPERATOR_TENANT_ID: its users holding the app role
	// "Operator" may use /console. Empty turns the console off (404).
	OperatorTenantID string
	// Metrics records HTTP requests and is served at /metrics.
	Metrics *metrics.Metrics
}

// Server is the HTTP handler of cmd/server.
type Server struct {
	cfg        Config
	echo       *echo.Echo
	log        *slog.Logger
	now        func() time.Time
	store      *postgres.Store
	pool       *pgxpool.Pool
	signin     *entra.SignIn
	onboarding *onboarding.Service
	sessions   *scs.SessionManager
	stop       chan struct{}
	stopped    chan struct{}
	closeOnce  sync.Once
	pages      *pages
	secure     bool
	metrics    *metrics.Metrics
	actions    *operator.Actions
	ready      *health.Checker // built once: /readyz asks it on every probe
	// bodyLimits is the most each route reads from a body, by "METHOD
	// /pattern" (routes fills it; limitBody reads it).
	bodyLimits map[string]int64
}

// New builds the server: templates parsed once, middleware and routes set.
func New(cfg Config) (*Server, error) {
	if cfg.Pool == nil || cfg.Store == nil || cfg.SignIn == nil || cfg.Jobs == nil || cfg.Onboarding == nil ||
		cfg.Actions == nil || cfg.Ready == nil || cfg.Metrics == nil {
		return nil, errors.New("webapp: pool, store, sign-in, jobs, onboarding, actions, readiness and metrics are required")
	}
	base, err := url.Parse(cfg.PublicBaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("webapp: PUBLIC_BASE_URL %q is not an absolute URL", cfg.PublicBaseURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CallbackRate == 0 {
		cfg.CallbackRate = 2
	}
	if cfg.CallbackBurst == 0 {
		cfg.CallbackBurst = 20
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	if cfg.SessionCleanup == 0 {
		cfg.SessionCleanup = 5 * time.Minute
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, store: cfg.Store, pool: cfg.Pool,
		signin: cfg.SignIn, onboarding: cfg.Onboarding, pages: p, actions: cfg.Actions, ready: cfg.Ready,
		secure:  strings.EqualFold(base.Scheme, "https"),
		metrics: cfg.Metrics,
	}
	// pgxstore's own cleanup goroutine races on its stop channel; sweep here.
	s.sessions = newSessionManager(pgxstore.NewWithCleanupInterval(cfg.Pool, 0), cfg.SessionLifetime, s.secure, s.log)
	s.stop, s.stopped = make(chan struct{}), make(chan struct{})
	go s.sweepSessions(cfg.SessionCleanup)
	s.echo = echo.New()
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.IPExtractor = clientIP(cfg.TrustedProxies)
	s.echo.HTTPErrorHandler = s.handleError
	s.middleware()
	s.routes()
	return s, nil
}

// clientIP extracts the client address the callbacks' rate limit keys on.
// Without an extractor, echo v4 trusts a spoofable X-Forwarded-For
// (docs/libraries.md §6); behind load balancers, only the hops they add are
// believed, and nothing is trusted for being private or loopback.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Echo exposes the router, e.g. for the console and API routes of later
// issues or for tests listing routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Close stops the session sweeper. It closes neither the pool nor the
// readiness checker, which its owner built.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.stopped
}

// AdminLink returns the connect link that a non-admin forwards to an
// administrator, on publicBaseURL (onboarding.Config.AdminLink).
func AdminLink(publicBaseURL string) func(tenantID string) string {
	public := strings.TrimRight(publicBaseURL, "/")
	return func(tenantID string) string { return public + connectPath(tenantID) }
}

// sweepSessions deletes expired sessions every interval until Close.
func (s *Server) sweepSessions(interval time.Duration) {
	defer close(s.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := s.store.SessionDeleteExpired(ctx); err != nil {
				s.log.Warn("session sweep", "err", err)
			}
			cancel()
		}
	}
}
