package webapp

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
)

// aadDescription is an error_description as Entra writes it (protocol §1.1).
func aadDescription(n, msg string) string {
	return "AADSTS" + n + ": " + msg + "\r\nTrace ID: 0b1d9b5e-8f7e-4c55-9a1e-3f0f5a8c0001\r\nCorrelation ID: 6a3c1c55-0e1f-4c8e-9d6b-2b7c8a9e0002\r\nTimestamp: 2026-11-23 10:00:00Z"
}

func errorQuery(state, code, n, msg string) url.Values {
	q := url.Values{"error": {code}, "error_description": {aadDescription(n, msg)},
		"error_uri": {"https://login.microsoftonline.com/error?code=" + n}, "admin_consent": {"True"}}
	if state != "" {
		q.Set("state", state)
	}
	return q
}

func successQuery(state, tenant string) url.Values {
	q := url.Values{"admin_consent": {"True"}, "tenant": {tenant},
		"scope": {"https://graph.microsoft.com/User.Read.All https://graph.microsoft.com/GroupMember.Read.All"}}
	if state != "" {
		q.Set("state", state)
	}
	return q
}

// TestConnectCallbackRefused is the handler table of issue 4: every row is
// refused with a page in plain words, and nothing is written.
func TestConnectCallbackRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	tests := []struct {
		name string
		// as signs the browser in first ("" = not signed in).
		as string
		// query builds the callback query from a fresh state of this browser
		// (and of another browser, for the cross-session row).
		query      func(t *testing.T, br *browser, state, otherState string) url.Values
		wantStatus int
		wantText   []string
		notText    []string
	}{
		{
			name: "no state", as: contosoAdm,
			query:      func(_ *testing.T, _ *browser, _, _ string) url.Values { return successQuery("", contosoID) },
			wantStatus: http.StatusBadRequest, wantText: []string{"This link expired or was not started here"},
		},
		{
			name: "unknown state", as: contosoAdm,
			query:      func(_ *testing.T, _ *browser, _, _ string) url.Values { return successQuery(randomToken(), contosoID) },
			wantStatus: http.StatusBadRequest, wantText: []string{"This link expired or was not started here"},
		},
		{
			name: "state from another session", as: contosoAdm,
			query:      func(_ *testing.T, _ *browser, _, other string) url.Values { return successQuery(other, contosoID) },
			wantStatus: http.StatusBadRequest, wantText: []string{"This link expired or was not started here"},
		},
		{
			name: "replayed state", as: contosoAdm,
			query: func(t *testing.T, br *browser, state, _ string) url.Values {
				// First use: the admin cancelled. The state is spent even so.
				res, _ := br.get("/connect/callback?"+errorQuery(state, "access_denied", "65004", "User declined to consent to access the app.").Encode(), false)
				if res.StatusCode != http.StatusBadRequest {
					t.Fatalf("first use: status %d", res.StatusCode)
				}
				return successQuery(state, contosoID)
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"This link expired or was not started here"},
		},
		{
			name: "tenant is not the signed-in tenant", as: contosoAdm,
			query:      func(_ *testing.T, _ *browser, state, _ string) url.Values { return successQuery(state, fabrikamID) },
			wantStatus: http.StatusForbidden, wantText: []string{"That was a different organization", contosoID},
		},
		{
			name: "tenant in upper case of another tenant", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return successQuery(state, strings.ToUpper(fabrikamID))
			},
			wantStatus: http.StatusForbidden, wantText: []string{"That was a different organization"},
		},
		{
			name: "admin_consent missing", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				q := successQuery(state, contosoID)
				q.Del("admin_consent")
				return q
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"The approval did not come through"},
		},
		{
			name: "admin_consent false", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				q := successQuery(state, contosoID)
				q.Set("admin_consent", "False")
				return q
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"The approval did not come through"},
		},
		{
			name: "error access_denied AADSTS65004 (admin cancelled)", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return errorQuery(state, "access_denied", "65004", "User declined to consent to access the app.")
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"Connection cancelled", "access_denied"},
		},
		{
			name: "error consent_required AADSTS65004 (doc example)", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return errorQuery(state, "consent_required", "65004", "User declined to consent to access the app.")
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"Connection cancelled"},
		},
		{
			name: "error access_denied AADSTS90094 (admin approval needed)", as: contosoUser,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return errorQuery(state, "access_denied", "90094", "Admin consent is required for the permissions requested by this application.")
			},
			wantStatus: http.StatusForbidden,
			wantText:   []string{"An administrator needs to approve this", `value="` + tb.base + `/connect?tenant=` + contosoID + `"`},
			notText:    []string{"state=", "adminconsent"},
		},
		{
			name: "non-admin returns without consent (AADSTS65004)", as: contosoUser,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return errorQuery(state, "access_denied", "65004", "User declined to consent to access the app.")
			},
			wantStatus: http.StatusForbidden, wantText: []string{"An administrator needs to approve this"},
		},
		{
			name: "error access_denied AADSTS50020 (user of another tenant)", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return errorQuery(state, "access_denied", "50020", "User account '{EmailHidden}' from identity provider 'https://sts.windows.net/x/' does not exist in tenant 'Fabrikam'.")
			},
			wantStatus: http.StatusForbidden, wantText: []string{"That was a different organization"},
		},
		{
			name: "error permission_denied (v1 doc wording)", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return url.Values{"error": {"permission_denied"}, "error_description": {"The admin canceled the request"}, "state": {state}}
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"Connection cancelled"},
		},
		{
			name: "error server_error (anything else)", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return errorQuery(state, "server_error", "50000", "There was an error issuing a token.")
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"Microsoft reported a problem", "server_error"},
		},
		{
			name: "error_description carrying HTML and JS is escaped", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return url.Values{"error": {`access_denied"><script>alert(1)</script>`}, "admin_consent": {"True"}, "state": {state},
					"error_description": {`AADSTS65004: <script>alert(document.cookie)</script><img src=x onerror=alert(2)> "quoted" 'single'`}}
			},
			wantStatus: http.StatusBadRequest,
			wantText:   []string{"&lt;script&gt;alert(document.cookie)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;"},
			notText:    []string{"<script>", "<img src=x"},
		},
		{
			name: "malformed tenant", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return successQuery(state, "contoso.example")
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"The answer from Microsoft was not valid"},
		},
		{
			name: "malformed tenant with markup", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return successQuery(state, `98c7e7b9-8621-4041-9670-f4938facd9f6"><b>`)
			},
			wantStatus: http.StatusBadRequest, wantText: []string{"The answer from Microsoft was not valid"}, notText: []string{"<b>"},
		},
		{
			name: "personal account tenant", as: contosoAdm,
			query: func(_ *testing.T, _ *browser, state, _ string) url.Values {
				return successQuery(state, entra.PersonalAccountTenantID)
			},
			wantStatus: http.StatusForbidden, wantText: []string{"Personal accounts cannot connect"},
		},
		{
			name: "not signed in", as: "",
			query: func(_ *testing.T, _ *browser, _, other string) url.Values {
				return successQuery(other, contosoID)
			},
			wantStatus: http.StatusUnauthorized, wantText: []string{"Please sign in first"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			br := tb.browser(t)
			state := ""
			switch tt.as {
			case "":
			case contosoUser: // refused at /connect: a state from before issue #10
				br.signIn(tt.as)
				state = br.plantState()
			default:
				br.signIn(tt.as)
				state = br.connectState()
			}
			other := tb.browser(t)
			other.signIn(contosoAdm)
			otherState := other.connectState()

			q := tt.query(t, br, state, otherState)
			usedOwn := state != "" && q.Get("state") == state
			res, body := br.get("/connect/callback?"+q.Encode(), false)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d; body: %.600s", res.StatusCode, tt.wantStatus, body)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q: %.1500s", s, body)
				}
			}
			for _, s := range tt.notText {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q", s)
				}
			}
			if got := res.Header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
				t.Errorf("CSP %q", got)
			}
			// The state is spent whatever the outcome: a retry with a
			// success query is refused too.
			if usedOwn {
				res, _ := br.get("/connect/callback?"+successQuery(state, contosoID).Encode(), false)
				if res.StatusCode != http.StatusBadRequest {
					t.Errorf("state reused after a refusal: status %d", res.StatusCode)
				}
			}
		})
	}
	t.Cleanup(func() {
		// Every row above is a refusal, so nothing at all may be written.
		if got := countWritten(t, tb.pool); got != (written{}) {
			t.Errorf("written %+v, want nothing", got)
		}
	})
}

