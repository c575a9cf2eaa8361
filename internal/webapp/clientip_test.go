package webapp

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestClientIP: the callbacks' rate limit keys on the peer, unless the peer
// is a configured load balancer; then on the last hop it did not add.
func TestClientIP(t *testing.T) {
	t.Parallel()
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     string
		want    string
	}{
		{"direct: a forwarded header is ignored", nil, "10.0.0.5:4000", "203.0.113.9", "10.0.0.5"},
		{"through the load balancer", lb, "10.0.0.5:4000", "203.0.113.9", "203.0.113.9"},
		{"a client's own hop before the real one is ignored", lb, "10.0.0.5:4000", "6.6.6.6, 203.0.113.9", "203.0.113.9"},
		{"inner proxies of the trusted range are skipped", lb, "10.0.0.5:4000", "203.0.113.9, 10.1.1.1", "203.0.113.9"},
		{"a peer outside the range is the client", lb, "198.51.100.7:4000", "203.0.113.9", "198.51.100.7"},
		{"loopback is not trusted for being loopback", lb, "127.0.0.1:4000", "203.0.113.9", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := echo.New()
			e.IPExtractor = clientIP(tt.trusted)
			req := httptest.NewRequest(http.MethodGet, "/connect/callback", nil)
			req.RemoteAddr = tt.peer
			req.Header.Set(echo.HeaderXForwardedFor, tt.xff)
			if got := e.NewContext(req, httptest.NewRecorder()).RealIP(); got != tt.want {
				t.Errorf("client %s, want %s", got, tt.want)
			}
		})
	}
}
