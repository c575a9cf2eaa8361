package webapp

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/api"
	"github.com/tenantsync/tenantsync/internal/domain"
)

// routes is the one place that lists every route of cmd/server
// (docs/architecture.md). Handlers live one per file, named noun_verb.
func (s *Server) routes() {
	e := s.echo
	callback := s.callbackLimit()
	// Every GET route answers HEAD too (uptime monitors use it); every
	// route that reads a body says how much it may hold (bodyLimit).
	s.bodyLimits = map[string]int64{}
	form := func(r *echo.Route) { s.bodyLimits[r.Method+" "+r.Path] = formBodyLimit }

	// Customer portal.
	e.Match(getHead, "/", s.landingShow)
	e.Match(getHead, "/signin", s.signinStart)
	e.Match(getHead, "/auth/callback", s.authCallback, callback)
	form(e.POST("/signout", s.signout))
	e.Match(getHead, "/connect", s.connectStart) // signs in itself, keeping ?tenant=
	e.Match(getHead, "/connect/callback", s.connectCallback, callback)
	e.Match(getHead, "/tenant", s.tenantShow, s.requireUser)
	form(e.POST("/tenant/disconnect", s.tenantDisconnect, s.requireUser))

	// Operator console: users of OPERATOR_TENANT_ID with the Operator app
	// role (console_access.go); every POST carries the CSRF token. The
	// guard is per route: on the group, echo would add catch-all routes
	// that turn every 405 into a 404.
	g, op := e.Group("/console"), s.requireOperator
	g.Match(getHead, "", s.consoleOverviewShow, op) // and old tenant-list bookmarks, redirected
	g.Match(getHead, "/needs-action", s.consoleNeedsActionList, op)
	g.Match(getHead, "/tenants", s.consoleTenantList, op)
	g.Match(getHead, "/tenants/:id", s.consoleTenantShow, op)
	form(g.POST("/tenants/:id/sync", s.consoleTenantSync, op))
	form(g.POST("/tenants/:id/suspend", s.consoleTenantSuspend, op))
	form(g.POST("/tenants/:id/resume", s.consoleTenantResume, op))
	form(g.POST("/tenants/:id/disconnect", s.consoleTenantDisconnect, op))
	g.Match(getHead, "/webhooks", s.consoleWebhookList, op)
	form(g.POST("/webhooks/:id/replay", s.consoleWebhookReplay, op))

	// JSON API (bearer OPERATOR_API_TOKEN; off when unset), with its own
	// routes table in internal/api. CSRF and sessions are skipped for /api/;
	// its bodies are held to api.BodyLimit, its errors are problems.
	api.Register(e.Group("/api/v1"), api.Config{Token: s.cfg.APIToken, Store: s.store, Actions: s.actions, Logger: s.log,
		WebhookAllowPrivate: s.cfg.WebhookAllowPrivate})

	// Microsoft Graph change notifications (docs/protocol.md §7): Graph is
	// the client, so no session and no CSRF (isBare); each notification is
	// checked against its subscription's clientState instead.
	graph := func(r *echo.Route) { s.bodyLimits[r.Method+" "+r.Path] = graphBodyLimit }
	graph(e.POST("/graph/notifications", s.graphNotificationReceive))
	graph(e.POST("/graph/lifecycle", s.graphLifecycleReceive))

	// Operations.
	e.Match(getHead, "/healthz", s.healthz)
	e.Match(getHead, "/readyz", s.readyz)
	e.Match(getHead, "/metrics", echo.WrapHandler(s.metrics.Handler()))
	e.Match(getHead, "/static/*", staticHandler())
}

// getHead are the methods of a page or any other read-only route.
var getHead = []string{http.MethodGet, http.MethodHead}

// returnPaths are the only places a sign-in may return to: relative paths
// of known pages, never a URL from the request (no open redirects).
var returnPaths = map[string]bool{
	"/":        true,
	"/tenant":  true,
	"/connect": true,
	"/console": true,
}

// safeReturn returns p when it is a known page path, or the admin link
// of connectPath, else /tenant.
func safeReturn(p string) string {
	if returnPaths[p] {
		return p
	}
	if t, ok := strings.CutPrefix(p, "/connect?tenant="); ok && domain.IsGUID(t) {
		return connectPath(t)
	}
	return "/tenant"
}

// connectPath is /connect for tenantID: the link a user sends to an
// administrator (onboarding.Config.AdminLink); plain /connect when empty.
func connectPath(tenantID string) string {
	if tenantID == "" {
		return "/connect"
	}
	return "/connect?tenant=" + strings.ToLower(tenantID)
}
