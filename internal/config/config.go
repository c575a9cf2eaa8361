// Package config reads each process's typed configuration from the
// environment, with the variable names of docs/architecture.md, and validates it,
// naming every problem at once. It imports domain only.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Secret is a configuration value that must never be printed or logged.
type Secret string

const redacted = "[redacted]"

// Reveal returns the value itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString masks the value for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue masks the value in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the value in JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// DatabaseURL is a Postgres connection string whose password is masked
// when printed.
type DatabaseURL string

// Reveal returns the connection string itself.
func (d DatabaseURL) Reveal() string { return string(d) }

// String masks the password, if any.
func (d DatabaseURL) String() string {
	u, err := url.Parse(string(d))
	if err != nil || u.Scheme == "" {
		if strings.Contains(string(d), "password") {
			return redacted
		}
		return string(d)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// GoString masks the password for %#v.
func (d DatabaseURL) GoString() string { return d.String() }

// LogValue masks the password in slog output.
func (d DatabaseURL) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalText masks the password in JSON and text encodings.
func (d DatabaseURL) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Common is what every process reads.
type Common struct {
	DatabaseURL DatabaseURL `env:"DATABASE_URL"`
	LogFormat   string      `env:"LOG_FORMAT" envDefault:"json"` // json or text
	LogLevel    string      `env:"LOG_LEVEL" envDefault:"info"`  // debug, info, warn, error
}

// Entra is how a process reaches Entra ID and Microsoft Graph as the app.
type Entra struct {
	AuthorityHost string `env:"ENTRA_AUTHORITY_HOST" envDefault:"https://login.microsoftonline.com"`
	GraphBaseURL  string `env:"GRAPH_BASE_URL" envDefault:"https://graph.microsoft.com"`
	ClientID      string `env:"ENTRA_CLIENT_ID"`
	ClientSecret  Secret `env:"ENTRA_CLIENT_SECRET"`
	// ClientCertFile and ClientKeyFile are a PEM certificate and its RSA key.
	ClientCertFile string `env:"ENTRA_CLIENT_CERT_FILE"`
	ClientKeyFile  string `env:"ENTRA_CLIENT_KEY_FILE"`
	// FederatedTokenFile holds an assertion, re-read on every token request.
	FederatedTokenFile string `env:"ENTRA_FEDERATED_TOKEN_FILE"`
	// CAFile holds extra PEM roots trusted for both hosts.
	CAFile string `env:"ENTRA_CA_FILE"`
}

// Server configures cmd/server.
type Server struct {
	Common
	Entra
	PublicBaseURL    string `env:"PUBLIC_BASE_URL" envDefault:"http://localhost:8080"`
	HTTPAddr         string `env:"HTTP_ADDR" envDefault:":8080"`
	OperatorTenantID string `env:"OPERATOR_TENANT_ID"`
	OperatorAPIToken Secret `env:"OPERATOR_API_TOKEN"`
	// TrustedProxies are the load balancers (comma-separated CIDRs) whose
	// X-Forwarded-For names the client for the callbacks' rate limit;
	// empty means clients connect directly.
	TrustedProxies Prefixes `env:"TRUSTED_PROXIES"`
	// WebhookAllowPrivate lets webhook endpoints be http and on loopback or
	// private addresses: development and tests only.
	WebhookAllowPrivate bool `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
}

// Prefixes are comma-separated CIDRs, spaces allowed around each.
type Prefixes []netip.Prefix

// UnmarshalText parses comma-separated CIDRs.
func (p *Prefixes) UnmarshalText(b []byte) error {
	var out Prefixes
	for _, f := range strings.Split(string(b), ",") {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		out = append(out, pfx)
	}
	*p = out
	return nil
}

// Worker configures cmd/worker.
type Worker struct {
	Common
	Entra
	SyncInterval time.Duration `env:"SYNC_INTERVAL" envDefault:"1h"`
	Concurrency  int           `env:"WORKER_CONCURRENCY" envDefault:"8"`
	PurgeAfter   time.Duration `env:"PURGE_AFTER" envDefault:"0"`
	// WebhookAllowPrivate lets deliveries reach http URLs and loopback or
	// private addresses: development and tests only.
	WebhookAllowPrivate bool `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	// ConsentPropagationWait bounds how long a new consent may stay
	// invisible to the token endpoint (protocol §6.1) before verification fails.
	ConsentPropagationWait time.Duration `env:"CONSENT_PROPAGATION_WAIT" envDefault:"2m"`
	// AdminAddr serves /healthz, /readyz and /metrics of the worker.
	AdminAddr string `env:"WORKER_ADMIN_ADDR" envDefault:":8081"`
	// Pprof adds Go's profiles (net/http/pprof) under /debug/pprof/ on the
	// admin listener: CPU and heap profiles of a running worker, for a
	// fleet that is slow or large. Off by default; the admin listener must
	// not be reachable from outside when it is on.
	Pprof bool `env:"WORKER_PPROF" envDefault:"false"`
	// SyncSlice is how long one sync job fetches pages before it continues
	// in a follow-up run from its checkpoint.
	SyncSlice time.Duration `env:"SYNC_SLICE" envDefault:"1m"`
	// SyncLease is how long a sync's claim on its tenant outlives its last
	// committed page: the longest a dead worker blocks its tenants.
	SyncLease time.Duration `env:"SYNC_LEASE" envDefault:"2m"`
	// RescueAfter is how long a job may stay running before it is taken for
	// a dead worker's and run again; every job's timeout is half of it.
	RescueAfter time.Duration `env:"WORKER_RESCUE_AFTER" envDefault:"10m"`
	// EventsRetention is how long change-feed events are kept for
	// /api/v1/events; older ones are deleted by a periodic job
	// (docs/events.md).
	EventsRetention time.Duration `env:"EVENTS_RETENTION" envDefault:"720h"`
	// ChangeNotifications is "on" to keep Graph change notification
	// subscriptions for active tenants (protocol §7, issue 17), "off" to sync
	// on SYNC_INTERVAL only.
	ChangeNotifications string `env:"CHANGE_NOTIFICATIONS" envDefault:"off"`
	// SyncIntervalSubscribed is the periodic interval of a tenant whose
	// subscriptions are live: notifications trigger its rounds, and the
	// periodic round is the safety net. At least SYNC_INTERVAL.
	SyncIntervalSubscribed time.Duration `env:"SYNC_INTERVAL_SUBSCRIBED" envDefault:"6h"`
	// PublicBaseURL is the server's external URL: the subscriptions'
	// notificationUrl and lifecycleNotificationUrl derive from it.
	PublicBaseURL string `env:"PUBLIC_BASE_URL" envDefault:"http://localhost:8080"`
}

// Notifications reports whether CHANGE_NOTIFICATIONS is on.
func (c Worker) Notifications() bool { return c.ChangeNotifications == "on" }

// NotificationURL is where Graph posts change notifications: the server's
// POST /graph/notifications.
func (c Worker) NotificationURL() string {
	return strings.TrimRight(c.PublicBaseURL, "/") + "/graph/notifications"
}

// LifecycleURL is where Graph posts lifecycle notifications: the server's
// POST /graph/lifecycle.
func (c Worker) LifecycleURL() string {
	return strings.TrimRight(c.PublicBaseURL, "/") + "/graph/lifecycle"
}

// Migrate configures the migrate command: the database only.
type Migrate struct {
	Common
}

// LoadServer reads and validates the server configuration.
func LoadServer(getenv func(string) string) (Server, error) {
	c, err := parse[Server](getenv)
	if err != nil {
		return c, err
	}
	var p problems
	p.common(c.Common)
	p.entra(c.Entra)
	p.url("PUBLIC_BASE_URL", c.PublicBaseURL, "http", "https")
	if c.HTTPAddr == "" {
		p.add("HTTP_ADDR must not be empty")
	}
	if c.OperatorTenantID != "" && !domain.IsGUID(c.OperatorTenantID) {
		p.add("OPERATOR_TENANT_ID must be a tenant GUID")
	}
	if t := c.OperatorAPIToken.Reveal(); t != "" && len(t) < 16 {
		p.add("OPERATOR_API_TOKEN must be at least 16 characters")
	}
	return c, p.err()
}

// LoadWorker reads and validates the worker configuration.
func LoadWorker(getenv func(string) string) (Worker, error) {
	c, err := parse[Worker](getenv)
	if err != nil {
		return c, err
	}
	var p problems
	p.common(c.Common)
	p.entra(c.Entra)
	if c.SyncInterval < time.Minute {
		p.add("SYNC_INTERVAL must be at least 1m")
	}
	if c.Concurrency < 1 || c.Concurrency > 1000 {
		p.add("WORKER_CONCURRENCY must be between 1 and 1000")
	}
	if c.PurgeAfter < 0 {
		p.add("PURGE_AFTER must not be negative")
	}
	if c.ConsentPropagationWait < 0 {
		p.add("CONSENT_PROPAGATION_WAIT must not be negative")
	}
	if c.SyncLease < time.Second {
		p.add("SYNC_LEASE must be at least 1s")
	}
	if c.RescueAfter < 2*time.Second {
		p.add("WORKER_RESCUE_AFTER must be at least 2s")
	}
	if c.SyncSlice <= 0 || c.SyncSlice >= c.RescueAfter/2 {
		p.add("SYNC_SLICE must be positive and under half of WORKER_RESCUE_AFTER (a slice must end before its job's timeout)")
	}
	if c.EventsRetention < time.Hour {
		p.add("EVENTS_RETENTION must be at least 1h (readers of /api/v1/events need time to catch up)")
	}
	if c.ChangeNotifications != "on" && c.ChangeNotifications != "off" {
		p.add("CHANGE_NOTIFICATIONS must be on or off")
	}
	if c.SyncIntervalSubscribed < c.SyncInterval {
		p.add("SYNC_INTERVAL_SUBSCRIBED must be at least SYNC_INTERVAL (it is the safety net of subscribed tenants)")
	}
	p.url("PUBLIC_BASE_URL", c.PublicBaseURL, "http", "https")
	return c, p.err()
}

// LoadMigrate reads the configuration of the migrate command.
func LoadMigrate(getenv func(string) string) (Migrate, error) {
	c, err := parse[Migrate](getenv)
	if err != nil {
		return c, err
	}
	var p problems
	p.common(c.Common)
	return c, p.err()
}

func parse[T any](getenv func(string) string) (T, error) {
	var zero T
	environ := map[string]string{}
	for _, name := range names(reflect.TypeOf(zero)) {
		if v := getenv(name); v != "" {
			environ[name] = v
		}
	}
	c, err := env.ParseAsWithOptions[T](env.Options{Environment: environ})
	if err == nil {
		return c, nil
	}
	// Name the variable, not the Go field; only durations, ints and CIDRs
	// can fail to parse, so no secret value reaches the message.
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return c, fmt.Errorf("configuration: %w", err)
	}
	var p problems
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			p.add("%s: cannot parse %q as %s", varOf(reflect.TypeOf(zero), pe.Name), environ[varOf(reflect.TypeOf(zero), pe.Name)], pe.Type)
			continue
		}
		p.add("%v", e)
	}
	return c, p.err()
}

