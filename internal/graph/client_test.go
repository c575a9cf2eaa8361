package graph_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/graph"
)

func setup(t *testing.T) (*entraemu.Server, *graph.Client) {
	t.Helper()
	srv := entraemu.StartTest(t, entraemu.Config{Seed: entraemu.SmallSeed(), DeltaPageSize: 5})
	app := srv.DefaultApp()
	tokens, err := entra.NewTokenSource(entra.TokenConfig{AuthorityHost: srv.AuthorityHost, GraphBaseURL: srv.GraphBaseURL,
		ClientID: app.ClientID, Secret: app.Secrets[0].Value, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.New(graph.Config{BaseURL: srv.GraphBaseURL, HTTPClient: srv.HTTPClient(), Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestForeignLinkNeverGetsTheToken(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	tid := entraemu.ContosoTenantID
	var p domain.UsersPage
	for _, link := range []string{
		"https://evil.example/v1.0/users/delta?$skiptoken=x",
		"http://" + srv.GraphBaseURL[len("https://"):] + "/v1.0/users/delta",
		"https://user@" + srv.GraphBaseURL[len("https://"):] + "/v1.0/users/delta",
	} {
		err := c.UsersDelta(context.Background(), tid, link, &p)
		var ge *graph.Error
		if !errors.As(err, &ge) || ge.Kind != graph.ErrForeignLink {
			t.Errorf("%s: %v, want a foreign link error", link, err)
		}
	}
	if n := srv.Counters(tid); n.TokenRequests != 0 || n.GraphRequests != 0 {
		t.Errorf("requests were sent: %+v", n)
	}
}

func TestPagesAndOrganization(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	tid := entraemu.ContosoTenantID
	ctx := context.Background()
	org, _, err := c.Organization(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	if org.DisplayName != "Contoso" || !slices.Contains(org.Domains, "contoso.example") {
		t.Errorf("organization: %+v", org)
	}
	var p domain.UsersPage
	seen := map[string]bool{}
	link := ""
	for pages := 0; ; pages++ {
		if err := c.UsersDelta(ctx, tid, link, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Users) > 5 {
			t.Errorf("page of %d users, want at most 5", len(p.Users))
		}
		for _, u := range p.Users {
			seen[u.ID] = true
		}
		if p.DeltaLink != "" {
			break
		}
		link = p.NextLink
	}
	if len(seen) != len(srv.Directory(tid).Users) {
		t.Errorf("saw %d users, want %d", len(seen), len(srv.Directory(tid).Users))
	}
}
