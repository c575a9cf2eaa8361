package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const (
	testClientID = "11111111-2222-3333-4444-555555555555"
	testSecret   = "s3cr3t-value-that-must-not-leak"
	testToken    = "api-token-that-must-not-leak-0123"
)

func base() map[string]string {
	return map[string]string{
		"DATABASE_URL":        "postgres://app:pgpassword-must-not-leak@db:5432/tenantsync",
		"ENTRA_CLIENT_ID":     testClientID,
		"ENTRA_CLIENT_SECRET": testSecret,
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestLoadServerDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadServer(envOf(base()))
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthorityHost != "https://login.microsoftonline.com" || c.GraphBaseURL != "https://graph.microsoft.com" ||
		c.PublicBaseURL != "http://localhost:8080" || c.HTTPAddr != ":8080" || c.LogFormat != "json" || c.LogLevel != "info" {
		t.Errorf("defaults: %+v", c)
	}
	if c.ClientSecret.Reveal() != testSecret {
		t.Errorf("secret not read")
	}
}

func TestLoadWorkerDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadWorker(envOf(base()))
	if err != nil {
		t.Fatal(err)
	}
	if c.SyncInterval.String() != "1h0m0s" || c.Concurrency != 8 || c.PurgeAfter != 0 || c.ConsentPropagationWait.String() != "2m0s" ||
		c.EventsRetention != 720*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{
			"DATABASE_URL is required",
			"ENTRA_CLIENT_ID is required",
			"set exactly one of ENTRA_CLIENT_SECRET, ENTRA_CLIENT_CERT_FILE+ENTRA_CLIENT_KEY_FILE, ENTRA_FEDERATED_TOKEN_FILE",
		}},
		{"client id not a guid", with(base(), "ENTRA_CLIENT_ID", "my-app"), []string{"ENTRA_CLIENT_ID must be the app's client ID"}},
		{"two credentials", with(base(), "ENTRA_FEDERATED_TOKEN_FILE", cert), []string{"set exactly one of"}},
		{"cert without key", with(base(), "ENTRA_CLIENT_SECRET", "", "ENTRA_CLIENT_CERT_FILE", cert), []string{"ENTRA_CLIENT_CERT_FILE and ENTRA_CLIENT_KEY_FILE go together"}},
		{"missing file", with(base(), "ENTRA_CA_FILE", filepath.Join(dir, "nope.pem")), []string{"ENTRA_CA_FILE: cannot read"}},
		{"http authority", with(base(), "ENTRA_AUTHORITY_HOST", "http://login.example"), []string{"ENTRA_AUTHORITY_HOST must use https"}},
		{"graph with path", with(base(), "GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0"), []string{"GRAPH_BASE_URL must not have a path"}},
		{"bad public url", with(base(), "PUBLIC_BASE_URL", "localhost:8080"), []string{"PUBLIC_BASE_URL must"}},
		{"bad log", with(base(), "LOG_FORMAT", "xml", "LOG_LEVEL", "loud"), []string{"LOG_FORMAT must be json or text", "LOG_LEVEL must be"}},
		{"operator tenant", with(base(), "OPERATOR_TENANT_ID", "contoso"), []string{"OPERATOR_TENANT_ID must be a tenant GUID"}},
		{"short api token", with(base(), "OPERATOR_API_TOKEN", "short"), []string{"OPERATOR_API_TOKEN must be at least 16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadServer(envOf(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := LoadWorker(envOf(map[string]string{"SYNC_INTERVAL": "10s", "WORKER_CONCURRENCY": "0", "EVENTS_RETENTION": "5m"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"DATABASE_URL is required", "ENTRA_CLIENT_ID is required", "set exactly one of", "SYNC_INTERVAL must be at least 1m",
		"WORKER_CONCURRENCY must be between", "EVENTS_RETENTION must be at least 1h"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestUnparsableValue(t *testing.T) {
	t.Parallel()
	_, err := LoadWorker(envOf(with(base(), "SYNC_INTERVAL", "hourly")))
	if err == nil || !strings.Contains(err.Error(), "SYNC_INTERVAL") {
		t.Fatalf("err = %v, want one naming SYNC_INTERVAL", err)
	}
}

func TestSecretsMasked(t *testing.T) {
	t.Parallel()
	c, err := LoadServer(envOf(with(base(), "OPERATOR_API_TOKEN", testToken)))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "secret", c.ClientSecret, "token", c.OperatorAPIToken, "db", c.DatabaseURL)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"Print": Print(c),
		"%v":    fmt.Sprintf("%v", c),
		"%+v":   fmt.Sprintf("%+v", c),
		"%#v":   fmt.Sprintf("%#v", c),
		"json":  string(js),
		"slog":  logged.String(),
	}
	for name, out := range outputs {
		for _, leak := range []string{testSecret, testToken, "pgpassword-must-not-leak"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s output leaks %q: %s", name, leak, out)
			}
		}
	}
	p := Print(c)
	for _, want := range []string{"ENTRA_CLIENT_SECRET=[redacted]", "OPERATOR_API_TOKEN=[redacted]", "DATABASE_URL=postgres://app:xxxxx@db:5432/tenantsync", "ENTRA_CLIENT_ID=" + testClientID} {
		if !strings.Contains(p, want) {
			t.Errorf("Print lacks %q:\n%s", want, p)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	c, err := LoadServer(envOf(with(base(), "TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32")))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.TrustedProxies); got != "[10.0.0.0/8 2001:db8::/32]" {
		t.Errorf("TRUSTED_PROXIES read as %s", got)
	}
	_, err = LoadServer(envOf(with(base(), "TRUSTED_PROXIES", "10.0.0.1")))
	if err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Errorf("a bare address: %v, want an error naming TRUSTED_PROXIES", err)
	}
}

func TestChangeNotifications(t *testing.T) {
	t.Parallel()
	c, err := LoadWorker(envOf(base()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Notifications() || c.SyncIntervalSubscribed != 6*time.Hour {
		t.Errorf("defaults: notifications %v, subscribed interval %v; want off, 6h", c.Notifications(), c.SyncIntervalSubscribed)
	}
	c, err = LoadWorker(envOf(with(base(), "CHANGE_NOTIFICATIONS", "on", "PUBLIC_BASE_URL", "https://sync.example.com/",
		"SYNC_INTERVAL_SUBSCRIBED", "12h")))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Notifications() || c.SyncIntervalSubscribed != 12*time.Hour {
		t.Errorf("on: notifications %v, subscribed interval %v", c.Notifications(), c.SyncIntervalSubscribed)
	}
	if c.NotificationURL() != "https://sync.example.com/graph/notifications" || c.LifecycleURL() != "https://sync.example.com/graph/lifecycle" {
		t.Errorf("URLs: %s, %s", c.NotificationURL(), c.LifecycleURL())
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"neither on nor off", with(base(), "CHANGE_NOTIFICATIONS", "true"), "CHANGE_NOTIFICATIONS must be on or off"},
		{"subscribed interval below the interval", with(base(), "SYNC_INTERVAL", "2h", "SYNC_INTERVAL_SUBSCRIBED", "1h"), "SYNC_INTERVAL_SUBSCRIBED must be at least SYNC_INTERVAL"},
		{"public URL with a path", with(base(), "PUBLIC_BASE_URL", "https://sync.example.com/app"), "PUBLIC_BASE_URL must not have a path"},
		{"public URL not absolute", with(base(), "PUBLIC_BASE_URL", "sync.example.com"), "PUBLIC_BASE_URL must be an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadWorker(envOf(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}
