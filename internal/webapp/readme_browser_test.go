package webapp

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tenantsync/tenantsync/internal/entraemu"
)

// The README's demo walk (section "The demo, step by step"), with the
// accounts it names. Litware is the seed's organization that has not
// connected yet.
const (
	litwareID   = entraemu.LitwareTenantID
	litwareAdm  = "admin@litware.example"
	litwareUser = "user@litware.example"
)

// signInAs fills the emulator's sign-in form; SetValue, not SendKeys, so
// a name the page offers already is replaced, not appended to.
func signInAs(tb *testBundle, upn string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SetValue(chromedp.ID("login"), upn),
		chromedp.SetValue(chromedp.ID("password"), tb.emu.Seed().DefaultPassword),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
}

// signOutAndSwitch is the README's "click Sign out, then Sign in with
// another account": one browser, one emulator session, another account.
func signOutAndSwitch(tb *testBundle, upn string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Click(chromedp.CSS(`header form[action="/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("signin-other")),
		chromedp.Click(chromedp.ID("signin-other")),
		signInAs(tb, upn),
	)
}

// TestBrowserREADMEDemo follows the README's demo steps in their order, in
// one browser, as a new user would: the non-admin is told to ask an
// administrator, the administrator connects, the organization turns active
// by itself, and the operator lands on the console, which lists it.
func TestBrowserREADMEDemo(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := newChrome(t)
	text := func(sel string) string { t.Helper(); return textOf(t, ctx, sel) }

	// 1. Sign in with Microsoft as user@litware.example: not connected yet.
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.base+"/"), chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.Click(chromedp.ID("signin")), signInAs(tb, litwareUser), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
		t.Fatalf("step 1, sign in as %s: %v", litwareUser, err)
	}
	if h1 := text("main h1"); h1 != "Your organization is not connected yet" {
		t.Errorf("step 1: heading %q", h1)
	}

	// 2. Connect your organization: an administrator must approve, with a
	// link to send them.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.ID("admin-link"))); err != nil {
		t.Fatalf("step 2, connect as a non-admin: %v", err)
	}
	if h1 := text("main h1"); h1 != "An administrator needs to approve this" {
		t.Errorf("step 2: heading %q", h1)
	}
	if link, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("admin-link"))); err != nil || link != tb.base+"/connect?tenant="+litwareID {
		t.Errorf("step 2: admin link %q (%v)", link, err)
	}
	if w := countWritten(t, tb.pool); w != (written{}) {
		t.Errorf("step 2: written %+v, want nothing", w)
	}

	// 3. Sign out, sign in with another account as admin@litware.example,
	// connect and accept at the emulator.
	if err := chromedp.Do(ctx, signOutAndSwitch(tb, litwareAdm), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
		t.Fatalf("step 3, sign in as %s: %v", litwareAdm, err)
	}
	if who := text("header .who"); who != litwareAdm {
		t.Fatalf("step 3: signed in as %q, want %s", who, litwareAdm)
	}
	accessible(t, ctx, "readme-admin-not-connected")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.ID("accept")),
		chromedp.Click(chromedp.ID("accept")), chromedp.WaitVisible(chromedp.CSS(`#status[data-status="pending"]`))); err != nil {
		t.Fatalf("step 3, connect and accept: %v", err)
	}

	// 4. Connecting, then Active by itself once the worker has verified
	// and synced.
	if badge := text("#status"); badge != "Connecting" {
		t.Errorf("step 4: badge %q, want Connecting", badge)
	}
	// Microsoft has not told the name yet: a phrase, not the tenant ID.
	if h1 := text("main h1"); h1 != "Your organization" {
		t.Errorf("step 4: pending page's heading %q, want Your organization", h1)
	}
	startWorker(t, tb)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#status[data-status="active"]`))); err != nil {
		t.Fatalf("step 4, the page shows active by itself: %v", err)
	}
	if badge := text("#status"); badge != "Active" {
		t.Errorf("step 4: badge %q, want Active", badge)
	}
	waitFor(t, ctx, "Litware's first sync", func() bool { return fullRuns(t, tb, litwareID) >= 1 && syncIdle(t, tb, litwareID) })
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#status[data-status="active"]`))); err != nil {
		t.Fatal(err)
	}
	if h1 := text("main h1"); h1 != "Litware" {
		t.Errorf("step 4: active page's heading %q, want Litware", h1)
	}
	// The history names statuses as the badge does.
	if hist := text(".events"); !strings.Contains(hist, "Active: ") || strings.Contains(hist, "active: ") {
		t.Errorf("step 4: history %q, want statuses in words (Active: …)", hist)
	}
	if users := text("#count-users"); users != "10" {
		t.Errorf("step 4: %s users shown, want Litware's 10", users)
	}
	// The last button keeps its distance from the footer's rule.
	if gap, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("footer.foot p").getBoundingClientRect().top - `+
		`document.getElementById("disconnect").getBoundingClientRect().bottom`)); err != nil || gap < 24 {
		t.Errorf("step 4: the Disconnect button sits %.0f px above the footer's rule (%v), want at least 24", gap, err)
	}

	// 5. Sign out, sign in with another account as the operator: the
	// console's overview, with its header link, and from it the tenant
	// list with Litware.
	if err := chromedp.Do(ctx, signOutAndSwitch(tb, operatorUPN), chromedp.WaitVisible(chromedp.ID("by-status"))); err != nil {
		t.Fatalf("step 5, sign in as %s: %v", operatorUPN, err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != tb.base+"/console" {
		t.Errorf("step 5: the operator landed on %q (%v), want /console", loc, err)
	}
	if link := text(`header nav a[href="/console"]`); link != "Console" {
		t.Errorf("step 5: header link %q", link)
	}
	// The header has room for the operator's whole e-mail address.
	if cut, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(e => e.scrollWidth > e.clientWidth)(document.querySelector("header .who"))`)); err != nil || cut {
		t.Errorf("step 5: the header cuts %s (%v)", operatorUPN, err)
	}
	if active := text(`#by-status li[data-status="active"] .n`); active != "1" {
		t.Errorf("step 5: the overview counts %q active tenants, want Litware's 1", active)
	}
	accessible(t, ctx, "readme-console")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("all-tenants")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-tenant="`+litwareID+`"] a`))); err != nil {
		t.Fatalf("step 5, Litware in the console's tenant list: %v", err)
	}
	accessible(t, ctx, "readme-console-tenants")
}
