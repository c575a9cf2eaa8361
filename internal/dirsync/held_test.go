package dirsync_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
)

// counting counts a store's pages applied on their own, and the runs'
// ends with the pages held for them.
type counting struct {
	dirsync.Store
	applied, ends, held int
}

func (c *counting) DirectoryUsersApply(ctx context.Context, tid string, p *domain.UsersPage, sc domain.SyncCommit) (domain.SyncApplied, error) {
	c.applied++
	return c.Store.DirectoryUsersApply(ctx, tid, p, sc)
}

func (c *counting) DirectoryGroupsApply(ctx context.Context, tid string, p *domain.GroupsPage, sc domain.SyncCommit) (domain.SyncApplied, error) {
	c.applied++
	return c.Store.DirectoryGroupsApply(ctx, tid, p, sc)
}

func (c *counting) SyncRunEnd(ctx context.Context, run domain.SyncRun, end domain.SyncEnd, held []domain.SyncPage) (int64, domain.SyncApplied, error) {
	c.ends++
	c.held += len(held)
	return c.Store.SyncRunEnd(ctx, run, end, held)
}

// groupsFail is a Source whose groups' delta fails.
type groupsFail struct {
	dirsync.Source
	err error
}

func (g groupsFail) GroupsDelta(context.Context, string, string, *domain.GroupsPage) error {
	return g.err
}

// TestSmallRoundCommitsWithItsEnd: a round of one page per resource (a
// small tenant's) holds its pages for the run's end, which commits them
// with the run (Options.End, issue 13): no page is applied on its own, and
// the copy, the feed and the run's counts are what applying them one by
// one gives; the next rounds (delta, then a forced full one over a copy
// that is not empty, which the end refuses to take) are right too. Without
// End nothing is held. When the groups' fetch fails, the users' page is
// still committed, on its own, and the run records the failure.
func TestSmallRoundCommitsWithItsEnd(t *testing.T) {
	t.Parallel()
	c := &counting{}
	b := setup(t, setupOpts{pageSize: 999, wrap: func(s dirsync.Store) dirsync.Store { c.Store = s; return c }})
	end := &domain.SyncEnd{Interval: time.Hour}
	f := &feed{b: b}
	f.next(t) // the tenant's own lifecycle events

	run := b.sync(t, dirsync.Options{End: end})
	dir := b.srv.Directory(b.tid)
	if c.applied != 0 || c.ends != 1 || c.held != 2 {
		t.Errorf("first round: %d pages applied on their own, %d held for %d ends; want 0, 2 for 1", c.applied, c.held, c.ends)
	}
	want := creations(dir)
	if run.ID == 0 || run.Pages != 2 || run.Upserts != len(want) || run.Kind != domain.SyncFull {
		t.Errorf("first round: run %d, %s, %d pages, %d upserts; want a recorded full run, 2 pages, %d upserts",
			run.ID, run.Kind, run.Pages, run.Upserts, len(want))
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	if diff := cmp.Diff(want, eventKeys(t, f.next(t))); diff != "" {
		t.Errorf("first round's events (-want +got):\n%s", diff)
	}

	// A steady round: its empty pages commit with the end.
	*c = counting{Store: c.Store}
	b.sync(t, dirsync.Options{End: end})
	if c.applied != 0 || c.ends != 1 || c.held != 2 {
		t.Errorf("steady round: %d pages applied on their own, %d held for %d ends; want 0, 2 for 1", c.applied, c.held, c.ends)
	}
	if evs := f.next(t); len(evs) != 0 {
		t.Errorf("a steady round over an unchanged directory wrote %v", eventKeys(t, evs))
	}

	// Rounds whose pages change rows the store must compare with the copy
	// (a delta round with changes; a forced full round, which sweeps): the
	// end refuses them before sending anything, and they are applied one
	// by one, then the end is recorded without them.
	change(t, b, 0)
	for _, opt := range []dirsync.Options{{End: end}, {End: end, FullJob: 7}} {
		*c = counting{Store: c.Store}
		b.sync(t, opt)
		if c.applied != 2 || c.ends != 2 || c.held != 2 {
			t.Errorf("round %+v: %d pages applied on their own, %d held for %d ends; want 2, 2 for 2", opt, c.applied, c.held, c.ends)
		}
		jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	}
	if evs := f.next(t); len(evs) == 0 {
		t.Error("a delta round with changes wrote no event")
	}

	// Without End nothing is held.
	*c = counting{Store: c.Store}
	b.sync(t, dirsync.Options{})
	if c.applied != 2 || c.ends != 0 {
		t.Errorf("round without End: %d pages applied on their own, %d ends; want 2 and 0", c.applied, c.ends)
	}
}

// splitGroups is a Source whose groups' full round starts with an empty
// page, so that it takes two pages.
type splitGroups struct{ dirsync.Source }

func (g splitGroups) GroupsDelta(ctx context.Context, tid, link string, p *domain.GroupsPage) error {
	switch link {
	case "":
		*p = domain.GroupsPage{NextLink: "split"}
		return nil
	case "split":
		link = ""
	}
	return g.Source.GroupsDelta(ctx, tid, link, p)
}

// TestHeldPagesCommitInOrder: when a later resource's round takes more than
// one page, its pages are applied on their own, and the held users' page
// is committed before them: the feed has every user's creation before the
// first group's event.
func TestHeldPagesCommitInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{pageSize: 999})
	_, gc := jobstest.Clients(t, b.srv, "")
	c := &counting{Store: b.store}
	syncer := dirsync.New(splitGroups{gc}, c, nil)
	run, err := syncer.Sync(context.Background(), b.tid, dirsync.Options{End: &domain.SyncEnd{Interval: time.Hour}})
	if err != nil || run.Pages != 3 {
		t.Fatalf("sync: %d pages, %v; want 3", run.Pages, err)
	}
	if c.applied != 3 || c.ends != 1 || c.held != 0 {
		t.Errorf("%d pages applied on their own, %d held for %d ends; want 3, none for 1", c.applied, c.held, c.ends)
	}
	jobstest.AssertCopy(t, b.srv, b.store, b.tid)
	lastUser, firstGroup := -1, -1
	evs := directoryEvents(t, b)
	for i, ev := range evs {
		if strings.HasPrefix(string(ev.Type), "user.") {
			lastUser = i
		} else if firstGroup < 0 {
			firstGroup = i
		}
	}
	if lastUser < 0 || firstGroup < 0 || lastUser > firstGroup {
		t.Errorf("feed order: last user event at %d, first group event at %d of %d", lastUser, firstGroup, len(evs))
	}
}

