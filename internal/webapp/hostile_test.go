package webapp

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// logBuffer is a log sink that parallel requests may share.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logFailures returns the lines of a captured log that report a panic or an
// error: a request from outside must never cause either. (A bare "panic"
// would match random request IDs.)
func logFailures(log string) []string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		at := strings.Index(line, "level=ERROR")
		for _, panicked := range []string{"panic:", "panic serving", "[PANIC RECOVER]"} {
			if at < 0 {
				at = strings.Index(line, panicked)
			}
		}
		if at >= 0 {
			// From the match on: long paths would hide it.
			bad = append(bad, line[at:])
		}
	}
	return bad
}

var hostileMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// hostileBody is what a request carries besides its method and path.
type hostileBody struct {
	name  string
	query string
	ctype string
	body  string
	// chunked sends the body without a Content-Length.
	chunked bool
	// badText: the query (or, for POST, PUT and PATCH, the form) holds
	// NUL or invalid UTF-8, which must be a 400.
	badText, badForm bool
}

func hostileBodies(csrf string) []hostileBody {
	big := strings.Repeat("a", 70<<10)
	const form, json = "application/x-www-form-urlencoded", "application/json"
	return []hostileBody{
		{name: "plain"},
		{name: "NUL in q", query: "q=%00", badText: true},
		{name: "invalid UTF-8 in q", query: "q=%FF", badText: true},
		{name: "NUL in a key", query: "%00=1", badText: true},
		{name: "every API parameter", query: "limit=%00&cursor=%C0%AF&status=%FF&sort=%ED%A0%80", badText: true},
		{name: "oversized form", ctype: form, body: "_csrf=" + csrf + "&x=" + big},
		{name: "oversized JSON", ctype: json, body: `{"full":"` + big + `"}`},
		{name: "oversized chunked JSON", ctype: json, body: `{"full":"` + big + `"}`, chunked: true},
		{name: "malformed JSON", ctype: json, body: `{"full":`},
		{name: "JSON with unknown fields", ctype: json, body: `{"full":true,"x":"\u0000"}`},
		{name: "wrong content type", ctype: "text/plain", body: "hello"},
		{name: "NUL in the form", ctype: form, body: "_csrf=" + csrf + "&confirm=%00", badForm: true},
		{name: "invalid UTF-8 in the form", ctype: form, body: "_csrf=" + csrf + "&full=%FF", badForm: true},
		{name: "form without CSRF", ctype: form, body: "full=1"},
	}
}

// concretePaths turns a route pattern into paths to request: a known
// tenant, hostile IDs, and for wildcards an empty and a hostile tail.
func concretePaths(pattern, tenantID string) (paths []string, bad []bool) {
	switch {
	case strings.Contains(pattern, ":id"):
		for _, id := range []string{tenantID, uuid.NewString(), "not-a-tenant", "%00", "%FF", strings.Repeat("9", 3000)} {
			paths = append(paths, strings.Replace(pattern, ":id", id, 1))
			bad = append(bad, id == "%00" || id == "%FF")
		}
	case strings.HasSuffix(pattern, "*"):
		base := strings.TrimSuffix(pattern, "*")
		for _, tail := range []string{"", "app.css", "nothing/here", "%00", "%C3%28"} {
			paths = append(paths, base+tail)
			bad = append(bad, tail == "%00" || tail == "%C3%28")
		}
	default:
		paths, bad = []string{pattern}, []bool{false}
	}
	return paths, bad
}

// hostileClient is one way of presenting oneself: nothing, a signed-in
// operator's session, or the API's bearer token.
type hostileClient struct {
	name   string
	client *http.Client
	header http.Header
}

