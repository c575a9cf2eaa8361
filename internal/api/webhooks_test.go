package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantsync/tenantsync/internal/api"
)

// fakeDNS stands in for DNS in the API tests: public and private names.
func fakeDNS(_ context.Context, host string) ([]netip.Addr, error) {
	addrs := map[string][]string{
		"hooks.example.com": {"93.184.216.34"},
		"other.example.com": {"2606:2800:220:1:248:1893:25c8:1946"},
		"intranet.example":  {"10.1.2.3"},
		"metadata.example":  {"169.254.169.254"},
		"loop6.example":     {"::1"},
		"localhost":         {"127.0.0.1", "::1"},
	}[host]
	if addrs == nil {
		return nil, errors.New("no such host")
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = netip.MustParseAddr(a)
	}
	return out, nil
}

type secretJSON struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

func (b *bundle) createWebhook(body string) secretJSON {
	b.t.Helper()
	code, raw := b.do("POST", "/api/v1/webhook-endpoints", "Bearer "+token, body)
	if code != 201 {
		b.t.Fatalf("create webhook endpoint: %d %s", code, raw)
	}
	var s secretJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		b.t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Secret, "whsec_"))
	if !strings.HasPrefix(s.Secret, "whsec_") || err != nil || len(key) < 24 {
		b.t.Fatalf("secret %q is not whsec_ and base64 of at least 24 bytes", s.Secret)
	}
	return s
}

// TestWebhookEndpointLifecycle: create answers the secret once; reads never
// show it again; patch, rotation, history and delete behave as documented
// (every answer checked against the OpenAPI document by do).
func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.createWebhook(`{"url":"https://hooks.example.com/in","event_types":["user.created","user.disabled"],"description":"HR sync"}`)
	base := "/api/v1/webhook-endpoints/" + s.ID

	noSecret := func(what string, raw []byte) {
		t.Helper()
		if strings.Contains(string(raw), "whsec_") || strings.Contains(string(raw), `"secret"`) ||
			strings.Contains(string(raw), strings.TrimPrefix(s.Secret, "whsec_")) {
			t.Errorf("%s shows a secret: %s", what, raw)
		}
	}
	code, raw := b.get(base)
	if code != 200 {
		t.Fatalf("get: %d %s", code, raw)
	}
	noSecret("GET one", raw)
	var ep struct {
		URL                     string   `json:"url"`
		EventTypes              []string `json:"event_types"`
		Description             string   `json:"description"`
		Disabled                bool     `json:"disabled"`
		DisabledReason          string   `json:"disabled_reason"`
		PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	}
	if err := json.Unmarshal(raw, &ep); err != nil {
		t.Fatal(err)
	}
	if ep.URL != "https://hooks.example.com/in" || strings.Join(ep.EventTypes, ",") != "user.created,user.disabled" || ep.Description != "HR sync" || ep.Disabled {
		t.Errorf("created endpoint reads back as %+v", ep)
	}
	code, raw = b.get("/api/v1/webhook-endpoints")
	if code != 200 || !strings.Contains(string(raw), s.ID) {
		t.Errorf("list: %d %s", code, raw)
	}
	noSecret("GET list", raw)

	code, raw = b.do("PATCH", base, "Bearer "+token, `{"url":"https://other.example.com/x","event_types":[],"disabled":true}`)
	if code != 200 {
		t.Fatalf("patch: %d %s", code, raw)
	}
	noSecret("PATCH", raw)
	if err := json.Unmarshal(raw, &ep); err != nil {
		t.Fatal(err)
	}
	if ep.URL != "https://other.example.com/x" || len(ep.EventTypes) != 0 || !ep.Disabled || ep.DisabledReason == "" || ep.Description != "HR sync" {
		t.Errorf("after patch: %+v", ep)
	}
	if code, raw = b.do("PATCH", base, "Bearer "+token, `{"disabled":false}`); code != 200 || !strings.Contains(string(raw), `"disabled_reason":""`) {
		t.Errorf("enable: %d %s", code, raw)
	}

	code, raw = b.do("POST", base+"/rotate-secret", "Bearer "+token, "")
	var rot secretJSON
	if code != 200 || json.Unmarshal(raw, &rot) != nil || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == s.Secret || rot.ID != s.ID {
		t.Fatalf("rotate: %d %s", code, raw)
	}
	if _, raw = b.get(base); !strings.Contains(string(raw), `"previous_secret_expires_at":"`) || strings.Contains(string(raw), rot.Secret) {
		t.Errorf("after rotation: %s, want the old secret's expiry and no secret", raw)
	}

	if code, raw = b.get(base + "/deliveries?limit=10"); code != 200 || string(raw) != `{"items":[]}`+"\n" {
		t.Errorf("deliveries: %d %q", code, raw)
	}
	if code, _ = b.do("DELETE", base, "Bearer "+token, ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", base, ""}, {"DELETE", base, ""}, {"PATCH", base, `{"disabled":true}`},
		{"POST", base + "/rotate-secret", ""}, {"GET", base + "/deliveries", ""},
		{"GET", "/api/v1/webhook-endpoints/not-a-guid", ""},
	} {
		if code, raw := b.do(r.method, r.path, "Bearer "+token, r.body); code != 404 {
			t.Errorf("%s %s after delete: %d %s, want 404", r.method, r.path, code, raw)
		}
	}
}

