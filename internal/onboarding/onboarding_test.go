package onboarding

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
)

const tid = "98c7e7b9-8621-4041-9670-f4938facd9f6"

// memStates is an in-memory States for one session.
type memStates map[string]time.Time

func (m memStates) Put(_ context.Context, s string, at time.Time) error { m[s] = at; return nil }

// recorder is a Registry, and the Callback over a memStates, that remembers
// calls.
type recorder struct {
	states                memStates
	consents, disconnects []string
}

func (r *recorder) Take(_ context.Context, s string, notBefore, notAfter time.Time, c *Consent) (bool, domain.Tenant, error) {
	at, ok := r.states[s]
	delete(r.states, s)
	if !ok || at.Before(notBefore) || at.After(notAfter) {
		return false, domain.Tenant{}, nil
	}
	if c == nil {
		return true, domain.Tenant{}, nil
	}
	r.consents = append(r.consents, c.TenantID)
	return true, domain.Tenant{ID: c.TenantID, Status: domain.TenantPending}, nil
}

func (r *recorder) Disconnect(_ context.Context, id string, _ User) error {
	r.disconnects = append(r.disconnects, id)
	return nil
}

func setup(t *testing.T) (*Service, *recorder, *time.Time) {
	t.Helper()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	reg := &recorder{}
	s := New(Config{Registry: reg, Now: func() time.Time { return now },
		ConsentURL: func(tenantID, state string) string {
			return "https://login.example/" + tenantID + "/v2.0/adminconsent?state=" + state
		},
		AdminLink: func(tenantID string) string { return "https://portal.example/connect?tenant=" + tenantID }})
	return s, reg, &now
}

var admin = User{TenantID: tid, ObjectID: "o", Username: "admin@contoso.example", DirectoryRoles: []string{"62E90394-69F5-4237-9190-012177145E10"}}

// Users holding other roles than Global Administrator (protocol §4.6).
var (
	privRoleAdmin = User{TenantID: tid, ObjectID: "p", DirectoryRoles: []string{"e8611ab8-c189-46e8-94e1-60213ab1f814"}}
	cloudAppAdmin = User{TenantID: tid, ObjectID: "c", DirectoryRoles: []string{"158c047a-c907-4556-b7ef-446551a6b5f7"}}
	appAdmin      = User{TenantID: tid, ObjectID: "a", DirectoryRoles: []string{"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"}}
	member        = User{TenantID: tid, ObjectID: "m", DirectoryRoles: []string{"b79fbf4d-3ef9-4689-8143-76b194e85509"}}
	noWids        = User{TenantID: tid, ObjectID: "n"}
)

func successOf(s string) url.Values {
	return url.Values{"state": {s}, "admin_consent": {"True"}, "tenant": {tid}}
}

func TestFinishConnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		user    *User
		age     time.Duration
		query   func(state string) url.Values
		problem Problem
		kind    error
	}{
		{"success, admin_consent lower case", &admin, 0, func(s string) url.Values {
			return url.Values{"state": {s}, "admin_consent": {"true"}, "tenant": {strings.ToUpper(tid)}}
		}, "", nil},
		{"expired", &admin, StateTTL + time.Second, func(s string) url.Values {
			return url.Values{"state": {s}, "admin_consent": {"True"}, "tenant": {tid}}
		}, ProblemState, domain.ErrInvalid},
		{"just in time", &admin, StateTTL, func(s string) url.Values {
			return url.Values{"state": {s}, "admin_consent": {"True"}, "tenant": {tid}}
		}, "", nil},
		{"not signed in", nil, 0, func(s string) url.Values {
			return url.Values{"state": {s}, "admin_consent": {"True"}, "tenant": {tid}}
		}, ProblemNotSignedIn, domain.ErrUnauthorized},
		{"error with admin_consent=True is an error", &admin, 0, func(s string) url.Values {
			return url.Values{"state": {s}, "admin_consent": {"True"}, "error": {"access_denied"}, "error_description": {"AADSTS65004: declined"}}
		}, ProblemCancelled, domain.ErrInvalid},
		{"code from error_uri", &admin, 0, func(s string) url.Values {
			return url.Values{"state": {s}, "error": {"access_denied"}, "error_uri": {"https://login.microsoftonline.com/error?code=50020"}}
		}, ProblemOtherOrg, domain.ErrForbidden},
		// Issue #10 item 1: a success answer brought back by a user who
		// cannot grant Graph application permissions records nothing, even
		// with a state of their own session.
		{"privileged role administrator", &privRoleAdmin, 0, successOf, "", nil},
		{"cloud application administrator", &cloudAppAdmin, 0, successOf, ProblemNeedsAdmin, domain.ErrForbidden},
		{"application administrator", &appAdmin, 0, successOf, ProblemNeedsAdmin, domain.ErrForbidden},
		{"member", &member, 0, successOf, ProblemNeedsAdmin, domain.ErrForbidden},
		{"no wids at all", &noWids, 0, successOf, ProblemNeedsAdmin, domain.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, reg, now := setup(t)
			states := memStates{}
			reg.states = states
			to, err := s.BeginConnect(context.Background(), states, admin)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(to)
			state := u.Query().Get("state")
			if len(state) < 40 || states[state].IsZero() {
				t.Fatalf("state %q not kept", state)
			}
			*now = now.Add(tt.age)
			_, err = s.FinishConnect(context.Background(), reg, tt.user, tt.query(state))
			if tt.problem == "" {
				if err != nil || len(reg.consents) != 1 || reg.consents[0] != tid {
					t.Fatalf("err %v, consents %v", err, reg.consents)
				}
			} else if !IsProblem(err, tt.problem) || !errors.Is(err, tt.kind) || len(reg.consents) != 0 {
				t.Fatalf("err %v, want %s/%v; consents %v", err, tt.problem, tt.kind, reg.consents)
			}
			if len(states) != 0 {
				t.Error("state not consumed")
			}
		})
	}
}

// TestBeginConnectNeedsAdmin: only Global and Privileged Role
// Administrators get a state; everyone else gets the link for an admin and
// nothing is kept.
func TestBeginConnectNeedsAdmin(t *testing.T) {
	t.Parallel()
	for _, u := range []User{admin, privRoleAdmin} {
		s, _, _ := setup(t)
		states := memStates{}
		if to, err := s.BeginConnect(context.Background(), states, u); err != nil || len(states) != 1 || !strings.Contains(to, "/adminconsent?state=") {
			t.Errorf("%s: %q %v, states %d", u.ObjectID, to, err, len(states))
		}
	}
	for _, u := range []User{cloudAppAdmin, appAdmin, member, noWids} {
		s, _, _ := setup(t)
		states := memStates{}
		to, err := s.BeginConnect(context.Background(), states, u)
		var ce *ConnectError
		if to != "" || !errors.As(err, &ce) || ce.Problem != ProblemNeedsAdmin || !errors.Is(err, domain.ErrForbidden) ||
			ce.AdminLink != "https://portal.example/connect?tenant="+tid {
			t.Errorf("%s: %q %v", u.ObjectID, to, err)
		}
		if len(states) != 0 {
			t.Errorf("%s: a state was kept for a non-admin", u.ObjectID)
		}
	}
}

func TestDisconnectNeedsAdmin(t *testing.T) {
	t.Parallel()
	s, reg, _ := setup(t)
	pra := User{TenantID: tid, DirectoryRoles: []string{"e8611ab8-c189-46e8-94e1-60213ab1f814"}}
	appAdmin := User{TenantID: tid, DirectoryRoles: []string{"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"}} // Application Administrator
	if err := s.Disconnect(context.Background(), &appAdmin); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("application administrator: %v", err)
	}
	if err := s.Disconnect(context.Background(), nil); !errors.Is(err, domain.ErrUnauthorized) {
		t.Errorf("nobody: %v", err)
	}
	if err := s.Disconnect(context.Background(), &pra); err != nil || len(reg.disconnects) != 1 {
		t.Errorf("privileged role administrator: %v %v", err, reg.disconnects)
	}
}