// TestHostileRequests sends every registered route every method, with and
// without a session or bearer token, with hostile parameters and bodies.
// Every answer must be complete and well-formed: below 500, problem+json
// under /api/v1 and HTML elsewhere for errors, 405 with Allow for a method
// an API route does not take, 400 for NUL or invalid UTF-8, 413 for a body
// over the route's limit; and the log shows no panic and no error.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("api=%v", api), func(t *testing.T) {
			t.Parallel()
			var log logBuffer
			opts := []func(*setupOpts){logTo(&log)}
			if !api {
				opts = append(opts, withoutAPI)
			}
			tb := setup(t, opts...)
			tid := uuid.NewString()
			insertTenants(t, tb.pool, consoleTenant{ID: tid, Name: "Hostile Ltd", Domains: []string{"hostile.example"}})

			op := tb.browser(t)
			op.signInConsole("operator@tenantsync.example")
			_, page := op.get("/console", false)
			csrf := csrfOf(t, page)
			noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			session := *op.c
			session.CheckRedirect = noRedirect
			plain := &http.Client{CheckRedirect: noRedirect}
			clients := []hostileClient{
				{name: "anonymous", client: plain},
				{name: "session", client: &session},
				{name: "bearer", client: plain, header: http.Header{"Authorization": {"Bearer " + testAPIToken}}},
			}

			patterns := map[string]map[string]bool{} // pattern → its methods
			for _, r := range tb.srv.Echo().Routes() {
				if patterns[r.Path] == nil {
					patterns[r.Path] = map[string]bool{}
				}
				patterns[r.Path][r.Method] = true
			}
			// Paths no route claims are as hostile as any.
			patterns["/no/such/page"], patterns["/api/v1/no/such/route"] = nil, nil
			var sorted []string
			for p := range patterns {
				sorted = append(sorted, p)
			}
			sort.Strings(sorted)

			type job struct {
				method, path string
				badPath      bool
				limit        int64
				wrongMethod  bool
				body         hostileBody
				who          hostileClient
			}
			jobs := make(chan job)
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range jobs {
						hostileCheck(t, tb.base, j.method, j.path, j.badPath, j.limit, j.wrongMethod, j.body, j.who)
					}
				}()
			}
			for _, pattern := range sorted {
				paths, bad := concretePaths(pattern, tid)
				for i, path := range paths {
					for _, method := range hostileMethods {
						for _, who := range clients {
							for _, body := range hostileBodies(csrf) {
								wrong := patterns[pattern] != nil && !patterns[pattern][method] && method != "OPTIONS"
								jobs <- job{method: method, path: path, badPath: bad[i], limit: tb.srv.bodyLimit(method, pattern, path),
									wrongMethod: wrong, body: body, who: who}
							}
						}
					}
				}
			}
			close(jobs)
			wg.Wait()
			for _, line := range logFailures(log.String()) {
				t.Errorf("log: %.500s", line)
			}
		})
	}
}

// hostileCheck sends one hostile request and checks its answer.
func hostileCheck(t *testing.T, base, method, path string, badPath bool, limit int64, wrongMethod bool, hb hostileBody, who hostileClient) {
	t.Helper()
	target := base + path
	if hb.query != "" {
		target += "?" + hb.query
	}
	var body io.Reader
	if hb.body != "" {
		body = strings.NewReader(hb.body)
		if hb.chunked {
			body = io.MultiReader(body) // hides the length: chunked
		}
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range who.header {
		req.Header[k] = v
	}
	if hb.ctype != "" {
		req.Header.Set("Content-Type", hb.ctype)
	}
	what := fmt.Sprintf("%s %.80s (%s, %s)", method, path, who.name, hb.name)
	res, err := who.client.Do(req)
	if err != nil {
		t.Errorf("%s: no complete answer: %v", what, err)
		return
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("%s: answer cut short: %v", what, err)
		return
	}
	if res.StatusCode >= 500 {
		t.Errorf("%s: status %d: %.200s", what, res.StatusCode, got)
		return
	}
	badForm := hb.badForm && (method == "POST" || method == "PUT" || method == "PATCH")
	switch {
	case !hb.chunked && int64(len(hb.body)) > limit:
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413 for a body over the route's %d bytes", what, res.StatusCode, limit)
		}
	case badPath || hb.badText || badForm:
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 for NUL or invalid UTF-8", what, res.StatusCode)
		}
	case wrongMethod && strings.HasPrefix(path, "/api/"):
		// Elsewhere CSRF may refuse an unsafe method first (403).
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405 for a method the route does not take", what, res.StatusCode)
		}
	}
	if res.StatusCode == http.StatusMethodNotAllowed && res.Header.Get("Allow") == "" {
		t.Errorf("%s: 405 without Allow", what)
	}
	ctype, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	switch {
	case res.StatusCode >= 400 && strings.HasPrefix(path, "/api/"):
		if ctype != "application/problem+json" {
			t.Errorf("%s: status %d as %q, want application/problem+json", what, res.StatusCode, ctype)
		}
	case res.StatusCode >= 400:
		if ctype != "text/html" {
			t.Errorf("%s: status %d as %q, want an HTML page", what, res.StatusCode, ctype)
		}
	case len(got) > 0 && ctype == "":
		t.Errorf("%s: status %d with a body but no Content-Type", what, res.StatusCode)
	}
	if method != "HEAD" && res.StatusCode >= 400 && len(got) == 0 {
		t.Errorf("%s: status %d with an empty body", what, res.StatusCode)
	}
}

