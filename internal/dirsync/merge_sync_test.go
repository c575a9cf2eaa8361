package dirsync_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
)

// repeatingSource is Graph naming a user again on a later page (docs/
// protocol.md §5.2): each users page after a round's first also carries the
// first user of the page before. It counts the pages it serves and says when
// it has served a resource's last page.
type repeatingSource struct {
	dirsync.Source
	mu     sync.Mutex
	prev   *domain.DirectoryUser
	served int
	done   map[string]bool
}

func (s *repeatingSource) UsersDelta(ctx context.Context, tid, link string, p *domain.UsersPage) error {
	err := s.Source.UsersDelta(ctx, tid, link, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	s.served++
	first := len(p.Users) > 0
	if s.prev != nil && link != "" && !named(p, s.prev.ID) {
		p.Users = append(p.Users, *s.prev)
	}
	s.prev = nil
	if first {
		u := p.Users[0]
		s.prev = &u
	}
	s.done[dirsync.ResourceUsers] = p.DeltaLink != ""
	return nil
}

func (s *repeatingSource) GroupsDelta(ctx context.Context, tid, link string, p *domain.GroupsPage) error {
	err := s.Source.GroupsDelta(ctx, tid, link, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.served++
		s.done[dirsync.ResourceGroups] = p.DeltaLink != ""
	}
	return err
}

func named(p *domain.UsersPage, id string) bool {
	for _, u := range p.Users {
		if u.ID == id {
			return true
		}
	}
	for _, r := range p.Removed {
		if r == id {
			return true
		}
	}
	return false
}

// wait blocks until the resource's last page has been served.
func (s *repeatingSource) wait(t *testing.T, resource string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		done := s.done[resource]
		s.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the fetcher did not read ahead to the last %s page", resource)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// slowStore holds a resource's first page until its fetcher has fetched the
// last one, so the pages between wait for the store; it records the most
// users one call applied.
type slowStore struct {
	dirsync.Store
	t        *testing.T
	src      *repeatingSource
	held     map[string]bool
	maxUsers int
}

func (s *slowStore) hold(resource string) {
	if !s.held[resource] {
		s.held[resource] = true
		s.src.wait(s.t, resource)
	}
}

func (s *slowStore) DirectoryUsersApply(ctx context.Context, tid string, p *domain.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	s.hold(dirsync.ResourceUsers)
	s.maxUsers = max(s.maxUsers, len(p.Users))
	return s.Store.DirectoryUsersApply(ctx, tid, p, c)
}

func (s *slowStore) DirectoryGroupsApply(ctx context.Context, tid string, p *domain.GroupsPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	s.hold(dirsync.ResourceGroups)
	return s.Store.DirectoryGroupsApply(ctx, tid, p, c)
}

// TestPagesWaitingAreAppliedTogether: when the store is the slower side,
// the pages fetched meanwhile are applied as one; a user named again on a
// later page is written once, by its last mention, in the bulk first round
// (a duplicate would break its COPY) and in delta rounds; the copy is
// exact, the feed has each change once, and the run counts Graph's pages.
func TestPagesWaitingAreAppliedTogether(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	_, gc := jobstest.Clients(t, b.srv, "")
	for round := range 3 {
		if round > 0 {
			change(t, b, round-1)
		}
		src := &repeatingSource{Source: gc, done: map[string]bool{}}
		st := &slowStore{Store: b.store, t: t, src: src, held: map[string]bool{}}
		run, err := dirsync.New(src, st, nil).Sync(context.Background(), b.tid, dirsync.Options{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if run.Pages != src.served {
			t.Errorf("round %d counted %d pages; Graph served %d", round, run.Pages, src.served)
		}
		if round == 0 {
			// 30 users at 7 a page: pages 2-5 (and their repeats) as one.
			if st.maxUsers <= 7+1 {
				t.Errorf("the most users applied at once were %d: the waiting pages were not applied together", st.maxUsers)
			}
			if !roundBulk(t, b, dirsync.ResourceUsers) {
				t.Error("the first round did not write in bulk")
			}
			if diff := cmp.Diff(creations(b.srv.Directory(b.tid)), eventKeys(t, directoryEvents(t, b))); diff != "" {
				t.Errorf("events of the first round (-want +got):\n%s", diff)
			}
		}
		jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	}
}
