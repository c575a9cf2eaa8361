package webapp

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// How much history the tenant page shows.
const (
	consoleEventLimit = 50
	consoleRunLimit   = 20
	consoleJobLimit   = 20
)

// consoleTenantView is the model of /console/tenants/:id.
type consoleTenantView struct {
	Layout
	Tenant      domain.Tenant
	Status      string // in words
	StatusLabel string
	StatusClass string
	Problem     *consoleProblem
	Roles       []roleCoverage
	// MissingRoles is true when the granted roles leave a need uncovered.
	MissingRoles bool
	Counts       domain.DirectoryCounts
	Runs         []consoleRunRow
	Chart        *syncChart
	Events       []domain.TenantEvent
	Jobs         []consoleJobRow
	JobCounts    []consoleJobCount
	// Notify says whether the tenant is near-real-time, and why not.
	Notify consoleNotify
	// Actions says which actions apply.
	Actions consoleActions
}

// consoleActions says which buttons the tenant page offers.
type consoleActions struct {
	CanSync       bool
	WhyNoSync     string
	CanSuspend    bool
	CanResume     bool
	CanDisconnect bool
}

// consoleProblem is the tenant's current error: plain words and the raw
// Graph or Entra code and message beside them.
type consoleProblem struct {
	Words string
	// Reason is the tenant's status reason as the worker wrote it.
	Reason string
	Code   string
	Raw    string
	Since  time.Time
}

// roleCoverage is one required Graph permission and whether the granted
// roles cover it.
type roleCoverage struct {
	Role    string
	Covered bool
}

// consoleRunRow is one sync run with its figures in words.
type consoleRunRow struct {
	domain.SyncRun
	Duration     string
	ThrottledFor string
	Outcome      string
	OutcomeClass string
}

// consoleJobRow is one River job of the tenant.
type consoleJobRow struct {
	postgres.TenantJob
	State      string
	StateClass string
}

// consoleJobCount is how many of the tenant's jobs are in one state.
type consoleJobCount struct {
	Label string
	N     int
}

// jobState maps River's states to the words of the job list.
var jobState = map[string]struct{ label, class string }{
	"available": {"queued", "pending"},
	"pending":   {"queued", "pending"},
	"scheduled": {"scheduled", "pending"},
	"running":   {"running", "ok"},
	"retryable": {"retrying", "warn"},
	"discarded": {"failed", "bad"},
	"cancelled": {"cancelled", "off"},
	"completed": {"completed", "off"},
}

var outcomeClass = map[domain.SyncOutcome]string{
	domain.SyncRunning: "pending", domain.SyncSucceeded: "ok", domain.SyncFailed: "bad", domain.SyncSnoozed: "warn",
}

