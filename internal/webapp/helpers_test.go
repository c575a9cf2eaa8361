package webapp

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/health"
	"github.com/tenantsync/tenantsync/internal/httpserver"
	"github.com/tenantsync/tenantsync/internal/metrics"
	"github.com/tenantsync/tenantsync/internal/onboarding"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// Seeded identities used by the tests (entraemu.SmallSeed).
const (
	contosoID   = entraemu.ContosoTenantID
	fabrikamID  = entraemu.FabrikamTenantID
	contosoAdm  = "admin@contoso.example"
	contosoUser = "user@contoso.example"
	// Contoso users holding other directory roles (added by setup).
	contosoPRA      = "pra@contoso.example"      // Privileged Role Administrator
	contosoCloudApp = "cloudapp@contoso.example" // Cloud Application Administrator
	contosoAppAdm   = "appadmin@contoso.example" // Application Administrator
	personalUPN     = "someone@outlook.example"
)

// testClock is real time plus an offset the test moves forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// testBundle is a running portal wired to a fresh database and an emulator.
type testBundle struct {
	base  string
	emu   *entraemu.Server
	pool  *pgxpool.Pool
	store *postgres.Store
	clock *testClock
	srv   *Server
}

type setupOpts struct {
	callbackRate  rate.Limit
	callbackBurst int
	// apiToken is OPERATOR_API_TOKEN; withoutAPI empties it.
	apiToken string
	// log receives the server's log and net/http's own errors.
	log io.Writer
	// timeouts are the listener's (httpserver.Defaults where zero).
	timeouts httpserver.Timeouts
	// emu adjusts the emulator's configuration.
	emu func(*entraemu.Config)
}

// withoutAPI runs the portal with the JSON API off (no OPERATOR_API_TOKEN).
func withoutAPI(o *setupOpts) { o.apiToken = "" }

// logTo captures the server's log in w.
func logTo(w io.Writer) func(*setupOpts) { return func(o *setupOpts) { o.log = w } }

// setup starts the portal on a loopback port registered as a redirect URI
// of the emulator's default app, against a fresh database.
func setup(t testing.TB, opts ...func(*setupOpts)) *testBundle {
	t.Helper()
	o := setupOpts{callbackRate: rate.Inf, callbackBurst: 1, apiToken: testAPIToken, log: io.Discard}
	for _, f := range opts {
		f(&o)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	seed := entraemu.SmallSeed()
	seed.Apps[0].RedirectURIs = append(seed.Apps[0].RedirectURIs, base+"/auth/callback", base+"/connect/callback")
	// A stand-in for personal Microsoft accounts: the emulator signs its
	// users in with tid = the MSA tenant GUID (protocol §4.5).
	seed.Tenants = append(seed.Tenants, entraemu.Tenant{
		ID: entra.PersonalAccountTenantID, DisplayName: "Microsoft Accounts", Domains: []string{"outlook.example"},
		Users: []entraemu.User{{UserPrincipalName: personalUPN, DisplayName: "Some One", AccountEnabled: true}},
	})
	for i := range seed.Tenants {
		if seed.Tenants[i].ID == contosoID {
			seed.Tenants[i].Users = append(seed.Tenants[i].Users,
				entraemu.User{UserPrincipalName: contosoPRA, DisplayName: "Contoso PRA", AccountEnabled: true,
					DirectoryRoles: []string{entraemu.PrivilegedRoleAdminRoleTemplateID}},
				entraemu.User{UserPrincipalName: contosoCloudApp, DisplayName: "Contoso Cloud App Admin", AccountEnabled: true,
					DirectoryRoles: []string{entraemu.CloudAppAdminRoleTemplateID}},
				entraemu.User{UserPrincipalName: contosoAppAdm, DisplayName: "Contoso App Admin", AccountEnabled: true,
					DirectoryRoles: []string{entraemu.AppAdminRoleTemplateID}})
		}
	}
	ecfg := entraemu.Config{Seed: seed}
	if o.emu != nil {
		o.emu(&ecfg)
	}
	emu := entraemu.StartTest(t, ecfg)
	pool := pgtest.Pool(t)
	store := postgres.New(pool)
	app := emu.DefaultApp()
	clock := &testClock{}
	signin, err := entra.NewSignIn(entra.SignInConfig{
		AuthorityHost: emu.AuthorityHost, ClientID: app.ClientID, ClientSecret: app.Secrets[0].Value,
		RedirectURL: base + "/auth/callback", HTTPClient: emu.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	inserter, err := queue.NewInserter(pool)
	if err != nil {
		t.Fatal(err)
	}
	ob := onboarding.New(onboarding.Config{
		Registry: NewRegistry(store, inserter),
		ConsentURL: func(tenantID, state string) string {
			return entra.AdminConsentURL(emu.AuthorityHost, tenantID, app.ClientID, base+"/connect/callback", state)
		},
		AdminLink: AdminLink(base),
		Now:       clock.Now,
	})
	ready, err := health.NewChecker(pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ready.Close() }) //nolint:errcheck // a handle over the pool
	srv, err := New(Config{
		PublicBaseURL: base, ClientID: app.ClientID, Pool: pool, Store: store, Jobs: inserter, SignIn: signin,
		Onboarding: ob, Actions: operator.New(store, inserter), Ready: ready, Metrics: metrics.New(),
		Logger:        slog.New(slog.NewTextHandler(o.log, nil)),
		Now:           clock.Now,
		CallbackRate:  o.callbackRate,
		CallbackBurst: o.callbackBurst,
		APIToken:      o.apiToken,
		// The console's operators: entraemu's home tenant, Operator role.
		OperatorTenantID: entraemu.HomeTenantID,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httpserver.New(srv, o.timeouts) // as cmd/server builds it
	hs.ErrorLog = slog.NewLogLogger(slog.NewTextHandler(o.log, nil), slog.LevelError)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		srv.Close()
	})
	return &testBundle{base: base, emu: emu, pool: pool, store: store, clock: clock, srv: srv}
}

// browser is an HTTP client with its own cookie jar: one browser session.
type browser struct {
	t    testing.TB
	b    *testBundle
	c    *http.Client
	last *http.Response
}

func (tb *testBundle) browser(t testing.TB) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := tb.emu.HTTPClient()
	c.Jar = jar
	return &browser{t: t, b: tb, c: c}
}

// do sends a request and returns the final response with its body read.
func (br *browser) do(req *http.Request, follow bool) (*http.Response, string) {
	br.t.Helper()
	c := *br.c
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	res, err := c.Do(req)
	if err != nil {
		br.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		br.t.Fatal(err)
	}
	br.last = res
	return res, string(body)
}

func (br *browser) get(rawURL string, follow bool) (*http.Response, string) {
	br.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = br.b.base + rawURL
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		br.t.Fatal(err)
	}
	return br.do(req, follow)
}