// varOf returns the variable name of the struct field named field.
func varOf(t reflect.Type, field string) string {
	f, ok := t.FieldByName(field)
	if !ok {
		return field
	}
	return strings.Split(f.Tag.Get("env"), ",")[0]
}

// Names lists every variable the config c (a value such as Server{}) reads.
func Names(c any) []string { return names(reflect.TypeOf(c)) }

// names lists every variable a config type reads.
func names(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, names(f.Type)...)
			continue
		}
		if n := f.Tag.Get("env"); n != "" {
			out = append(out, strings.Split(n, ",")[0])
		}
	}
	return out
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("configuration: " + strings.Join(p, "; "))
}

func (p *problems) common(c Common) {
	if c.DatabaseURL == "" {
		p.add("DATABASE_URL is required (e.g. postgres://postgres@127.0.0.1:5432/tenantsync?sslmode=disable)")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.add("LOG_FORMAT must be json or text")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		p.add("LOG_LEVEL must be debug, info, warn or error")
	}
}

func (p *problems) entra(e Entra) {
	if e.ClientID == "" {
		p.add("ENTRA_CLIENT_ID is required")
	} else if !domain.IsGUID(e.ClientID) {
		p.add("ENTRA_CLIENT_ID must be the app's client ID (a GUID)")
	}
	creds := 0
	if e.ClientSecret != "" {
		creds++
	}
	if e.ClientCertFile != "" || e.ClientKeyFile != "" {
		creds++
		if e.ClientCertFile == "" || e.ClientKeyFile == "" {
			p.add("ENTRA_CLIENT_CERT_FILE and ENTRA_CLIENT_KEY_FILE go together")
		}
	}
	if e.FederatedTokenFile != "" {
		creds++
	}
	if creds != 1 {
		p.add("set exactly one of ENTRA_CLIENT_SECRET, ENTRA_CLIENT_CERT_FILE+ENTRA_CLIENT_KEY_FILE, ENTRA_FEDERATED_TOKEN_FILE")
	}
	for _, f := range []struct{ name, path string }{
		{"ENTRA_CLIENT_CERT_FILE", e.ClientCertFile}, {"ENTRA_CLIENT_KEY_FILE", e.ClientKeyFile},
		{"ENTRA_FEDERATED_TOKEN_FILE", e.FederatedTokenFile}, {"ENTRA_CA_FILE", e.CAFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add("%s: cannot read %s", f.name, f.path)
		}
	}
	p.url("ENTRA_AUTHORITY_HOST", e.AuthorityHost, "https")
	p.url("GRAPH_BASE_URL", e.GraphBaseURL, "https")
}

// url checks that v is an absolute URL with one of the schemes and no path.
func (p *problems) url(name, v string, schemes ...string) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		p.add("%s must be an absolute URL such as %s://host", name, schemes[len(schemes)-1])
		return
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		p.add("%s must use %s", name, strings.Join(schemes, " or "))
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		p.add("%s must not have a path or query", name)
	}
}

// Print writes the configuration as NAME=value lines, sorted, secrets masked.
func Print(c any) string {
	var lines []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				walk(v.Field(i))
				continue
			}
			name := strings.Split(f.Tag.Get("env"), ",")[0]
			if name == "" {
				continue
			}
			lines = append(lines, fmt.Sprintf("%s=%v", name, v.Field(i).Interface()))
		}
	}
	walk(reflect.Indirect(reflect.ValueOf(c)))
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// NewLogger builds the process logger from LOG_FORMAT and LOG_LEVEL.
func NewLogger(c Common, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel)) // validated at load
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