// TestWebhookEndpointValidation: bad URLs (scheme, private addresses by
// literal or by resolution), unknown event types and fields are 400, at
// create and at patch; nothing is stored.
func TestWebhookEndpointValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := b.createWebhook(`{"url":"https://hooks.example.com/"}`)
	for _, body := range []string{
		`{}`,
		`{"url":"http://hooks.example.com/"}`,
		`{"url":"ftp://hooks.example.com/"}`,
		`{"url":"https://intranet.example/"}`,
		`{"url":"https://metadata.example/latest/meta-data"}`,
		`{"url":"https://loop6.example/"}`,
		`{"url":"https://localhost:8443/"}`,
		`{"url":"https://127.0.0.1/"}`,
		`{"url":"https://[::1]/"}`,
		`{"url":"https://10.0.0.1/"}`,
		`{"url":"https://169.254.169.254/"}`,
		`{"url":"https://nxdomain.example/"}`,
		`{"url":"https://hooks.example.com/","event_types":["user.created","user.exploded"]}`,
		`{"url":"https://hooks.example.com/","secret":"whsec_mine"}`,
		`{"url":"https://hooks.example.com/","description":"` + strings.Repeat("x", 501) + `"}`,
	} {
		if code, raw := b.do("POST", "/api/v1/webhook-endpoints", "Bearer "+token, body); code != 400 {
			t.Errorf("create %.80s: %d %s, want 400", body, code, raw)
		}
	}
	for _, body := range []string{
		`{"url":"https://127.0.0.1/"}`, `{"url":"https://intranet.example/"}`, `{"event_types":["nope"]}`, `{"disabled":"yes"}`,
	} {
		if code, raw := b.do("PATCH", "/api/v1/webhook-endpoints/"+ok.ID, "Bearer "+token, body); code != 400 {
			t.Errorf("patch %s: %d %s, want 400", body, code, raw)
		}
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_endpoints`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d endpoints stored (%v), want only the valid one", n, err)
	}
	if _, raw := b.get("/api/v1/webhook-endpoints/" + ok.ID); !strings.Contains(string(raw), `"url":"https://hooks.example.com/"`) {
		t.Errorf("a refused patch changed the endpoint: %s", raw)
	}
}

// TestWebhookEndpointAllowPrivate: with WEBHOOK_ALLOW_PRIVATE, loopback and
// http are accepted (development and tests).
func TestWebhookEndpointAllowPrivate(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.WebhookAllowPrivate = true })
	b.createWebhook(`{"url":"http://127.0.0.1:9999/hook"}`)
	b.createWebhook(`{"url":"https://localhost/hook"}`)
}

// TestWebhookEndpointAuth: every webhook route wants the bearer token.
func TestWebhookEndpointAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.NewString()
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/webhook-endpoints", `{"url":"https://hooks.example.com/"}`},
		{"GET", "/api/v1/webhook-endpoints", ""},
		{"GET", "/api/v1/webhook-endpoints/" + id, ""},
		{"PATCH", "/api/v1/webhook-endpoints/" + id, `{"disabled":true}`},
		{"DELETE", "/api/v1/webhook-endpoints/" + id, ""},
		{"POST", "/api/v1/webhook-endpoints/" + id + "/rotate-secret", ""},
		{"GET", "/api/v1/webhook-endpoints/" + id + "/deliveries", ""},
	} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", token} {
			if code, raw := b.do(r.method, r.path, auth, r.body); code != 401 {
				t.Errorf("%s %s with %q: %d %s, want 401", r.method, r.path, auth, code, raw)
			}
		}
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_endpoints`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d endpoints stored (%v) by unauthenticated requests", n, err)
	}
}

// TestWebhookRotationOverlap: the rotated-out secret keeps signing for
// exactly 24 hours from the rotation.
func TestWebhookRotationOverlap(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := setup(t, func(c *api.Config) { c.Now = func() time.Time { return at } })
	s := b.createWebhook(`{"url":"https://hooks.example.com/"}`)
	if _, raw := b.get("/api/v1/webhook-endpoints/" + s.ID); !strings.Contains(string(raw), `"previous_secret_expires_at":null`) {
		t.Errorf("before any rotation: %s, want no previous secret", raw)
	}
	if code, raw := b.do("POST", "/api/v1/webhook-endpoints/"+s.ID+"/rotate-secret", "Bearer "+token, ""); code != 200 {
		t.Fatalf("rotate: %d %s", code, raw)
	}
	_, raw := b.get("/api/v1/webhook-endpoints/" + s.ID)
	var ep struct {
		Until *time.Time `json:"previous_secret_expires_at"`
	}
	if err := json.Unmarshal(raw, &ep); err != nil {
		t.Fatal(err)
	}
	if ep.Until == nil || !ep.Until.Equal(at.Add(24*time.Hour)) {
		t.Errorf("previous secret signs until %v, want %v", ep.Until, at.Add(24*time.Hour))
	}
}
