package webapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tenantsync/tenantsync/internal/jobs"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
)

// chromium returns the browser binary, skipping the test without one
// (failing under CI=true, where .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; the browser tests need it")
	return ""
}

// newChrome starts headless Chromium; actions get a 90 s budget in total.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("ignore-certificate-errors", true), // the emulator's own CA
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1000, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	// A timeout on the first context would kill the browser (docs/libraries.md §7).
	tctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelC)
	return tctx
}

// screenshot saves the page to docs/screenshots/name.png when
// UPDATE_SCREENSHOTS=1.
// waitURL waits until the page's URL contains part: after a click that
// navigates, an element the old page also shows is no proof that the new
// page is there (and running axe on a page mid-navigation fails).
func waitURL(part string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			loc, err := chromedp.Location()(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			if strings.Contains(loc, part) {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("waiting for a URL with %q (at %s): %w", part, loc, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startWorker runs the worker's River client in process, against the same
// database and emulator, so a connected tenant becomes active.
func startWorker(t *testing.T, tb *testBundle) {
	t.Helper()
	tokens, gc := jobstest.Clients(t, tb.emu, "")
	deps := &jobs.Deps{Store: tb.store, Tokens: tokens, Graph: gc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ConsentPropagationWait: 30 * time.Second}
	jobstest.StartWorker(t, tb.pool, deps, 2)
}

// consoleSignInSteps opens /console signed out and signs upn in on the
// emulator's form, which sends the browser back to the console.
func consoleSignInSteps(tb *testBundle, upn string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(tb.base+"/console"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), upn),
		chromedp.SendKeys(chromedp.ID("password"), tb.emu.Seed().DefaultPassword),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
}

// textOf is the trimmed text of the first element matching sel.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func signInSteps(tb *testBundle, upn string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(tb.base+"/"),
		chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), upn),
		chromedp.SendKeys(chromedp.ID("password"), tb.emu.Seed().DefaultPassword),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
}

// TestBrowserAdminConnects: a seeded admin signs in, connects, accepts on
// the consent page and lands on /tenant showing the organization pending;
// with the worker running in process it then turns active.
func TestBrowserAdminConnects(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := newChrome(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(tb.base+"/"), chromedp.WaitVisible(chromedp.ID("signin"))); err != nil {
		t.Fatalf("landing: %v", err)
	}
	screenshot(t, ctx, "landing")
	accessible(t, ctx, "landing")
	if err := chromedp.Do(ctx, signInSteps(tb, contosoAdm), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	screenshot(t, ctx, "tenant-not-connected")
	accessible(t, ctx, "tenant-not-connected")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.ID("accept"))); err != nil {
		t.Fatalf("connect: %v", err)
	}
	screenshot(t, ctx, "emulator-consent")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("accept")),
		chromedp.WaitVisible(chromedp.CSS(`#status[data-status="pending"]`))); err != nil {
		t.Fatalf("accept: %v", err)
	}
	screenshot(t, ctx, "tenant-pending")
	accessible(t, ctx, "tenant-pending")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasPrefix(loc, tb.base+"/tenant") {
		t.Fatalf("after accept at %q (%v)", loc, err)
	}
	w := countWritten(t, tb.pool)
	if w.Tenants != 1 || w.Jobs != 1 {
		t.Fatalf("written %+v", w)
	}

	// The worker verifies the consent; the page, left alone, updates itself
	// in place (web/static/live.js) until it says active.
	startWorker(t, tb)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#status[data-status="active"]`))); err != nil {
		t.Fatalf("waiting for the page to show active by itself: %v", err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, tb.base+"/tenant") {
		t.Fatalf("after the update at %q (%v)", loc, err)
	}
	accessible(t, ctx, "tenant-updated-in-place")
	// Let the first sync finish so the screenshot shows counts.
	for {
		tn, err := tb.store.TenantGet(context.Background(), contosoID)
		if err != nil {
			t.Fatal(err)
		}
		if tn.LastSyncedAt != nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.base+"/tenant"), chromedp.WaitVisible(chromedp.CSS(`#status[data-status="active"]`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "tenant-active")
	accessible(t, ctx, "tenant-active")
}

// TestBrowserNonAdmin: a non-admin who selects Connect gets the portal's
// needs-admin page with a link for an administrator; the administrator
// opens it in their own browser, signs in, approves and lands on the
// organization's page with the consent received.
func TestBrowserNonAdmin(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := newChrome(t)
	if err := chromedp.Do(ctx, signInSteps(tb, contosoUser), chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.ID("admin-link"))); err != nil {
		t.Fatalf("connect as non-admin: %v", err)
	}
	h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main h1")))
	if err != nil || h1 != "An administrator needs to approve this" {
		t.Fatalf("heading %q (%v)", h1, err)
	}
	link, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("admin-link")))
	if err != nil || link != tb.base+"/connect?tenant="+contosoID {
		t.Errorf("admin link %q (%v)", link, err)
	}
	screenshot(t, ctx, "connect-needs-admin")
	accessible(t, ctx, "connect-needs-admin")
	if w := countWritten(t, tb.pool); w != (written{}) {
		t.Errorf("written %+v, want nothing", w)
	}

	admin := newChrome(t)
	if err := chromedp.Do(admin, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), contosoAdm),
		chromedp.SendKeys(chromedp.ID("password"), tb.emu.Seed().DefaultPassword),
		chromedp.Click(chromedp.ID("signin-submit")), chromedp.WaitVisible(chromedp.ID("accept")),
		chromedp.Click(chromedp.ID("accept")), chromedp.WaitVisible(chromedp.CSS(`#status[data-status="pending"]`))); err != nil {
		t.Fatalf("admin approves from the link: %v", err)
	}
	if w := countWritten(t, tb.pool); w != (written{Tenants: 1, Events: 1, Jobs: 1}) {
		t.Errorf("written %+v, want the consent", w)
	}
}
