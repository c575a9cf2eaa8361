package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/tenantsync/tenantsync/internal/api"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

const token = "test-operator-api-token-0123456789"

type bundle struct {
	t     testing.TB
	srv   *httptest.Server
	pool  *pgxpool.Pool
	store *postgres.Store
	spec  validator.Validator
}

func setup(t testing.TB, opts ...func(*api.Config)) *bundle {
	t.Helper()
	pool := pgtest.Pool(t)
	store := postgres.New(pool)
	ins, err := queue.NewInserter(pool)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	cfg := api.Config{Token: token, Store: store, Actions: operator.New(store, ins), WebhookResolve: fakeDNS}
	for _, o := range opts {
		o(&cfg)
	}
	if !api.Register(e.Group("/api/v1"), cfg) {
		t.Fatal("API not mounted")
	}
	// As webapp mounts it: errors that escape the handlers become problems
	// and bodies are held to the limit.
	e.HTTPErrorHandler = func(err error, c echo.Context) { api.WriteError(c, err) }
	srv := httptest.NewServer(http.MaxBytesHandler(e, api.BodyLimit))
	t.Cleanup(srv.Close)
	doc, err := libopenapi.NewDocument(api.OpenAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("OpenAPI document: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("OpenAPI document invalid: %s: %s", e.Message, e.Reason)
		}
	}
	return &bundle{t: t, srv: srv, pool: pool, store: store, spec: v}
}

// do sends a request, checks the response against the OpenAPI document,
// and returns status and body.
func (b *bundle) do(method, path, auth, body string) (int, []byte) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	// Validate against the document as a request to its server path.
	vreq := httptest.NewRequest(method, path, nil)
	if body != "" {
		vreq = httptest.NewRequest(method, path, strings.NewReader(body))
		vreq.Header.Set("Content-Type", "application/json")
	}
	vresp := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(strings.NewReader(string(raw))), Request: vreq}
	if resp.StatusCode != http.StatusNotFound || strings.Contains(path, "/tenants/") {
		if ok, errs := b.spec.ValidateHttpResponse(vreq, vresp); !ok {
			for _, e := range errs {
				b.t.Errorf("%s %s → %d does not match the OpenAPI document: %s: %s", method, path, resp.StatusCode, e.Message, e.Reason)
			}
		}
	}
	return resp.StatusCode, raw
}

func (b *bundle) get(path string) (int, []byte) { return b.do("GET", path, "Bearer "+token, "") }

func (b *bundle) tenant(status domain.TenantStatus, name string) string {
	b.t.Helper()
	id := uuid.NewString()
	_, err := b.pool.Exec(context.Background(), `INSERT INTO tenants (id, status, display_name, domains) VALUES ($1, $2, $3, $4)`,
		id, status, name, []string{strings.ToLower(strings.ReplaceAll(name, " ", "")) + ".example"})
	if err != nil {
		b.t.Fatal(err)
	}
	return id
}

type problem struct {
	Type, Title, Detail string
	Status              int
}

func decodeProblem(t *testing.T, body []byte) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem document: %s", body)
	}
	return p
}

type tenantPage struct {
	Items []struct {
		ID, Status, DisplayName string
	}
	NextCursor *string `json:"next_cursor"`
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant(domain.TenantActive, "Contoso")
	for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Basic " + token, "bearer " + token, "Bearer " + token + "x"} {
		for _, path := range []string{"/api/v1/tenants", "/api/v1/tenants/" + id, "/api/v1/events"} {
			code, body := b.do("GET", path, auth, "")
			if code != http.StatusUnauthorized {
				t.Errorf("%q %s: %d", auth, path, code)
				continue
			}
			p := decodeProblem(t, body)
			if p.Type != "urn:tenantsync:problem:unauthorized" || p.Detail != "" {
				t.Errorf("401 problem %+v must carry no detail", p)
			}
			if strings.Contains(string(body), token) {
				t.Error("token echoed")
			}
		}
	}
	// Unauthenticated writes change nothing.
	if code, _ := b.do("DELETE", "/api/v1/tenants/"+id, "Bearer nope", ""); code != 401 {
		t.Errorf("delete without token: %d", code)
	}
	if tn, _ := b.store.TenantGet(context.Background(), id); tn.Status != domain.TenantActive {
		t.Errorf("status changed to %s by an unauthenticated request", tn.Status)
	}
}

