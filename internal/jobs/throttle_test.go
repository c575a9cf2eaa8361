package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// TestThrottleWindowIsSharedByTheTenantsJobs: a tenant is throttled with
// Retry-After: 6 (longer than the Graph client waits in process, so the
// job snoozes) while its forced full sync and a periodic sync are both
// queued, then 5% of its requests keep being throttled. No request for the
// tenant may reach Graph inside a window it announced, whichever job would
// send it, and the full round completes. Before the window was the
// tenant's, the periodic job called Graph while the full one snoozed.
func TestThrottleWindowIsSharedByTheTenantsJobs(t *testing.T) {
	t.Parallel()
	tid := entraemu.ContosoTenantID
	ctx := context.Background()
	b := setup(t, opts{pageSize: 3})
	b.activate(t, tid)
	// Every request is throttled until the first window is announced.
	b.srv.SetFaults(tid, entraemu.Faults{ThrottleRate: 1, RetryAfter: 6 * time.Second})
	full, err := b.client.Insert(ctx, queue.SyncTenantArgs{TenantID: tid, Full: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first 429", func() bool { return b.srv.Counters(tid).Throttled > 0 })
	b.srv.SetFaults(tid, entraemu.Faults{ThrottleRate: 0.05, RetryAfter: 6 * time.Second})
	periodic, err := b.client.Insert(ctx, queue.SyncTenantArgs{TenantID: tid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.waitJob(t, full.Job.ID, rivertype.JobStateCompleted)
	b.waitJob(t, periodic.Job.ID, rivertype.JobStateCompleted)
	c := b.srv.Counters(tid)
	if c.EarlyRetries != 0 {
		t.Errorf("%d requests reached Graph inside a Retry-After window (%d throttled of %d)", c.EarlyRetries, c.Throttled, c.GraphRequests)
	}
	if tn := b.tenant(t, tid); tn.Status != domain.TenantActive {
		t.Errorf("tenant %s (%s) after the throttled rounds", tn.Status, tn.StatusReason)
	}
	runs, err := b.store.SyncRunList(ctx, tid, 50)
	if err != nil {
		t.Fatal(err)
	}
	fullDone := false
	for _, r := range runs {
		fullDone = fullDone || r.Kind == domain.SyncFull && r.Outcome == domain.SyncSucceeded && r.StartedAt.After(full.Job.CreatedAt)
	}
	if !fullDone {
		t.Error("the forced full round did not complete")
	}
	b.srv.SetFaults(tid, entraemu.Faults{})
	jobstest.AssertCopy(t, b.srv, b.store, tid)
	t.Logf("%d Graph requests, %d throttled, %d early", c.GraphRequests, c.Throttled, c.EarlyRetries)
}
