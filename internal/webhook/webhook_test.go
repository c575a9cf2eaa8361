package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tenantsync/tenantsync/internal/webhook"
)

// TestSignatureVerifiesWithReferenceLibrary checks our headers with the
// Standard Webhooks reference verifier, not with our own code: each of two
// secrets (a rotation) verifies alone, and a third secret does not.
func TestSignatureVerifiesWithReferenceLibrary(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret, other := webhook.NewSecret(), webhook.NewSecret(), webhook.NewSecret()
	if !strings.HasPrefix(newSecret, "whsec_") || len(newSecret) < len("whsec_")+32 || newSecret == oldSecret {
		t.Fatalf("secret %q is not a fresh whsec_ secret", newSecret)
	}
	body := []byte(`{"id":"e1","type":"user.created","tenant_id":"t","occurred_at":"2026-01-01T00:00:00Z","data":{}}`)
	h := http.Header{}
	if err := webhook.Headers(h, []string{newSecret, oldSecret}, "msg_1", time.Now(), body); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{newSecret, oldSecret} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("reference verifier refuses a signature by one of the secrets: %v", err)
		}
	}
	wh, err := standardwebhooks.NewWebhook(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err == nil {
		t.Error("a secret that did not sign verifies")
	}
	if err := wh.Verify([]byte(`{}`), h); err == nil {
		t.Error("a changed body verifies")
	}
}

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ip   string
		want bool
	}{
		{"93.184.216.34", true}, {"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false}, {"::1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"0.0.0.0", false}, {"::", false}, {"224.0.0.1", false},
		{"fc00::1", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"100.64.0.1", false},
		{"64:ff9b::a00:1", false},
	} {
		if got := webhook.PublicAddr(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("PublicAddr(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
}

// TestPolicyCheck checks the save-time rule with a stand-in resolver: a
// name resolving to any private address is refused, and
// WEBHOOK_ALLOW_PRIVATE lets it and http through.
func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	dns := map[string][]string{
		"hooks.example.com":   {"93.184.216.34"},
		"internal.example":    {"10.0.0.7"},
		"metadata.example":    {"169.254.169.254"},
		"mixed.example":       {"93.184.216.34", "127.0.0.1"},
		"v6loop.example":      {"::1"},
		"rebind.example.test": {"192.168.0.10"},
	}
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, s := range dns[host] {
			out = append(out, netip.MustParseAddr(s))
		}
		if out == nil {
			return nil, errors.New("no such host")
		}
		return out, nil
	}
	strict := webhook.Policy{Resolve: resolve}
	open := webhook.Policy{AllowPrivate: true, Resolve: resolve}
	for _, tt := range []struct {
		url          string
		strict, open bool
	}{
		{"https://hooks.example.com/in", true, true},
		{"http://hooks.example.com/in", false, true},
		{"https://internal.example/in", false, true},
		{"https://metadata.example/latest", false, true},
		{"https://mixed.example/", false, true},
		{"https://v6loop.example/", false, true},
		{"https://127.0.0.1/", false, true},
		{"https://[::1]:8443/", false, true},
		{"https://10.2.3.4/", false, true},
		{"https://169.254.169.254/", false, true},
		{"https://nowhere.example/", false, true},
		{"ftp://hooks.example.com/", false, false},
		{"https://user:pw@hooks.example.com/", false, false},
		{"/relative", false, false},
		{"https://hooks.example.com/#frag", false, false},
	} {
		if err := strict.Check(context.Background(), tt.url); (err == nil) != tt.strict {
			t.Errorf("strict Check(%s) = %v, want ok=%v", tt.url, err, tt.strict)
		}
		if err := open.Check(context.Background(), tt.url); (err == nil) != tt.open {
			t.Errorf("allow-private Check(%s) = %v, want ok=%v", tt.url, err, tt.open)
		}
	}
}

// TestClientRefusesPrivateDial proves the delivery-time check: a name that
// resolves to loopback (localhost; as if DNS had changed since the URL was
// saved) is refused on the address actually dialled, and the receiver never
// sees a request; with WEBHOOK_ALLOW_PRIVATE it goes through.
func TestClientRefusesPrivateDial(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	for _, u := range []string{"http://localhost" + port, srv.URL, "http://[::ffff:127.0.0.1]" + port} {
		resp, err := webhook.Policy{}.Client(5*time.Second, nil).Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("POST %s went through", u)
		} else if !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("POST %s: %v, want ErrForbiddenAddress", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("receiver saw %d requests", n)
	}
	resp, err := webhook.Policy{AllowPrivate: true}.Client(5*time.Second, nil).Post("http://localhost"+port, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("allowed POST: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatal("allowed POST did not reach the receiver")
	}
}
