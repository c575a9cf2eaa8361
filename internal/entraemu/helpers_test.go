package entraemu

import (
	"encoding/base64"

	"encoding/json"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// decodeJWT returns the claims of a JWT without verifying it.
func decodeJWT(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("unmarshal claims: %v", err)
	}
	return c
}

// secretToken acquires an app-only token with the default app's secret.
func secretToken(t *testing.T, s *Server, tid string) string {
	t.Helper()
	status, body := postToken(t, s, tid, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {s.DefaultApp().ClientID},
		"client_secret": {s.DefaultApp().Secrets[0].Value}, "scope": {"https://graph.microsoft.com/.default"},
	})
	if status != 200 {
		t.Fatalf("token for %s: %d %v", tid, status, body)
	}
	return body["access_token"].(string)
}

func postToken(t *testing.T, s *Server, seg string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.HTTPClient().PostForm(s.AuthorityHost+"/"+seg+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatalf("post token: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode token response: %v", err)
	}
	return resp.StatusCode, body
}

// graphGet GETs a Graph URL (absolute or /v1.0 path) with a bearer token.
func graphGet(t *testing.T, s *Server, token, u string) (*http.Response, map[string]any) {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = s.GraphBaseURL + u
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET %s: %d %q: %v", u, resp.StatusCode, b, err)
	}
	return resp, body
}

func graphErrorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func cmpSortSlices(less func(a, b any) bool) cmp.Option { return cmpopts.SortSlices(less) }
