package entraemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGraphAuthorization(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})

	// Missing role per endpoint → 403 Authorization_RequestDenied.
	if err := s.RevokeConsent(FabrikamTenantID); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(FabrikamTenantID, "User.Read.All"); err != nil {
		t.Fatal(err)
	}
	tok := secretToken(t, s, FabrikamTenantID)
	for path, want := range map[string]int{"/v1.0/users/delta": 200, "/v1.0/users": 200, "/v1.0/groups/delta": 403, "/v1.0/organization": 403} {
		resp, body := graphGet(t, s, tok, path)
		if resp.StatusCode != want {
			t.Errorf("%s: %d %v, want %d", path, resp.StatusCode, body, want)
		}
		if want == 403 && graphErrorCode(body) != "Authorization_RequestDenied" {
			t.Errorf("%s: code %s", path, graphErrorCode(body))
		}
		if resp.Header.Get("request-id") == "" || resp.Header.Get("client-request-id") == "" {
			t.Errorf("%s: missing request-id headers", path)
		}
	}

	// RemoveRoles: tokens without roles, Graph 403.
	if err := s.RemoveRoles(ContosoTenantID); err != nil {
		t.Fatal(err)
	}
	tok = secretToken(t, s, ContosoTenantID)
	if c := decodeJWT(t, tok); c["roles"] != nil {
		t.Errorf("roles after RemoveRoles = %v", c["roles"])
	}
	if resp, body := graphGet(t, s, tok, "/v1.0/users/delta"); resp.StatusCode != 403 || graphErrorCode(body) != "Authorization_RequestDenied" {
		t.Errorf("no roles: %d %v", resp.StatusCode, body)
	}

	// SP deleted after issue → 401 Authorization_IdentityNotFound.
	if err := s.Grant(ContosoTenantID); err != nil {
		t.Fatal(err)
	}
	tok = secretToken(t, s, ContosoTenantID)
	if err := s.RevokeConsent(ContosoTenantID); err != nil {
		t.Fatal(err)
	}
	resp, body := graphGet(t, s, tok, "/v1.0/organization")
	if resp.StatusCode != 401 || graphErrorCode(body) != "Authorization_IdentityNotFound" {
		t.Errorf("revoked: %d %v", resp.StatusCode, body)
	}

	// Expired → 401 InvalidAuthenticationToken with WWW-Authenticate.
	s.Grant(ContosoTenantID)
	tok = secretToken(t, s, ContosoTenantID)
	clk.Advance(2 * time.Hour)
	resp, body = graphGet(t, s, tok, "/v1.0/organization")
	if resp.StatusCode != 401 || graphErrorCode(body) != "InvalidAuthenticationToken" ||
		!strings.Contains(body["error"].(map[string]any)["message"].(string), "expired") || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("expired: %d %v", resp.StatusCode, body)
	}
	resp, body = graphGet(t, s, "garbage", "/v1.0/organization")
	if resp.StatusCode != 401 || graphErrorCode(body) != "InvalidAuthenticationToken" {
		t.Errorf("garbage: %d %v", resp.StatusCode, body)
	}
}

func TestGraphUsersPaging(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed(), ThrottleScale: 1000})
	tok := secretToken(t, s, ContosoTenantID)
	u := "/v1.0/users?$select=displayName,mail&$top=20"
	var got []string
	pages := 0
	for u != "" {
		resp, body := graphGet(t, s, tok, u)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", u, resp.StatusCode, body)
		}
		if pages == 0 && body["@odata.context"] != s.GraphBaseURL+"/v1.0/$metadata#users(displayName,mail)" {
			t.Errorf("context = %v", body["@odata.context"])
		}
		pages++
		for _, v := range body["value"].([]any) {
			got = append(got, v.(map[string]any)["id"].(string))
		}
		u, _ = body["@odata.nextLink"].(string)
		if u != "" && !strings.Contains(u, "$select=displayName%2Cmail") {
			t.Errorf("nextLink lost the query: %s", u)
		}
	}
	if len(got) != 50 || pages != 3 {
		t.Errorf("users = %d in %d pages", len(got), pages)
	}
	if resp, _ := graphGet(t, s, tok, "/v1.0/users?$top=1000"); resp.StatusCode != 400 {
		t.Errorf("$top=1000: %d", resp.StatusCode)
	}
	resp, body := graphGet(t, s, tok, "/v1.0/users/admin@contoso.example")
	if resp.StatusCode != 200 || body["userPrincipalName"] != "admin@contoso.example" {
		t.Errorf("user by UPN: %d %v", resp.StatusCode, body)
	}
	if resp, body := graphGet(t, s, tok, "/v1.0/users/00000000-0000-4000-8000-000000000000"); resp.StatusCode != 404 || graphErrorCode(body) != "Request_ResourceNotFound" {
		t.Errorf("missing user: %d %v", resp.StatusCode, body)
	}
}