// TestConnectCallbackExpiredState: a state older than 10 minutes is refused
// (clock injected) and nothing is written.
func TestConnectCallbackExpiredState(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	br := tb.browser(t)
	br.signIn(contosoAdm)
	state := br.connectState()
	tb.clock.Advance(10*time.Minute + time.Second)
	stateRefused(t, tb, br, "/connect/callback?"+successQuery(state, contosoID).Encode(), written{})
}

// stateRefused asserts that the callback at u is refused for its state (the
// "link expired or not started here" page) and that the database then
// holds exactly want.
func stateRefused(t *testing.T, tb *testBundle, br *browser, u string, want written) {
	t.Helper()
	res, body := br.get(u, false)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This link expired") {
		t.Errorf("state not refused: status %d: %.500s", res.StatusCode, body)
	}
	if got := countWritten(t, tb.pool); got != want {
		t.Errorf("written %+v, want %+v", got, want)
	}
}

// TestConnectWithEmulator: an admin signs in, connects through the
// emulator's consent page, accepts, and lands on /tenant with the tenant
// pending, one event and one VerifyTenant job, all from one transaction.
func TestConnectWithEmulator(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	br := tb.browser(t)
	res, body := br.signIn(contosoAdm)
	if res.Request.URL.Path != "/tenant" || !strings.Contains(body, "Your organization is not connected yet") {
		t.Fatalf("after sign-in at %s: %.500s", res.Request.URL.Path, body)
	}
	// /connect → emulator consent page (SSO: no second sign-in).
	res, body = br.get("/connect", true)
	if !strings.Contains(body, `id="consent"`) {
		t.Fatalf("no consent page at %s: %.500s", res.Request.URL, body)
	}
	consentURL := res.Request.URL.String()
	// Accept, but stop at the redirect back so the callback can be replayed.
	res, _ = br.post(consentURL, url.Values{"action": {"accept"}}, false)
	callback := res.Header.Get("Location")
	if !strings.HasPrefix(callback, tb.base+"/connect/callback?") {
		t.Fatalf("consent redirected to %q", callback)
	}
	res, body = br.get(callback, true)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/tenant" {
		t.Fatalf("callback ended at %s with %d: %.500s", res.Request.URL.Path, res.StatusCode, body)
	}
	for _, s := range []string{`data-status="pending"`, "Consent received", contosoAdm, `data-refresh="5"`, `src="/static/live.js"`} {
		if !strings.Contains(body, s) {
			t.Errorf("/tenant lacks %q: %.2000s", s, body)
		}
	}

	ctx := context.Background()
	tn, err := tb.store.TenantGet(ctx, contosoID)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != domain.TenantPending || tn.ConsentedBy != contosoAdm || tn.ConsentedByOID == "" || tn.ConsentedAt == nil {
		t.Errorf("tenant %+v", tn)
	}
	evs, err := tb.store.TenantEvents(ctx, contosoID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != domain.EventConsented || evs[0].Actor != contosoAdm {
		t.Errorf("events %+v", evs)
	}
	if diff := cmp.Diff([]jobRow{{"verify_tenant", contosoID}}, jobsOf(t, tb.pool)); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}

	// Replaying the very callback Entra sent is refused and writes nothing more.
	stateRefused(t, tb, br, callback, written{Tenants: 1, Events: 1, Jobs: 1})
}

