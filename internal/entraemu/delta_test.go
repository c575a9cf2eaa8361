package entraemu

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type deltaResult struct {
	values    []map[string]any
	deltaLink string
	pages     int
}

// deltaRound follows nextLinks from u until a deltaLink.
func deltaRound(t *testing.T, s *Server, token, u string) deltaResult {
	t.Helper()
	var res deltaResult
	for {
		resp, body := graphGet(t, s, token, u)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", u, resp.StatusCode, body)
		}
		res.pages++
		for _, v := range body["value"].([]any) {
			res.values = append(res.values, v.(map[string]any))
		}
		next, hasNext := body["@odata.nextLink"].(string)
		dl, hasDelta := body["@odata.deltaLink"].(string)
		if hasNext == hasDelta {
			t.Fatalf("page must have exactly one of nextLink/deltaLink: %v", body)
		}
		if hasDelta {
			if !strings.HasPrefix(dl, s.GraphBaseURL+"/v1.0/") || !strings.Contains(dl, "$deltatoken=") {
				t.Fatalf("deltaLink %q", dl)
			}
			res.deltaLink = dl
			return res
		}
		if !strings.HasPrefix(next, s.GraphBaseURL+"/v1.0/") || !strings.Contains(next, "$skiptoken=") {
			t.Fatalf("nextLink %q is not absolute on the Graph host", next)
		}
		u = next
	}
}

func ids(vals []map[string]any) []string {
	var out []string
	for _, v := range vals {
		out = append(out, v["id"].(string))
	}
	slices.Sort(out)
	return out
}

func deltaSetup(t *testing.T, pageSize int) (*Server, *fakeClock, string) {
	t.Helper()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, DeltaPageSize: pageSize, ThrottleScale: 1000})
	return s, clk, secretToken(t, s, ContosoTenantID)
}