func TestThrottlingRetryAfterIsHonest(t *testing.T) {
	t.Parallel()
	clk := newClock()
	// Contoso has 50 users (size M, 5,000 units per 10 s): scale to 3 units, 0.3 units/s.
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 3.0 / 5000})
	tok := secretToken(t, s, ContosoTenantID)
	for i := range 3 {
		if resp, body := graphGet(t, s, tok, "/v1.0/organization"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := graphGet(t, s, tok, "/v1.0/organization")
	if resp.StatusCode != 429 || graphErrorCode(body) != "TooManyRequests" || resp.Header.Get("Retry-After") != "4" {
		t.Fatalf("4th request: %d Retry-After=%q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	inner := body["error"].(map[string]any)["innerError"].(map[string]any)
	if inner["code"] != "429" || inner["status"] != "429" || inner["request-id"] == nil {
		t.Errorf("innerError = %v", inner)
	}
	clk.Advance(3 * time.Second) // before Retry-After elapsed
	if resp, _ := graphGet(t, s, tok, "/v1.0/organization"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("early retry: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clk.Advance(time.Second)
	if resp, body := graphGet(t, s, tok, "/v1.0/organization"); resp.StatusCode != 200 {
		t.Fatalf("after Retry-After: %d %v", resp.StatusCode, body)
	}
	c := s.Counters(ContosoTenantID)
	if c.Throttled != 2 || c.EarlyRetries != 1 || c.GraphByStatus[200] != 4 || c.GraphRequests != 6 {
		t.Errorf("counters = %+v", c)
	}
}

// TestEarlyRetriesAfterInjectedFaults: a request inside an announced
// Retry-After window is early even when an injected fault answers it, and
// a 503's Retry-After announces a window as a 429's does.
func TestEarlyRetriesAfterInjectedFaults(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})
	tok := secretToken(t, s, ContosoTenantID)
	get := func(want int) {
		t.Helper()
		if resp, body := graphGet(t, s, tok, "/v1.0/organization"); resp.StatusCode != want {
			t.Fatalf("status %d %v, want %d", resp.StatusCode, body, want)
		}
	}
	early := func(want int) {
		t.Helper()
		if n := s.Counters(ContosoTenantID).EarlyRetries; n != want {
			t.Errorf("early retries = %d, want %d", n, want)
		}
	}
	s.SetFaults(ContosoTenantID, Faults{ThrottleRate: 1, RetryAfter: 6 * time.Second})
	get(429)
	early(0)
	clk.Advance(2 * time.Second)
	get(429) // injected again, but sent 4 s early
	early(1)

	s.SetFaults(ContosoTenantID, Faults{ErrorRate: 1, ErrorStatus: 503, RetryAfter: 3 * time.Second})
	clk.Advance(10 * time.Second)
	get(503)
	early(1)
	s.SetFaults(ContosoTenantID, Faults{})
	clk.Advance(time.Second)
	get(200) // Graph is back, but the client was told to wait 3 s
	early(2)
	clk.Advance(2 * time.Second)
	get(200)
	early(2)
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed(), ThrottleScale: 1000})
	tok := secretToken(t, s, ContosoTenantID)
	s.SetFaults(ContosoTenantID, Faults{ErrorRate: 1, ErrorStatus: 503, RetryAfter: 2 * time.Second})
	if resp, body := graphGet(t, s, tok, "/v1.0/organization"); resp.StatusCode != 503 || graphErrorCode(body) != "serviceNotAvailable" || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("503 fault: %d %v", resp.StatusCode, body)
	}
	s.SetFaults(ContosoTenantID, Faults{ThrottleRate: 1, RetryAfter: 5 * time.Second})
	if resp, _ := graphGet(t, s, tok, "/v1.0/organization"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("429 fault: %d", resp.StatusCode)
	}
	s.SetFaults(ContosoTenantID, Faults{DropRate: 1})
	req, _ := http.NewRequest(http.MethodGet, s.GraphBaseURL+"/v1.0/organization", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := s.HTTPClient().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped connection returned %d", resp.StatusCode)
	}
	// Another tenant is unaffected.
	s.SetFaults(ContosoTenantID, Faults{})
	if resp, _ := graphGet(t, s, secretToken(t, s, FabrikamTenantID), "/v1.0/organization"); resp.StatusCode != 200 {
		t.Errorf("fabrikam: %d", resp.StatusCode)
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed(), ThrottleScale: 1000})
	c := s.HTTPClient()
	do := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.ControlURL+path, strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := do("POST", "/tenants/"+ContosoTenantID+"/users", `{"userPrincipalName":"ctl@contoso.example","displayName":"Ctl"}`)
	var u User
	json.NewDecoder(resp.Body).Decode(&u)
	if resp.StatusCode != 201 || u.ID == "" || !u.AccountEnabled {
		t.Fatalf("create user: %d %+v", resp.StatusCode, u)
	}
	if resp := do("PATCH", "/tenants/"+ContosoTenantID+"/users/"+u.ID, `{"jobTitle":"Boss"}`); resp.StatusCode != 204 {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	dir := s.Directory(ContosoTenantID)
	found := false
	for _, x := range dir.Users {
		if x.ID == u.ID {
			found = x.JobTitle == "Boss" && x.DisplayName == "Ctl" && x.AccountEnabled
		}
	}
	if !found {
		t.Errorf("patched user not in directory as expected")
	}
	g := dir.Groups[0]
	if resp := do("PUT", "/tenants/"+ContosoTenantID+"/groups/"+g.ID+"/members/"+u.ID, ""); resp.StatusCode != 204 {
		t.Errorf("add member: %d", resp.StatusCode)
	}
	if resp := do("DELETE", "/tenants/"+ContosoTenantID+"/users/"+u.ID+"?hard=true", ""); resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if resp := do("DELETE", "/tenants/"+ContosoTenantID+"/users/"+u.ID, ""); resp.StatusCode != 404 {
		t.Errorf("delete again: %d", resp.StatusCode)
	}
	if resp := do("PUT", "/tenants/"+ContosoTenantID+"/faults", `{"errorRate":1,"errorStatus":500}`); resp.StatusCode != 204 {
		t.Errorf("faults: %d", resp.StatusCode)
	}
	if resp, _ := graphGet(t, s, secretToken(t, s, ContosoTenantID), "/v1.0/organization"); resp.StatusCode != 500 {
		t.Errorf("after fault: %d", resp.StatusCode)
	}
	resp = do("GET", "/tenants/"+ContosoTenantID+"/counters", "")
	var cnt Counters
	json.NewDecoder(resp.Body).Decode(&cnt)
	if cnt.GraphByStatus[500] != 1 || cnt.TokenRequests != 1 {
		t.Errorf("counters = %+v", cnt)
	}
	for _, p := range []struct{ method, path, body string }{
		{"POST", "/tenants/" + LitwareTenantID + "/consent", `{"roles":["User.Read.All"]}`},
		{"POST", "/tenants/" + LitwareTenantID + "/consent/remove-roles", ""},
		{"POST", "/tenants/" + LitwareTenantID + "/consent/disable", ""},
		{"DELETE", "/tenants/" + LitwareTenantID + "/consent", ""},
		{"POST", "/tenants/" + ContosoTenantID + "/delta/expire", ""},
		{"POST", "/tenants/" + ContosoTenantID + "/delta/reset", ""},
		{"PUT", "/propagation-delay", `{"delay":"10s"}`},
		{"DELETE", "/tenants/" + LitwareTenantID, ""},
	} {
		if resp := do(p.method, p.path, p.body); resp.StatusCode != 204 {
			t.Errorf("%s %s: %d", p.method, p.path, resp.StatusCode)
		}
	}
	status, body := postToken(t, s, LitwareTenantID, nil)
	if status != 400 || body["error"] != "invalid_tenant" {
		t.Errorf("deleted tenant: %d %v", status, body)
	}
	resp = do("GET", "/tenants", "")
	var infos []map[string]any
	json.NewDecoder(resp.Body).Decode(&infos)
	if len(infos) != 3 {
		t.Errorf("tenants = %d", len(infos))
	}
	var buf bytes.Buffer
	buf.ReadFrom(do("GET", "/seed", "").Body)
	if !strings.Contains(buf.String(), `"homeTenantId"`) {
		t.Errorf("seed = %.200s", buf.String())
	}
}
