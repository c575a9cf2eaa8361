package webapp

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// TestConsentChurnThroughThePortal is issue #11's consent churn driven the
// way customers drive it: the admin connects through the portal (sign-in,
// /connect, the emulator's consent page, the verified callback), revokes
// consent in Entra ID, connects again, disconnects in the portal, connects
// again, and revokes and grants within the same second — with the real
// worker syncing in between. The tenant ends where the customer left it
// each time, and its copy is never purged while its consent exists.
func TestConsentChurnThroughThePortal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tokens, gc := jobstest.GatedClients(t, tb.emu, "", tb.store)
	deps := &jobs.Deps{Store: tb.store, Tokens: tokens, Graph: gc, Logger: slog.New(slog.DiscardHandler),
		SyncInterval: time.Hour, ConsentPropagationWait: 20 * time.Second}
	worker := jobstest.StartWorker(t, tb.pool, deps, 4)
	br := tb.browser(t)
	if res, body := br.signIn(contosoAdm); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %.300s", res.StatusCode, body)
	}

	tenant := func() domain.Tenant {
		t.Helper()
		tn, err := tb.store.TenantGet(ctx, contosoID)
		if err != nil {
			t.Fatal(err)
		}
		return tn
	}
	// waitFor polls until the tenant is in want with its copy as big as the
	// emulator's directory (or empty, for a tenant whose copy is purged).
	waitFor := func(what string, want domain.TenantStatus, copied bool) {
		t.Helper()
		users := len(tb.emu.Directory(contosoID).Users)
		for range 1200 { // a minute, generous for busy machines; nothing here asserts on time
			tn := tenant()
			c, err := tb.store.DirectoryCounts(ctx, contosoID)
			if err != nil {
				t.Fatal(err)
			}
			if tn.Status == want && (copied && c.Users == users || !copied && c.Users == 0) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		c, _ := tb.store.DirectoryCounts(ctx, contosoID)
		tn := tenant()
		evs, _ := tb.store.TenantEvents(ctx, contosoID, 30)
		for _, e := range evs {
			t.Logf("event %s %s %s→%s %s", e.At.Format("15:04:05.000"), e.Kind, e.FromStatus, e.ToStatus, e.Reason)
		}
		rows, _ := tb.pool.Query(ctx, `SELECT id, kind, state, attempt, coalesce(finalized_at::text,''), coalesce(errors::text, '') FROM river_job ORDER BY id`)
		for rows.Next() {
			var id int64
			var kind, state, fin, errs string
			var attempt int
			_ = rows.Scan(&id, &kind, &state, &attempt, &fin, &errs)
			t.Logf("job %d %s %s attempt %d %s %.200s", id, kind, state, attempt, fin, errs)
		}
		rows.Close()
		t.Fatalf("%s: tenant %s (%s) with %d users copied, want %s (copied %v)", what, tn.Status, tn.StatusReason, c.Users, want, copied)
	}
	syncNow := func() {
		t.Helper()
		events, cancel := worker.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobSnoozed)
		defer cancel()
		res, err := worker.Insert(ctx, queue.SyncTenantArgs{TenantID: contosoID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(time.Minute)
		for {
			select {
			case ev := <-events:
				if ev.Job.ID == res.Job.ID && ev.Job.State != rivertype.JobStateRunning {
					return
				}
			case <-timeout:
				t.Fatalf("sync job %d did not finish", res.Job.ID)
			}
		}
	}
	connect := func() {
		t.Helper()
		res, body := br.get("/connect", true)
		if !strings.Contains(body, `id="consent"`) {
			t.Fatalf("no consent page at %s: %.500s", res.Request.URL, body)
		}
		res, body = br.post(res.Request.URL.String(), url.Values{"action": {"accept"}}, true)
		if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/tenant" {
			t.Fatalf("connect ended at %s with %d: %.500s", res.Request.URL.Path, res.StatusCode, body)
		}
	}

	connect()
	waitFor("first connection", domain.TenantActive, true)

	// Revoked in Entra ID: the next sync sees it and the copy goes.
	if err := tb.emu.RevokeConsent(contosoID); err != nil {
		t.Fatal(err)
	}
	syncNow()
	waitFor("after the revocation", domain.TenantConsentRevoked, false)

	// Connected again through the portal.
	connect()
	waitFor("connected again after the revocation", domain.TenantActive, true)

	// Disconnected by the customer's admin in the portal: final until an
	// admin connects again, whatever the worker does meanwhile.
	_, page := br.get("/tenant", true)
	res, body := br.post("/tenant/disconnect", url.Values{"_csrf": {csrfOf(t, page)}, "confirm": {"yes"}}, true)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d %.300s", res.StatusCode, body)
	}
	syncNow()
	waitFor("after the disconnect", domain.TenantDisconnected, false)
	connect()
	waitFor("connected again after the disconnect", domain.TenantActive, true)

	// Revoked and granted again within the same second (the admin removes
	// the app and adds it back at once): the consent exists, so the tenant
	// must stay active and keep its copy after the next syncs.
	if err := tb.emu.RevokeConsent(contosoID); err != nil {
		t.Fatal(err)
	}
	connect()
	syncNow()
	syncNow()
	waitFor("revoked and granted within a second", domain.TenantActive, true)
	jobstest.AssertCopy(t, tb.emu, tb.store, contosoID)
}