// Without a token the API is off, and says so: every path under /api/v1,
// with any method and any credentials, answers
// a problem document naming OPERATOR_API_TOKEN, of a type the OpenAPI
// document lists.
func TestAPIOffWithoutToken(t *testing.T) {
	t.Parallel()
	e := echo.New()
	if api.Register(e.Group("/api/v1"), api.Config{}) {
		t.Error("API mounted without a token")
	}
	types := problemTypes(t)
	for _, tt := range []struct{ method, path, auth string }{
		{"GET", "/api/v1/tenants", ""},
		{"GET", "/api/v1/tenants", "Bearer "},
		{"GET", "/api/v1/tenants", "Bearer " + token},
		{"POST", "/api/v1/tenants/" + uuid.NewString() + "/sync", "Bearer " + token},
		{"DELETE", "/api/v1/tenants/" + uuid.NewString(), ""},
		{"GET", "/api/v1", ""},
		{"GET", "/api/v1/no/such/route", ""},
		{"GET", "/api/v1/openapi.json", ""},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Header.Set("Authorization", tt.auth)
		e.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusNotFound || ct != "application/problem+json" {
			t.Errorf("%s %s with %q and no token configured: %d %q, want 404 application/problem+json", tt.method, tt.path, tt.auth, rec.Code, ct)
			continue
		}
		p := decodeProblem(t, rec.Body.Bytes())
		if p.Type != "urn:tenantsync:problem:api-off" || !types[p.Type] || p.Status != 404 || !strings.Contains(p.Detail, "OPERATOR_API_TOKEN") {
			t.Errorf("%s %s: problem %+v, want type api-off (listed: %v) naming OPERATOR_API_TOKEN", tt.method, tt.path, p, types[p.Type])
		}
	}
}

func TestTenantListPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.get("/api/v1/tenants")
	var empty tenantPage
	if code != 200 || json.Unmarshal(body, &empty) != nil || len(empty.Items) != 0 || empty.NextCursor != nil {
		t.Fatalf("empty list: %d %s", code, body)
	}
	want := map[string]bool{}
	for i := range 5 {
		want[b.tenant(domain.TenantActive, fmt.Sprintf("Tenant %d", i))] = true
	}
	b.tenant(domain.TenantPending, "Pending One")
	seen := map[string]bool{}
	path := "/api/v1/tenants?status=active&sort=name&limit=2"
	var cursors []string
	for pages := 0; ; pages++ {
		code, body := b.get(path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var p tenantPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			if it.Status != "active" || seen[it.ID] {
				t.Errorf("unexpected or repeated item %+v", it)
			}
			seen[it.ID] = true
		}
		if p.NextCursor == nil {
			if pages != 2 || len(p.Items) != 1 {
				t.Errorf("last page: page %d with %d items, want page 2 with 1", pages, len(p.Items))
			}
			break
		}
		cursors = append(cursors, *p.NextCursor)
		path = "/api/v1/tenants?status=active&sort=name&limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if len(seen) != len(want) {
		t.Errorf("walked %d tenants, want %d", len(seen), len(want))
	}
	tampered := []byte(cursors[0])
	tampered[2] ^= 1
	bad := map[string]string{
		"tampered cursor":         "/api/v1/tenants?status=active&sort=name&limit=2&cursor=" + url.QueryEscape(string(tampered)),
		"cursor of other listing": "/api/v1/tenants?status=pending&sort=name&limit=2&cursor=" + url.QueryEscape(cursors[0]),
		"garbage cursor":          "/api/v1/tenants?cursor=abc",
		"unknown parameter":       "/api/v1/tenants?stauts=active",
		"bad limit":               "/api/v1/tenants?limit=0",
		"huge limit":              "/api/v1/tenants?limit=100000",
		"bad status":              "/api/v1/tenants?status=happy",
		"bad sort":                "/api/v1/tenants?sort=random",
	}
	for name, path := range bad {
		code, body := b.get(path)
		p := decodeProblem(t, body)
		if code != 400 || p.Type != "urn:tenantsync:problem:invalid-request" || p.Detail == "" {
			t.Errorf("%s: %d %+v, want 400 invalid-request with a reason", name, code, p)
		}
	}
}

func TestTenantShow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant(domain.TenantActive, "Contoso")
	code, body := b.get("/api/v1/tenants/" + id)
	if code != 200 || !strings.Contains(string(body), `"display_name":"Contoso"`) {
		t.Errorf("show: %d %s", code, body)
	}
	for _, other := range []string{uuid.NewString(), "not-a-guid"} {
		code, body := b.get("/api/v1/tenants/" + other)
		if p := decodeProblem(t, body); code != 404 || p.Type != "urn:tenantsync:problem:not-found" {
			t.Errorf("%s: %d %+v", other, code, p)
		}
	}
	if code, _ := b.get("/api/v1/tenants/" + id + "?verbose=1"); code != 400 {
		t.Errorf("unknown parameter on show: %d", code)
	}
}

func TestDirectoryPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.tenant(domain.TenantActive, "Contoso")
	other := b.tenant(domain.TenantActive, "Fabrikam")
	for _, tid := range []string{id, other} {
		if _, err := b.pool.Exec(ctx, `INSERT INTO directory_users (tenant_id, id, display_name, user_principal_name)
			SELECT $1::uuid, gen_random_uuid(), 'User ' || i, 'u' || i || '@x.example' FROM generate_series(1, 7) i`, tid); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `INSERT INTO directory_groups (tenant_id, id, display_name) SELECT $1::uuid, gen_random_uuid(), 'G' || i FROM generate_series(1, 3) i`, tid); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	path := "/api/v1/tenants/" + id + "/users?limit=3"
	var first string
	for {
		code, body := b.get(path)
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		var p struct {
			Items      []struct{ ID string }
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.NextCursor == nil {
			break
		}
		if first == "" {
			first = *p.NextCursor
		}
		path = "/api/v1/tenants/" + id + "/users?limit=3&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if len(ids) != 7 {
		t.Errorf("walked %d users of the tenant, want 7 (no other tenant's)", len(ids))
	}
	// A cursor of one tenant's listing is refused for another's.
	if code, _ := b.get("/api/v1/tenants/" + other + "/users?cursor=" + url.QueryEscape(first)); code != 400 {
		t.Errorf("cursor reused across tenants: %d", code)
	}
	code, body := b.get("/api/v1/tenants/" + id + "/groups")
	if code != 200 || strings.Count(string(body), `"display_name"`) != 3 {
		t.Errorf("groups: %d %s", code, body)
	}
	for _, path := range []string{"/users", "/groups"} {
		for _, other := range []string{uuid.NewString(), "not-a-guid"} {
			if code, _ := b.get("/api/v1/tenants/" + other + path); code != 404 {
				t.Errorf("%s of unknown tenant %s: %d, want 404", path, other, code)
			}
		}
	}
}

