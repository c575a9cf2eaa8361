package dirsync_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

// feed follows one tenant's change-feed events between syncs.
type feed struct {
	b    *bundle
	seen int
}

// next returns the events written since the last call.
func (f *feed) next(t *testing.T) []domain.Event {
	t.Helper()
	evs := pgtest.Events(t, f.b.pool, f.b.tid)
	out := evs[f.seen:]
	f.seen = len(evs)
	return out
}

// directoryEvents returns the tenant's events but its lifecycle ones.
func directoryEvents(t *testing.T, b *bundle) []domain.Event {
	t.Helper()
	var out []domain.Event
	for _, ev := range pgtest.Events(t, b.pool, b.tid) {
		if !strings.HasPrefix(string(ev.Type), "tenant.") {
			out = append(out, ev)
		}
	}
	return out
}

// eventKey names an event by its type and object: "user.created u1",
// "group.member_added g1/u1".
func eventKey(t *testing.T, ev domain.Event) string {
	t.Helper()
	var d struct {
		ID       string `json:"id"`
		GroupID  string `json:"group_id"`
		MemberID string `json:"member_id"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("event %s data %s: %v", ev.Type, ev.Data, err)
	}
	if d.GroupID != "" {
		return string(ev.Type) + " " + d.GroupID + "/" + d.MemberID
	}
	return string(ev.Type) + " " + d.ID
}

func eventKeys(t *testing.T, evs []domain.Event) []string {
	t.Helper()
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = eventKey(t, ev)
	}
	slices.Sort(out)
	return out
}

// creations are the events a first sync of dir must write, sorted.
func creations(dir entraemu.Directory) []string {
	var out []string
	for _, u := range dir.Users {
		out = append(out, "user.created "+strings.ToLower(u.ID))
	}
	for _, g := range dir.Groups {
		out = append(out, "group.created "+strings.ToLower(g.ID))
		for _, m := range g.Members {
			out = append(out, "group.member_added "+strings.ToLower(g.ID)+"/"+strings.ToLower(m))
		}
	}
	slices.Sort(out)
	return out
}

func TestFirstSyncEmitsCreationsOnly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		faults *entraemu.Faults
	}{
		{name: "plain"},
		// Objects repeated within pages (protocol §5.2) are still one event each.
		{name: "replayed objects", faults: &entraemu.Faults{Replay: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{faults: tt.faults})
			f := &feed{b: b}
			f.next(t) // the tenant's own lifecycle events
			b.sync(t, dirsync.Options{})
			if diff := cmp.Diff(creations(b.srv.Directory(b.tid)), eventKeys(t, f.next(t))); diff != "" {
				t.Errorf("first sync events (-want +got):\n%s", diff)
			}
			b.sync(t, dirsync.Options{FullJob: 1})
			b.sync(t, dirsync.Options{})
			if evs := f.next(t); len(evs) != 0 {
				t.Errorf("a forced full round and a delta round over an unchanged directory wrote %v", eventKeys(t, evs))
			}
		})
	}
}

// TestEachChangeEmitsItsEvent makes one directory change at a time and
// checks the delta round writes exactly its events, payload included.
func TestEachChangeEmitsItsEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	f := &feed{b: b}
	b.sync(t, dirsync.Options{})
	f.next(t)
	dir := b.srv.Directory(b.tid)
	var member, plain entraemu.User // a user in exactly one group, one in none
	var group entraemu.Group
	plainAt := -1
	for i, u := range dir.Users {
		var in []entraemu.Group
		for _, g := range dir.Groups {
			if slices.Contains(g.Members, u.ID) {
				in = append(in, g)
			}
		}
		if len(in) == 1 && member.ID == "" {
			member, group = u, in[0]
		}
		if len(in) == 0 && plainAt < 0 {
			plain, plainAt = u, i
		}
	}
	if member.ID == "" || plainAt < 0 {
		t.Fatal("the seed has no user in exactly one group, or none in no group")
	}
	uid, gid, mid := strings.ToLower(plain.ID), strings.ToLower(group.ID), strings.ToLower(member.ID)
	var newUser entraemu.User

	steps := []struct {
		name   string
		change func() error
		want   []string
		data   string // the first want's data, when checked
	}{
		{name: "update", change: func() error {
			u := plain
			u.DisplayName, u.JobTitle = "Renamed", "Boss"
			return b.srv.UpdateUser(b.tid, u)
		}, want: []string{"user.updated " + uid}, data: fmt.Sprintf(`{"id":%q,"user_principal_name":%q,"display_name":"Renamed",`+
			`"given_name":%q,"surname":%q,"mail":%q,"job_title":"Boss","account_enabled":%t,`+
			`"previous_attributes":{"display_name":%q,"job_title":%q}}`,
			uid, plain.UserPrincipalName, plain.GivenName, plain.Surname, plain.Mail, plain.AccountEnabled, plain.DisplayName, plain.JobTitle)},
		{name: "disable", change: func() error {
			u := b.srv.Directory(b.tid).Users[plainAt]
			u.AccountEnabled = false
			return b.srv.UpdateUser(b.tid, u)
		}, want: []string{"user.disabled " + uid}},
		{name: "enable", change: func() error {
			u := b.srv.Directory(b.tid).Users[plainAt]
			u.AccountEnabled = true
			return b.srv.UpdateUser(b.tid, u)
		}, want: []string{"user.enabled " + uid}},
		{name: "soft delete", change: func() error { return b.srv.DeleteUser(b.tid, member.ID, false) },
			want: []string{"group.member_removed " + gid + "/" + mid, "user.deleted " + mid}},
		{name: "restore", change: func() error { return b.srv.RestoreUser(b.tid, member.ID) },
			want: []string{"group.member_added " + gid + "/" + mid, "user.restored " + mid}},
		{name: "member removed", change: func() error { return b.srv.RemoveMember(b.tid, group.ID, member.ID) },
			want: []string{"group.member_removed " + gid + "/" + mid}},
		{name: "member added", change: func() error { return b.srv.AddMember(b.tid, group.ID, member.ID) },
			want: []string{"group.member_added " + gid + "/" + mid}},
		{name: "hard delete", change: func() error { return b.srv.DeleteUser(b.tid, member.ID, true) },
			want: []string{"group.member_removed " + gid + "/" + mid, "user.removed " + mid}},
		{name: "create", change: func() (err error) {
			newUser, err = b.srv.CreateUser(b.tid, entraemu.User{UserPrincipalName: "hire@fabrikam.example", DisplayName: "Hire", AccountEnabled: true})
			return err
		}},
		{name: "soft then hard delete", change: func() error {
			if err := b.srv.DeleteUser(b.tid, plain.ID, false); err != nil {
				return err
			}
			return nil
		}, want: []string{"user.deleted " + uid}},
		{name: "deleted for good", change: func() error { return b.srv.DeleteUser(b.tid, plain.ID, true) },
			want: []string{"user.removed " + uid}},
		{name: "group updated", change: func() error {
			g := group
			g.Description = "new words"
			return b.srv.UpdateGroup(b.tid, g)
		}, want: []string{"group.updated " + gid}, data: fmt.Sprintf(`{"id":%q,"display_name":%q,"description":"new words",`+
			`"previous_attributes":{"description":%q}}`, gid, group.DisplayName, group.Description)},
	}
	for _, step := range steps {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.name == "create" {
			step.want = []string{"user.created " + strings.ToLower(newUser.ID)}
		}
		b.sync(t, dirsync.Options{})
		evs := f.next(t)
		if diff := cmp.Diff(step.want, eventKeys(t, evs)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
			continue
		}
		if step.data != "" {
			for _, ev := range evs {
				if eventKey(t, ev) == step.want[0] && !jsonEqual(t, step.data, ev.Data) {
					t.Errorf("%s: data %s, want %s", step.name, ev.Data, step.data)
				}
			}
		}
	}
	// The group goes, with its members.
	g := b.srv.Directory(b.tid).Groups[0]
	must(t, b.srv.DeleteGroup(b.tid, g.ID, false))
	b.sync(t, dirsync.Options{})
	want := []string{"group.deleted " + strings.ToLower(g.ID)}
	for _, m := range g.Members {
		want = append(want, "group.member_removed "+strings.ToLower(g.ID)+"/"+strings.ToLower(m))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, eventKeys(t, f.next(t))); diff != "" {
		t.Errorf("group deleted (-want +got):\n%s", diff)
	}
	// A full round finds nothing new to say, and the copy is exact.
	b.sync(t, dirsync.Options{FullJob: 1})
	if evs := f.next(t); len(evs) != 0 {
		t.Errorf("a full round after the changes wrote %v", eventKeys(t, evs))
	}
}

func jsonEqual(t *testing.T, want string, got []byte) bool {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	return cmp.Equal(w, g)
}