func TestHeldPageOutlivesALaterFailure(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{pageSize: 999})
	_, gc := jobstest.Clients(t, b.srv, "")
	broken := errors.New("groups are down")
	syncer := dirsync.New(groupsFail{Source: gc, err: broken}, b.store, nil)
	run, err := syncer.Sync(context.Background(), b.tid, dirsync.Options{End: &domain.SyncEnd{Interval: time.Hour}})
	if !errors.Is(err, broken) || run.Outcome != domain.SyncFailed || run.ID == 0 {
		t.Fatalf("sync with failing groups: %s run %d, %v; want a failed run recorded, %v", run.Outcome, run.ID, err, broken)
	}
	counts, err := b.store.DirectoryCounts(context.Background(), b.tid)
	must(t, err)
	if users := len(b.srv.Directory(b.tid).Users); counts.Users != users || counts.Groups != 0 || run.Pages != 1 || run.Upserts != users {
		t.Errorf("after the groups failed: %+v, run of %d pages and %d upserts; want the %d users alone, 1 page", counts, run.Pages, run.Upserts, users)
	}
	cps, err := b.store.SyncStateList(context.Background(), b.tid)
	must(t, err)
	if len(cps) != 1 || cps[0].Resource != dirsync.ResourceUsers || cps[0].LinkKind != domain.LinkDelta {
		t.Errorf("checkpoints after the groups failed: %+v; want the users' deltaLink alone", cps)
	}
}

// TestHeldPagesLeaseLost: held pages whose lease another job holds are not
// written with the run's end; the sync then fails as a page would
// (ErrSyncLeaseLost), writes nothing, and records its run as failed.
func TestHeldPagesLeaseLost(t *testing.T) {
	t.Parallel()
	c := &counting{}
	b := setup(t, setupOpts{pageSize: 999, wrap: func(s dirsync.Store) dirsync.Store { c.Store = s; return c }})
	ctx := context.Background()
	_, other := leaseTakenByAnother(t, b)
	run, err := b.syncer.Sync(ctx, b.tid, dirsync.Options{Lease: other, End: &domain.SyncEnd{Interval: time.Hour, LeaseOwner: other.Owner}})
	if !errors.Is(err, domain.ErrSyncLeaseLost) || run.Outcome != domain.SyncFailed || run.ID == 0 {
		t.Fatalf("sync without the lease: %s run %d, %v; want a failed run recorded, ErrSyncLeaseLost", run.Outcome, run.ID, err)
	}
	if c.held != 2 || c.applied != 1 {
		t.Errorf("%d pages held, %d applied on their own; want 2 held, then the first applied (and refused)", c.held, c.applied)
	}
	assertNothingWritten(t, b, "a sync without the lease")
}