func jobCount(t *testing.T, pool *pgxpool.Pool, kind, tid string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'tenant_id' = $2`, kind, tid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant(domain.TenantActive, "Contoso")
	code, body := b.do("POST", "/api/v1/tenants/"+id+"/sync", "Bearer "+token, "")
	if code != 202 || !strings.Contains(string(body), `"duplicate":false`) {
		t.Fatalf("sync: %d %s", code, body)
	}
	code, body = b.do("POST", "/api/v1/tenants/"+id+"/sync", "Bearer "+token, `{"full":false}`)
	if code != 202 || !strings.Contains(string(body), `"duplicate":true`) {
		t.Errorf("second sync while queued: %d %s", code, body)
	}
	if n := jobCount(t, b.pool, "sync_tenant", id); n != 1 {
		t.Errorf("%d sync jobs, want 1", n)
	}
	// A full resync is not swallowed by the queued delta sync.
	code, body = b.do("POST", "/api/v1/tenants/"+id+"/sync", "Bearer "+token, `{"full":true}`)
	if code != 202 || !strings.Contains(string(body), `"duplicate":false`) {
		t.Errorf("full resync while a delta sync is queued: %d %s", code, body)
	}
	if n := jobCount(t, b.pool, "sync_tenant", id); n != 2 {
		t.Errorf("%d sync jobs, want 2 (delta and full)", n)
	}
	for name, body := range map[string]string{"unknown field": `{"ful":true}`, "not an object": `[1]`, "trailing": `{} {}`} {
		if code, _ := b.do("POST", "/api/v1/tenants/"+id+"/sync", "Bearer "+token, body); code != 400 {
			t.Errorf("%s: %d", name, code)
		}
	}
	pending := b.tenant(domain.TenantPending, "Pending")
	code, body = b.do("POST", "/api/v1/tenants/"+pending+"/sync", "Bearer "+token, `{"full":true}`)
	if p := decodeProblem(t, body); code != 409 || p.Type != "urn:tenantsync:problem:conflict" {
		t.Errorf("sync of a pending tenant: %d %+v", code, p)
	}
	if n := jobCount(t, b.pool, "sync_tenant", pending); n != 0 {
		t.Errorf("refused sync inserted %d jobs", n)
	}
	evs, err := b.store.TenantEvents(context.Background(), id, 10)
	if err != nil || len(evs) != 3 || evs[0].Kind != domain.EventSyncRequested || evs[0].Actor != "api" {
		t.Errorf("audit events: %+v %v", evs, err)
	}
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant(domain.TenantActive, "Contoso")
	if code, body := b.do("DELETE", "/api/v1/tenants/"+id, "Bearer "+token, ""); code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	tn, err := b.store.TenantGet(context.Background(), id)
	if err != nil || tn.Status != domain.TenantDisconnected {
		t.Errorf("after delete: %+v %v", tn, err)
	}
	if n := jobCount(t, b.pool, "purge_tenant", id); n != 1 {
		t.Errorf("%d purge jobs, want 1", n)
	}
	if code, _ := b.do("DELETE", "/api/v1/tenants/"+id, "Bearer "+token, ""); code != 409 {
		t.Errorf("second delete: %d, want 409", code)
	}
	if code, _ := b.do("DELETE", "/api/v1/tenants/"+uuid.NewString(), "Bearer "+token, ""); code != 404 {
		t.Errorf("delete unknown: %d, want 404", code)
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.do("GET", "/api/v1/openapi.json", "", "")
	if code != 200 || !strings.Contains(string(body), `"openapi": "3.1.0"`) {
		t.Errorf("openapi.json: %d %.80s", code, body)
	}
}

// problemTypes are the problem types the OpenAPI document lists.
func problemTypes(t *testing.T) map[string]bool {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Type struct{ Enum []string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(api.OpenAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, ty := range doc.Components.Schemas.Problem.Properties.Type.Enum {
		out[ty] = true
	}
	return out
}

// What the router and the limits refuse is a problem document of a type
// the OpenAPI document lists, with Allow on 405; HEAD answers like GET.
func TestRouterErrorsAreProblems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant(domain.TenantActive, "Contoso")
	types := problemTypes(t)
	send := func(method, path, ctype string, body io.Reader) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, b.srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, raw
	}
	big := strings.Repeat(" ", api.BodyLimit) + `{"full":true}`
	for _, tt := range []struct {
		name, method, path, ctype string
		body                      io.Reader
		status                    int
		typ                       string
	}{
		{"unknown route", "GET", "/api/v1/no/such/route", "", nil, 404, "urn:tenantsync:problem:not-found"},
		{"wrong method", "PUT", "/api/v1/tenants", "", nil, 405, "urn:tenantsync:problem:method-not-allowed"},
		{"wrong method on a tenant", "PATCH", "/api/v1/tenants/" + id, "", nil, 405, "urn:tenantsync:problem:method-not-allowed"},
		{"wrong media type", "POST", "/api/v1/tenants/" + id + "/sync", "text/plain", strings.NewReader("full"), 415, "urn:tenantsync:problem:unsupported-media-type"},
		// io.MultiReader hides the length: the limit stops the body mid-way.
		{"body over the limit", "POST", "/api/v1/tenants/" + id + "/sync", "application/json", io.MultiReader(strings.NewReader(big)), 413, "urn:tenantsync:problem:too-large"},
	} {
		res, raw := send(tt.method, tt.path, tt.ctype, tt.body)
		if ct := res.Header.Get("Content-Type"); res.StatusCode != tt.status || ct != "application/problem+json" {
			t.Errorf("%s: %d %q, want %d application/problem+json: %s", tt.name, res.StatusCode, ct, tt.status, raw)
			continue
		}
		p := decodeProblem(t, raw)
		if p.Type != tt.typ || p.Status != tt.status || !types[p.Type] {
			t.Errorf("%s: problem %+v, want type %s (listed in the OpenAPI document: %v)", tt.name, p, tt.typ, types[p.Type])
		}
		if tt.method == "POST" {
			// Documented responses of POST /tenants/{id}/sync: they must match.
			vreq := httptest.NewRequest(tt.method, tt.path, nil)
			vres := &http.Response{StatusCode: res.StatusCode, Header: res.Header, Body: io.NopCloser(strings.NewReader(string(raw))), Request: vreq}
			if ok, errs := b.spec.ValidateHttpResponse(vreq, vres); !ok {
				for _, e := range errs {
					t.Errorf("%s: does not match the OpenAPI document: %s: %s", tt.name, e.Message, e.Reason)
				}
			}
		}
		if tt.status == 405 {
			if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
				t.Errorf("%s: Allow %q, want GET and HEAD", tt.name, allow)
			}
		}
	}
	for _, path := range []string{"/api/v1/tenants", "/api/v1/tenants/" + id, "/api/v1/tenants/" + id + "/users", "/api/v1/openapi.json"} {
		get, _ := send("GET", path, "", nil)
		head, raw := send("HEAD", path, "", nil)
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || len(raw) != 0 {
			t.Errorf("HEAD %s: %d %q %d bytes; GET: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"), len(raw), get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
}
