package onboarding_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/onboarding"
)

// takeCall is one Callback.Take as the fuzz target saw it.
type takeCall struct {
	state               string
	notBefore, notAfter time.Time
	consent             *onboarding.Consent
}

// fuzzCallback is a Callback whose state is held or not as the fuzzer says.
type fuzzCallback struct {
	held  bool
	calls []takeCall
}

func (f *fuzzCallback) Take(_ context.Context, state string, notBefore, notAfter time.Time, c *onboarding.Consent) (bool, domain.Tenant, error) {
	f.calls = append(f.calls, takeCall{state, notBefore, notAfter, c})
	if !f.held || c == nil {
		return f.held, domain.Tenant{}, nil
	}
	return true, domain.Tenant{ID: c.TenantID, Status: domain.TenantPending}, nil
}

// FuzzFinishConnect judges fuzzed admin-consent callbacks (protocol §1.1,
// §1.3) and checks the rules, not only the absence of a panic: the state is
// spent exactly once whatever the answer; a consent is recorded, and the
// callback succeeds, only for a held state, a signed-in administrator, no error,
// admin_consent=True and a GUID tenant that is the user's own and not the
// personal-account tenant; every refusal is a ConnectError of a domain kind
// that carries no state.
func FuzzFinishConnect(f *testing.F) {
	const tid = "98c7e7b9-8621-4041-9670-f4938facd9f6"
	const ga = "62e90394-69f5-4237-9190-012177145e10"
	state := "Vq3nq0p8wzY2T4kF1JmX7o0b6c9Qe5rLhUuAaBbCcDd"
	f.Add("state="+state+"&admin_consent=True&tenant="+tid, tid, ga, true, true)
	f.Add("state="+state+"&admin_consent=true&tenant="+strings.ToUpper(tid), tid, ga, true, true)
	f.Add("state="+state+"&admin_consent=True&tenant="+tid, tid, "", true, false)
	f.Add("state="+state+"&admin_consent=True&tenant=9188040d-6c67-4c5b-b112-36a304b66dad", "9188040d-6c67-4c5b-b112-36a304b66dad", ga, true, true)
	f.Add("state="+state+"&admin_consent=True&tenant=contoso.onmicrosoft.com", tid, ga, true, true)
	f.Add("state="+state+"&admin_consent=True&tenant=3453b8d3-4b01-4d58-bdf7-eff5e2df1530", tid, ga, true, true)
	f.Add("error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state="+state+"&admin_consent=True&tenant="+tid, tid, "", true, true)
	f.Add("error=access_denied&error_description=AADSTS90094%3A+needs+admin&error_uri=https%3A%2F%2Flogin.microsoftonline.com%2Ferror%3Fcode%3D90094&state="+state, tid, "", true, true)
	f.Add("error=invalid_request&error_uri=%%&state="+state+"&state=second", tid, ga, false, true)
	f.Add("admin_consent=True&tenant="+tid, tid, ga, true, true)
	f.Add("state=&state="+state+";admin_consent=True", tid, ga, true, true)
	f.Fuzz(func(t *testing.T, rawQuery, userTenant, wids string, signedIn, held bool) {
		now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		s := onboarding.New(onboarding.Config{Now: func() time.Time { return now },
			ConsentURL: func(tenantID, state string) string {
				return "https://login.example/" + url.PathEscape(tenantID) + "/v2.0/adminconsent?state=" + url.QueryEscape(state)
			}})
		q, _ := url.ParseQuery(rawQuery) // as echo's QueryParams: what parses is judged
		var u *onboarding.User
		if signedIn {
			u = &onboarding.User{TenantID: userTenant, ObjectID: "o", Username: "u@example", DirectoryRoles: strings.Split(wids, ",")}
		}
		cb := &fuzzCallback{held: held}
		tenant, err := s.FinishConnect(context.Background(), cb, u, q)

		st := q.Get("state")
		if st == "" {
			if len(cb.calls) != 0 || !onboarding.IsProblem(err, onboarding.ProblemState) {
				t.Fatalf("no state: %d takes, %v", len(cb.calls), err)
			}
			return
		}
		if len(cb.calls) != 1 {
			t.Fatalf("state taken %d times, want once", len(cb.calls))
		}
		call := cb.calls[0]
		if call.state != st || !call.notBefore.Equal(now.Add(-onboarding.StateTTL)) || call.notAfter.Before(now) {
			t.Fatalf("take(%q, %v, %v), want the query's state and a window ending after now", call.state, call.notBefore, call.notAfter)
		}

		tq := q.Get("tenant")
		// Only a Global or Privileged Role Administrator may grant Graph
		// application permissions (protocol §1.1).
		admin := u != nil && slices.ContainsFunc(u.DirectoryRoles, func(r string) bool {
			return strings.EqualFold(r, ga) || strings.EqualFold(r, "e8611ab8-c189-46e8-94e1-60213ab1f814")
		})
		good := admin && q.Get("error") == "" && strings.EqualFold(q.Get("admin_consent"), "true") &&
			domain.IsGUID(tq) && strings.EqualFold(tq, u.TenantID) &&
			!strings.EqualFold(tq, "9188040d-6c67-4c5b-b112-36a304b66dad")
		if (call.consent != nil) != good {
			t.Fatalf("consent %+v recorded for a callback judged good=%v", call.consent, good)
		}
		if call.consent != nil && (call.consent.TenantID != strings.ToLower(tq) || call.consent.By.ObjectID != u.ObjectID) {
			t.Fatalf("consent %+v, want tenant %q by %+v", call.consent, strings.ToLower(tq), *u)
		}
		if err == nil {
			if !good || !held {
				t.Fatalf("callback accepted: good=%v held=%v", good, held)
			}
			if !domain.IsGUID(tenant.ID) || tenant.ID != strings.ToLower(tenant.ID) || tenant.ID != call.consent.TenantID {
				t.Fatalf("accepted tenant %q, want the consent's lower-case GUID %q", tenant.ID, call.consent.TenantID)
			}
			return
		}

		var ce *onboarding.ConnectError
		if !errors.As(err, &ce) || ce.Problem == "" {
			t.Fatalf("refusal %v is not a ConnectError", err)
		}
		if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrUnauthorized) && !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("refusal %v has no domain kind", err)
		}
		if len(st) >= 16 && strings.Contains(err.Error(), st) {
			t.Fatalf("refusal %q carries the state", err)
		}
		switch {
		case u == nil:
			if ce.Problem != onboarding.ProblemNotSignedIn {
				t.Fatalf("nobody signed in: %s", ce.Problem)
			}
		case !held:
			if ce.Problem != onboarding.ProblemState {
				t.Fatalf("state not held: %s", ce.Problem)
			}
		case good:
			t.Fatalf("good callback with a held state refused: %v", err)
		}
		if code := q.Get("error"); code != "" && u != nil && held && (ce.Code != code || ce.Description != q.Get("error_description")) {
			t.Fatalf("error redirect %q/%q reported as %q/%q", code, q.Get("error_description"), ce.Code, ce.Description)
		}
		if ce.Problem == onboarding.ProblemNeedsAdmin && ce.AdminLink != s.AdminLink(u.TenantID) {
			t.Fatalf("needs-admin link %q, want %q (no state)", ce.AdminLink, s.AdminLink(u.TenantID))
		}
	})
}