func (br *browser) post(rawURL string, form url.Values, follow bool) (*http.Response, string) {
	br.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = br.b.base + rawURL
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		br.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br.do(req, follow)
}

// signIn signs in through the emulator's sign-in page and returns the page
// the portal lands on.
func (br *browser) signIn(upn string) (*http.Response, string) {
	br.t.Helper()
	res, body := br.get("/signin?return=/tenant", true)
	if !strings.Contains(body, `id="signin"`) {
		br.t.Fatalf("no emulator sign-in form at %s (status %d): %.300s", res.Request.URL.Path, res.StatusCode, body)
	}
	return br.post(res.Request.URL.String(), url.Values{"login": {upn}, "password": {br.b.emu.Seed().DefaultPassword}}, true)
}

// connectState starts /connect and returns the state of the admin-consent
// redirect, without following it.
func (br *browser) connectState() string {
	br.t.Helper()
	res, _ := br.get("/connect", false)
	if res.StatusCode != http.StatusFound {
		br.t.Fatalf("GET /connect: status %d, want 302", res.StatusCode)
	}
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		br.t.Fatal(err)
	}
	if !strings.HasSuffix(u.Path, "/v2.0/adminconsent") {
		br.t.Fatalf("GET /connect redirects to %s, want adminconsent", u.Path)
	}
	return u.Query().Get("state")
}

// sessionUser returns the user kept in the browser's server-side session.
func (br *browser) sessionUser() SessionUser {
	br.t.Helper()
	ctx, err := br.b.srv.sessions.Load(context.Background(), sessionCookie(br, br.b.base))
	if err != nil {
		br.t.Fatal(err)
	}
	u, ok := br.b.srv.sessions.Get(ctx, keyUser).(SessionUser)
	if !ok {
		br.t.Fatal("no user in the session")
	}
	return u
}

// plantState keeps a connect state in the browser's own session without
// /connect, as a user who was refused there could only hold from before
// issue #10: the callback must refuse them all the same.
func (br *browser) plantState() string {
	br.t.Helper()
	state := randomToken()
	if err := br.b.store.ConnectStatePut(context.Background(), state, br.sessionUser().Binding, br.b.clock.Now()); err != nil {
		br.t.Fatal(err)
	}
	return state
}

func regexpFind(expr, s string) string {
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func htmlUnescape(s string) string { return html.UnescapeString(s) }

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the last page.
func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in page: %.300s", body)
	}
	return m[1]
}

// written counts what the connect flow may write: tenants, events, jobs.
type written struct{ Tenants, Events, Jobs int }

func countWritten(t testing.TB, pool *pgxpool.Pool) written {
	t.Helper()
	var w written
	err := pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM tenant_events), (SELECT count(*) FROM river_job)`).
		Scan(&w.Tenants, &w.Events, &w.Jobs)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type jobRow struct{ Kind, TenantID string }

func jobsOf(t testing.TB, pool *pgxpool.Pool) []jobRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT kind, args->>'tenant_id' FROM river_job ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []jobRow
	for rows.Next() {
		var j jobRow
		if err := rows.Scan(&j.Kind, &j.TenantID); err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return out
}
