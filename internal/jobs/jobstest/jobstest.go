// Package jobstest is for tests that wire the worker's parts (the MSAL
// token source, the Graph client and the River worker client) to the
// emulator and a real Postgres. Only _test.go files import it.
package jobstest

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/jobs"
)

// Clients returns an MSAL token source for the emulator's default app and a
// Graph client on the emulator's Graph host using it, both over one HTTP
// client that trusts the emulator's CA. An empty secret means the app's
// first secret. The Graph client keeps no tenant throttle window; the
// worker's wiring is GatedClients.
func Clients(t testing.TB, emu *entraemu.Server, secret string) (*entra.TokenSource, *graph.Client) {
	t.Helper()
	return GatedClients(t, emu, secret, nil)
}

// GatedClients is Clients wired as cmd/worker wires them: the Graph client
// keeps each tenant's throttle window in gate (a *postgres.Store), shared
// with every other client on the same database.
func GatedClients(t testing.TB, emu *entraemu.Server, secret string, gate graph.Gate) (*entra.TokenSource, *graph.Client) {
	t.Helper()
	app := emu.DefaultApp()
	if secret == "" {
		secret = app.Secrets[0].Value
	}
	hc := emu.HTTPClient()
	tokens, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: emu.AuthorityHost, GraphBaseURL: emu.GraphBaseURL,
		ClientID: app.ClientID, Secret: secret, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Config{BaseURL: emu.GraphBaseURL, HTTPClient: hc, Tokens: tokens, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	return tokens, gc
}

// StartWorker starts the worker's River client on pool with deps and
// concurrency, fetching jobs every few milliseconds and discarding River's
// own log. t.Cleanup stops it, cancelling running jobs, within 10 seconds.
func StartWorker(t testing.TB, pool *pgxpool.Pool, deps *jobs.Deps, concurrency int) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := jobs.NewWorkerClient(pool, deps, jobs.ClientConfig{Concurrency: concurrency, Tune: func(c *river.Config) {
		c.FetchCooldown = 10 * time.Millisecond
		c.FetchPollInterval = 50 * time.Millisecond
		c.Logger = slog.New(slog.DiscardHandler)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.StopAndCancel(ctx) // a test may have stopped it already
	})
	return client
}

// AssertCopy compares tid's directory copy in store with the emulator's
// directory, field by field, and reports every difference.
func AssertCopy(t testing.TB, emu *entraemu.Server, store *postgres.Store, tid string) {
	t.Helper()
	ctx := context.Background()
	tid = strings.ToLower(tid)
	dir := emu.Directory(tid)
	var wantUsers []domain.DirectoryUser
	for _, u := range dir.Users {
		wantUsers = append(wantUsers, domain.DirectoryUser{
			TenantID: tid, ID: strings.ToLower(u.ID), UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
			GivenName: u.GivenName, Surname: u.Surname, Mail: u.Mail, JobTitle: u.JobTitle, AccountEnabled: u.AccountEnabled,
		})
	}
	var wantGroups []domain.Group
	var wantMembers []domain.Membership
	for _, g := range dir.Groups {
		wantGroups = append(wantGroups, domain.Group{TenantID: tid, ID: strings.ToLower(g.ID), DisplayName: g.DisplayName, Description: g.Description})
		for _, m := range g.Members {
			wantMembers = append(wantMembers, domain.Membership{TenantID: tid, GroupID: strings.ToLower(g.ID), MemberID: strings.ToLower(m)})
		}
	}
	slices.SortFunc(wantMembers, func(a, b domain.Membership) int {
		return cmp.Or(strings.Compare(a.GroupID, b.GroupID), strings.Compare(a.MemberID, b.MemberID))
	})
	users, err := store.DirectoryUsers(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := store.DirectoryGroups(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	members, err := store.DirectoryMemberships(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	if d := gocmp.Diff(wantUsers, users); d != "" {
		t.Errorf("users of %s differ (-emulator +postgres):\n%s", tid, d)
	}
	if d := gocmp.Diff(wantGroups, groups); d != "" {
		t.Errorf("groups of %s differ (-emulator +postgres):\n%s", tid, d)
	}
	if d := gocmp.Diff(wantMembers, members); d != "" {
		t.Errorf("memberships of %s differ (-emulator +postgres):\n%s", tid, d)
	}
}

// NotificationReceiver is a loopback stand-in for the server's /graph
// endpoints: it answers Graph's validation handshake (docs/protocol.md §7)
// and accepts every notification. It returns the receiver's base URL.
func NotificationReceiver(t testing.TB) string {
	t.Helper()
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(tok))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rs.Close)
	return rs.URL
}