// TestHeadOnEveryGetRoute: uptime monitors use HEAD; it answers as GET does.
func TestHeadOnEveryGetRoute(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tid := uuid.NewString()
	insertTenants(t, tb.pool, consoleTenant{ID: tid, Name: "Head Ltd", Domains: []string{"head.example"}})
	seen := map[string]bool{}
	for _, r := range tb.srv.Echo().Routes() {
		if r.Method != http.MethodGet || seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		path := strings.ReplaceAll(strings.Replace(r.Path, ":id", tid, 1), "*", "app.css")
		answer := func(method string) (int, string) {
			req, _ := http.NewRequest(method, tb.base+path, nil)
			req.Header.Set("Authorization", "Bearer "+testAPIToken)
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if method == "HEAD" && len(body) > 0 {
				t.Errorf("HEAD %s: a body of %d bytes", path, len(body))
			}
			return res.StatusCode, res.Header.Get("Content-Type")
		}
		gs, gt := answer("GET")
		hs, ht := answer("HEAD")
		if hs != gs || ht != gt {
			t.Errorf("HEAD %s: %d %q; GET: %d %q", path, hs, ht, gs, gt)
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d GET routes found", len(seen))
	}
}

// The answers issue #10 saw crash (an empty reply and a stack in the log)
// or fail with 500 are complete: a problem document under /api/v1, an HTML
// page elsewhere, the status the request deserves, nothing in the log.
func TestErrorAnswersSeenCrashing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, method, path, body string
		api, session, bearer     bool
		status                   int
		says                     string // the body names this
	}{
		{name: "API off", method: "GET", path: "/api/v1/tenants", bearer: true, status: 404, says: "OPERATOR_API_TOKEN"},
		{name: "unknown API route", method: "GET", path: "/api/v1/nothing", api: true, bearer: true, status: 404},
		{name: "wrong API method", method: "PUT", path: "/api/v1/tenants", api: true, bearer: true, status: 405},
		{name: "API body over the limit", method: "POST", path: "/api/v1/tenants/" + uuid.NewString() + "/sync", api: true, bearer: true,
			body: `{"full":true}` + strings.Repeat(" ", 8<<10), status: 413},
		{name: "NUL in the API's q", method: "GET", path: "/api/v1/tenants?q=%00", api: true, bearer: true, status: 400},
		{name: "POST /healthz", method: "POST", path: "/healthz", status: 405},
		{name: "GET /static/", method: "GET", path: "/static/", status: 404},
		{name: "page body over the limit", method: "POST", path: "/signout", body: strings.Repeat("a", 70<<10), status: 413},
		{name: "NUL in the console's q", method: "GET", path: "/console/tenants?q=%00", session: true, status: 400},
		{name: "invalid UTF-8 in the console's q", method: "GET", path: "/console/tenants?q=%FF", session: true, status: 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log logBuffer
			opts := []func(*setupOpts){logTo(&log)}
			if !tt.api {
				opts = append(opts, withoutAPI)
			}
			tb := setup(t, opts...)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if tt.session {
				br := tb.browser(t)
				br.signInConsole("operator@tenantsync.example")
				client.Jar = br.c.Jar
			}
			req, err := http.NewRequest(tt.method, tb.base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.bearer {
				req.Header.Set("Authorization", "Bearer "+testAPIToken)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("answer cut short: %v", err)
			}
			want := "text/html"
			if strings.HasPrefix(tt.path, "/api/") {
				want = "application/problem+json"
			}
			ctype, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
			if res.StatusCode != tt.status || ctype != want || len(body) == 0 {
				t.Errorf("%d %q with %d bytes, want %d %s: %.300s", res.StatusCode, ctype, len(body), tt.status, want, body)
			}
			if tt.status == 405 && res.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if !strings.Contains(string(body), tt.says) {
				t.Errorf("the answer does not name %s: %.300s", tt.says, body)
			}
			for _, line := range logFailures(log.String()) {
				t.Errorf("log: %.500s", line)
			}
		})
	}
}

// panickyError fails even to say what it is.
type panickyError struct{}

func (panickyError) Error() string { panic("an error that cannot describe itself") }

// The error handler runs outside Recover: should it panic anyway, the
// client still gets a complete 500 page and the log one line, not a stack.
func TestErrorHandlerSurvivesItsOwnPanic(t *testing.T) {
	t.Parallel()
	var log logBuffer
	tb := setup(t, logTo(&log))
	// Under /static/, as every bare route, no session middleware (and so
	// no Recover below the handler) answers the error first.
	tb.srv.Echo().GET("/static/panicky-error", func(echo.Context) error { return panickyError{} })
	res, err := http.Get(tb.base + "/static/panicky-error")
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("answer cut short: %v", err)
	}
	ctype, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != http.StatusInternalServerError || ctype != "text/html" || len(body) == 0 {
		t.Errorf("%d %q %q, want a 500 page", res.StatusCode, ctype, body)
	}
	lines := logFailures(log.String())
	if len(lines) != 1 || !strings.Contains(lines[0], `msg="request failed"`) || strings.Contains(lines[0], "goroutine ") {
		t.Errorf("want one request-failed line without a stack, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}