// TestConnectCallbackFailedWriteStoresNothing: when the consent transaction
// fails in the database, the tenant, its event and its job are all rolled
// back, the page says nothing of the state, and the state is still spent.
func TestConnectCallbackFailedWriteStoresNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	if _, err := tb.pool.Exec(ctx, `
		CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'tenant_events refused by the test'; END $$;
		CREATE TRIGGER refuse_event BEFORE INSERT ON tenant_events FOR EACH ROW EXECUTE FUNCTION refuse_event();`); err != nil {
		t.Fatal(err)
	}
	br := tb.browser(t)
	br.signIn(contosoAdm)
	state := br.connectState()
	res, body := br.get("/connect/callback?"+successQuery(state, contosoID).Encode(), false)
	if res.StatusCode != http.StatusInternalServerError || strings.Contains(body, state) || strings.Contains(body, "refused by the test") {
		t.Fatalf("status %d: %.800s", res.StatusCode, body)
	}
	if got := countWritten(t, tb.pool); got != (written{}) {
		t.Errorf("written %+v after a failed transaction, want nothing", got)
	}
	if _, err := tb.pool.Exec(ctx, `DROP TRIGGER refuse_event ON tenant_events`); err != nil {
		t.Fatal(err)
	}
	stateRefused(t, tb, br, "/connect/callback?"+successQuery(state, contosoID).Encode(), written{})
}

// TestConnectCallbackConcurrentReplays: the same successful callback sent
// eight times at once from the admin's browser is recorded once; every
// other copy is refused, and exactly one tenant, event and job exist.
func TestConnectCallbackConcurrentReplays(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	br := tb.browser(t)
	br.signIn(contosoAdm)
	u := tb.base + "/connect/callback?" + successQuery(br.connectState(), contosoID).Encode()
	client := *br.c
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := client.Get(u)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for s := range statuses {
		got[s]++
	}
	if want := map[int]int{http.StatusSeeOther: 1, http.StatusBadRequest: n - 1}; !cmp.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if w := countWritten(t, tb.pool); w != (written{Tenants: 1, Events: 1, Jobs: 1}) {
		t.Errorf("written %+v, want one of each", w)
	}
}