// consoleTenantShow shows one tenant to an operator: status history,
// consent, sync runs and their chart, the current error, directory counts,
// River jobs, and the actions.
func (s *Server) consoleTenantShow(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.store.TenantGet(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	v := &consoleTenantView{Layout: Layout{Title: t.Name()},
		Tenant: t, Status: t.Status.Describe(), StatusLabel: statusLabel[t.Status], StatusClass: statusClass[t.Status]}
	// The notice is for this tenant's page only; another page spends it
	// unseen rather than show it on the wrong tenant later.
	if f, ok := s.sessions.Pop(ctx, keyFlash).(consoleFlash); ok && f.TenantID == t.ID {
		v.Notice = consoleNotices[f.Done]
	}
	if v.Events, err = s.store.TenantEvents(ctx, t.ID, consoleEventLimit); err != nil {
		return err
	}
	runs, err := s.store.SyncRunList(ctx, t.ID, consoleRunLimit)
	if err != nil {
		return err
	}
	if v.Counts, err = s.store.DirectoryCounts(ctx, t.ID); err != nil {
		return err
	}
	jobs, err := s.store.TenantJobs(ctx, t.ID, consoleJobLimit)
	if err != nil {
		return err
	}
	counts, err := s.store.TenantJobCounts(ctx, t.ID)
	if err != nil {
		return err
	}
	notify, err := s.store.TenantNotificationsOne(ctx, t.ID)
	if err != nil {
		return err
	}
	v.Notify = newConsoleNotify(notify)

	now := s.now()
	for _, r := range runs {
		v.Runs = append(v.Runs, consoleRunRow{SyncRun: r, Duration: formatDuration(r.Duration(now)),
			ThrottledFor: formatDuration(time.Duration(r.ThrottledFor) * time.Millisecond),
			Outcome:      string(r.Outcome), OutcomeClass: outcomeClass[r.Outcome]})
	}
	v.Chart = newSyncChart(runs)
	v.Problem = currentProblem(t, runs)
	missing := entra.MissingRoles(t.GrantedRoles)
	for _, r := range entra.RequiredRoles() {
		v.Roles = append(v.Roles, roleCoverage{Role: r, Covered: !slices.Contains(missing, r)})
	}
	v.MissingRoles = len(missing) > 0
	for _, j := range jobs {
		st := jobState[j.State]
		v.Jobs = append(v.Jobs, consoleJobRow{TenantJob: j, State: st.label, StateClass: st.class})
	}
	for _, g := range []struct {
		label  string
		states []string
	}{
		{"queued", []string{"available", "pending", "scheduled"}},
		{"running", []string{"running"}},
		{"retrying", []string{"retryable"}},
		{"failed", []string{"discarded"}},
	} {
		n := 0
		for _, st := range g.states {
			n += counts[st]
		}
		v.JobCounts = append(v.JobCounts, consoleJobCount{Label: g.label, N: n})
	}
	a := consoleActions{
		CanSuspend:    !t.SyncSuspended && t.Status != domain.TenantDisconnected,
		CanResume:     t.SyncSuspended,
		CanDisconnect: t.Status != domain.TenantDisconnected,
	}
	switch {
	case t.SyncSuspended:
		a.WhyNoSync = "Syncing is suspended; resume it to sync."
	case !t.Status.Syncs():
		a.WhyNoSync = "Only active or failing tenants sync; this one is " + strings.ToLower(statusLabel[t.Status]) + "."
	default:
		a.CanSync = true
	}
	v.Actions = a
	return s.render(c, http.StatusOK, "console_tenant", v)
}

// currentProblem returns the tenant's current error, if it has one: a
// status that needs attention, or a failed latest run.
func currentProblem(t domain.Tenant, runs []domain.SyncRun) *consoleProblem {
	var failed *domain.SyncRun
	for i, r := range runs {
		if r.Outcome == domain.SyncRunning || r.Outcome == domain.SyncSnoozed {
			continue
		}
		if r.Outcome == domain.SyncFailed {
			failed = &runs[i]
		}
		break
	}
	attention := t.Status == domain.TenantFailing || t.Status.NeedsAdmin()
	if !attention && failed == nil {
		return nil
	}
	p := &consoleProblem{Words: t.Status.Describe(), Since: t.StatusChangedAt}
	if attention {
		p.Reason = t.StatusReason
	}
	if failed != nil {
		p.Code, p.Raw = failed.ErrorCode, failed.Error
		if !attention {
			p.Since = failed.StartedAt
		}
	}
	if p.Code == "" {
		p.Code = codeIn(t.StatusReason)
	}
	if w, ok := errorCodeWords[strings.ToLower(p.Code)]; ok {
		p.Words = w
	}
	return p
}

// codeIn finds an AADSTS code quoted in a status reason, e.g. "(AADSTS700016)".
func codeIn(reason string) string {
	i := strings.Index(reason, "AADSTS")
	if i < 0 {
		return ""
	}
	j := i + len("AADSTS")
	for j < len(reason) && reason[j] >= '0' && reason[j] <= '9' {
		j++
	}
	if j == i+len("AADSTS") {
		return ""
	}
	return reason[i:j]
}

// errorCodeWords explains the Entra and Graph codes the worker meets, keyed
// by the lower-case code (docs/protocol.md §2.6 and §5.5).
var errorCodeWords = map[string]string{
	"aadsts700016":                   "The app is not installed in the customer's tenant: consent was never granted, was removed, or has not reached every Entra region yet.",
	"aadsts7000229":                  "The app has no service principal in the customer's tenant: consent was not granted or has not replicated yet.",
	"aadsts90002":                    "The customer's tenant no longer exists in Microsoft Entra ID.",
	"aadsts900023":                   "The tenant ID is not one Microsoft Entra ID knows.",
	"aadsts7000112":                  "An administrator of the customer's tenant disabled the app.",
	"aadsts7000215":                  "Our app's client secret was refused: it is wrong. Check ENTRA_CLIENT_SECRET.",
	"aadsts7000222":                  "Our app's client secret has expired. Create a new one and update ENTRA_CLIENT_SECRET.",
	"aadsts700027":                   "Our app's certificate was refused. Check the certificate registered on the app.",
	"aadsts700024":                   "Our federated credential assertion has expired or is not yet valid.",
	"authorization_identitynotfound": "Microsoft Graph does not know the app in this tenant: consent was probably removed.",
	"authorization_requestdenied":    "Microsoft Graph refused the request: the app lacks a permission it needs.",
	"toomanyrequests":                "Microsoft Graph is throttling this tenant; the sync waits and resumes on its own.",
	"activitylimitreached":           "Microsoft Graph is throttling this tenant; the sync waits and resumes on its own.",
	"syncstatenotfound":              "The saved delta link expired; the next sync reads everything again.",
	"resyncrequired":                 "Microsoft Graph asked for a full resync; the next sync reads everything again.",
	"servicenotavailable":            "Microsoft Graph was unavailable; the sync retries on its own.",
	"generalexception":               "Microsoft Graph failed on its side; the sync retries on its own.",
}