func TestUsersDeltaInitialAndIncremental(t *testing.T) {
	t.Parallel()
	s, _, tok := deltaSetup(t, 7)
	r := deltaRound(t, s, tok, "/v1.0/users/delta?$select=displayName,userPrincipalName,accountEnabled")
	want := s.Directory(ContosoTenantID)
	var wantIDs []string
	for _, u := range want.Users {
		wantIDs = append(wantIDs, u.ID)
	}
	if diff := cmp.Diff(wantIDs, ids(r.values)); diff != "" {
		t.Fatalf("initial round ids (-want +got):\n%s", diff)
	}
	if r.pages != (50+6)/7 {
		t.Errorf("pages = %d, want %d", r.pages, (50+6)/7)
	}
	for _, v := range r.values {
		if _, ok := v["givenName"]; ok {
			t.Fatalf("unselected property returned: %v", v)
		}
		if v["userPrincipalName"] == nil || v["accountEnabled"] == nil {
			t.Fatalf("selected property missing: %v", v)
		}
	}

	// Empty round: only a new deltaLink.
	r2 := deltaRound(t, s, tok, r.deltaLink)
	if len(r2.values) != 0 || r2.pages != 1 {
		t.Fatalf("empty round = %d values in %d pages", len(r2.values), r2.pages)
	}

	// Changes: create, update, soft delete, hard delete.
	u := want.Users[3]
	u.DisplayName = "Renamed Person"
	if err := s.UpdateUser(ContosoTenantID, u); err != nil {
		t.Fatal(err)
	}
	created, err := s.CreateUser(ContosoTenantID, User{UserPrincipalName: "new.person@contoso.example", DisplayName: "New Person", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	soft, hard := want.Users[5].ID, want.Users[6].ID
	if err := s.DeleteUser(ContosoTenantID, soft, false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ContosoTenantID, hard, true); err != nil {
		t.Fatal(err)
	}
	r3 := deltaRound(t, s, tok, r2.deltaLink)
	got := map[string]map[string]any{}
	for _, v := range r3.values {
		got[v["id"].(string)] = v
	}
	if len(got) != 4 {
		t.Fatalf("incremental round = %v, want 4 objects", r3.values)
	}
	if got[u.ID]["displayName"] != "Renamed Person" || got[u.ID]["@removed"] != nil {
		t.Errorf("updated user = %v", got[u.ID])
	}
	if got[created.ID]["userPrincipalName"] != "new.person@contoso.example" {
		t.Errorf("created user = %v", got[created.ID])
	}
	if diff := cmp.Diff(map[string]any{"reason": "changed"}, got[soft]["@removed"]); diff != "" {
		t.Errorf("soft delete: %s", diff)
	}
	if diff := cmp.Diff(map[string]any{"reason": "deleted"}, got[hard]["@removed"]); diff != "" {
		t.Errorf("hard delete: %s", diff)
	}
	// Restore shows up as a plain object.
	if err := s.RestoreUser(ContosoTenantID, soft); err != nil {
		t.Fatal(err)
	}
	r4 := deltaRound(t, s, tok, r3.deltaLink)
	if len(r4.values) != 1 || r4.values[0]["id"] != soft || r4.values[0]["@removed"] != nil {
		t.Errorf("restore round = %v", r4.values)
	}
}

func TestDeltaLatestExpiryReset(t *testing.T) {
	t.Parallel()
	s, clk, tok := deltaSetup(t, 0)
	r := deltaRound(t, s, tok, "/v1.0/users/delta?$deltatoken=latest")
	if len(r.values) != 0 || r.pages != 1 {
		t.Fatalf("latest = %v", r.values)
	}
	created, err := s.CreateUser(ContosoTenantID, User{UserPrincipalName: "later@contoso.example", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	r2 := deltaRound(t, s, tok, r.deltaLink)
	if diff := cmp.Diff([]string{created.ID}, ids(r2.values)); diff != "" {
		t.Fatalf("after latest: %s", diff)
	}

	// Expiry after 7 days by the injected clock.
	clk.Advance(7*24*time.Hour + time.Minute)
	tok = secretToken(t, s, ContosoTenantID)
	resp, body := graphGet(t, s, tok, r2.deltaLink)
	if resp.StatusCode != 400 || graphErrorCode(body) != "syncStateNotFound" {
		t.Fatalf("expired token: %d %v", resp.StatusCode, body)
	}

	// ExpireDeltaTokens invalidates a fresh token too, skip tokens included.
	g := deltaRound(t, s, tok, "/v1.0/groups/delta")
	resp, _ = graphGet(t, s, tok, g.deltaLink)
	if resp.StatusCode != 200 {
		t.Fatalf("fresh group deltaLink: %d", resp.StatusCode)
	}
	s.ExpireDeltaTokens(ContosoTenantID)
	resp, body = graphGet(t, s, tok, g.deltaLink)
	if resp.StatusCode != 400 || graphErrorCode(body) != "syncStateNotFound" {
		t.Fatalf("after ExpireDeltaTokens: %d %v", resp.StatusCode, body)
	}

	// ForceReset: 410 Gone with a Location that restarts the sync.
	u := deltaRound(t, s, tok, "/v1.0/users/delta?$select=displayName")
	s.ForceReset(ContosoTenantID)
	resp, body = graphGet(t, s, tok, u.deltaLink)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusGone || loc == "" || !strings.Contains(loc, "$deltaToken=") {
		t.Fatalf("reset: %d Location=%q %v", resp.StatusCode, loc, body)
	}
	again := deltaRound(t, s, tok, loc)
	if len(again.values) != len(s.Directory(ContosoTenantID).Users) {
		t.Errorf("resync after reset returned %d users", len(again.values))
	}
}

func TestGroupsDeltaMembers(t *testing.T) {
	t.Parallel()
	s, _, tok := deltaSetup(t, 3) // member budget 15 per page
	dir := s.Directory(ContosoTenantID)
	big, err := s.CreateGroup(ContosoTenantID, Group{DisplayName: "Everyone", Members: func() []string {
		var m []string
		for _, u := range dir.Users {
			m = append(m, u.ID)
		}
		return m
	}()})
	if err != nil {
		t.Fatal(err)
	}
	r := deltaRound(t, s, tok, "/v1.0/groups/delta")
	members := map[string][]string{}
	appearances := map[string]int{}
	for _, v := range r.values {
		id := v["id"].(string)
		appearances[id]++
		md, _ := v["members@delta"].([]any)
		for _, m := range md {
			mm := m.(map[string]any)
			if mm["@odata.type"] != "#microsoft.graph.user" || mm["@removed"] != nil {
				t.Fatalf("initial member entry %v", mm)
			}
			members[id] = append(members[id], mm["id"].(string))
		}
	}
	if appearances[big.ID] < 4 {
		t.Errorf("large group appeared on %d pages, want it split", appearances[big.ID])
	}
	dir = s.Directory(ContosoTenantID)
	for _, g := range dir.Groups {
		got := members[g.ID]
		slices.Sort(got)
		if len(g.Members) == 0 {
			got = []string{}
		}
		if diff := cmp.Diff(g.Members, got); diff != "" {
			t.Errorf("group %s members (-want +got):\n%s", g.DisplayName, diff)
		}
	}

	// Membership changes → only the changed members with @removed.
	g0 := dir.Groups[0]
	if g0.ID == big.ID {
		g0 = dir.Groups[1]
	}
	gid := g0.ID
	removed := g0.Members[0]
	if err := s.RemoveMember(ContosoTenantID, gid, removed); err != nil {
		t.Fatal(err)
	}
	var added string
	for _, u := range dir.Users {
		if !slices.Contains(g0.Members, u.ID) {
			added = u.ID
			break
		}
	}
	if err := s.AddMember(ContosoTenantID, gid, added); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ContosoTenantID, big.ID, true); err != nil {
		t.Fatal(err)
	}
	r2 := deltaRound(t, s, tok, r.deltaLink)
	if len(r2.values) != 2 {
		t.Fatalf("incremental groups = %v", r2.values)
	}
	for _, v := range r2.values {
		switch v["id"] {
		case big.ID:
			if diff := cmp.Diff(map[string]any{"reason": "deleted"}, v["@removed"]); diff != "" {
				t.Errorf("deleted group: %s", diff)
			}
		case gid:
			want := []any{
				map[string]any{"@odata.type": "#microsoft.graph.user", "id": removed, "@removed": map[string]any{"reason": "deleted"}},
				map[string]any{"@odata.type": "#microsoft.graph.user", "id": added},
			}
			got := v["members@delta"].([]any)
			less := func(a, b any) bool { return a.(map[string]any)["id"].(string) < b.(map[string]any)["id"].(string) }
			if diff := cmp.Diff(want, got, cmpSortSlices(less)); diff != "" {
				t.Errorf("members@delta (-want +got):\n%s", diff)
			}
		default:
			t.Errorf("unexpected group %v", v)
		}
	}
}

// TestDeltaReplay: with Replay, every non-empty page ends with its first
// object again (a group with the first of its members); the page count is
// unchanged.
func TestDeltaReplay(t *testing.T) {
	t.Parallel()
	s, _, tok := deltaSetup(t, 4)
	plain := deltaRound(t, s, tok, "/v1.0/users/delta")
	s.SetFaults(ContosoTenantID, Faults{Replay: true})
	for _, path := range []string{"/v1.0/users/delta", "/v1.0/groups/delta"} {
		u, pages, repeats := path, 0, 0
		for u != "" {
			resp, body := graphGet(t, s, tok, u)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", u, resp.StatusCode)
			}
			pages++
			vals := body["value"].([]any)
			if len(vals) > 0 {
				first, last := vals[0].(map[string]any), vals[len(vals)-1].(map[string]any)
				// A group's repeat carries a slice of its members, as a large
				// group's repeats do (§5.3): the same first ones.
				fm, _ := first["members@delta"].([]any)
				lm, _ := last["members@delta"].([]any)
				if len(lm) <= len(fm) {
					fm = fm[:len(lm)]
				}
				delete(first, "members@delta")
				delete(last, "members@delta")
				if len(vals) < 2 || !cmp.Equal(first, last) || !cmp.Equal(fm, lm) {
					t.Fatalf("%s page %d does not end with its first object: %v", path, pages, vals)
				}
				repeats++
			}
			u, _ = body["@odata.nextLink"].(string)
		}
		if repeats < 2 {
			t.Errorf("%s: %d pages replayed, want every page of several", path, repeats)
		}
		if path == "/v1.0/users/delta" && pages != plain.pages {
			t.Errorf("users: %d pages with replay, %d without", pages, plain.pages)
		}
	}
}
