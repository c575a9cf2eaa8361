package webapp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const testAPIToken = "webapp-test-api-token-0123456789"

// The server serves the JSON API when a token is set and records every
// request under its route pattern, never the raw path with a tenant ID.
func TestMetricsAndAPIMounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	get := func(path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", b.base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const unknown = "0b3e8d2c-1111-2222-3333-444455556666"
	if code, body := get("/api/v1/tenants", testAPIToken); code != 200 || !strings.Contains(body, `"items":[]`) {
		t.Errorf("API list: %d %s", code, body)
	}
	if code, _ := get("/api/v1/tenants/"+unknown, testAPIToken); code != 404 {
		t.Errorf("API unknown tenant: %d", code)
	}
	if code, _ := get("/api/v1/tenants", ""); code != 401 {
		t.Errorf("API without token: %d", code)
	}
	if code, _ := get("/healthz", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	code, body := get("/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`tenantsync_http_requests_total{method="GET",route="/api/v1/tenants",status="200"} 1`,
		`tenantsync_http_requests_total{method="GET",route="/api/v1/tenants/:id",status="404"} 1`,
		`tenantsync_http_requests_total{method="GET",route="/api/v1/tenants",status="401"} 1`,
		`tenantsync_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`tenantsync_http_request_duration_seconds_count{method="GET",route="/api/v1/tenants"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, unknown) {
		t.Error("a tenant ID appears in the metrics")
	}
}
