package webapp

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/api"
	"github.com/tenantsync/tenantsync/internal/domain"
)

// routes is the one place that lists every route of cmd/server
// (ARCHITECTURE.md). Handlers live one per file, named noun_verb.
func (s *Server) routes() {
	e := s.echo
	callback := s.callbackLimit()

	// Customer portal.
	e.GET("/", s.landingShow)
	e.GET("/signin", s.signinStart)
	e.GET("/auth/callback", s.authCallback, callback)
	e.POST("/signout", s.signout)
	e.GET("/connect", s.connectStart) // signs in itself, keeping ?tenant=
	e.GET("/connect/callback", s.connectCallback, callback)
	e.GET("/tenant", s.tenantShow, s.requireUser)
	e.POST("/tenant/disconnect", s.tenantDisconnect, s.requireUser)

	// Operator console: users of OPERATOR_TENANT_ID with the Operator app
	// role (console_access.go); every POST carries the CSRF token.
	g := e.Group("/console", s.requireOperator)
	g.GET("", s.consoleTenantList)
	g.GET("/tenants/:id", s.consoleTenantShow)
	g.POST("/tenants/:id/sync", s.consoleTenantSync)
	g.POST("/tenants/:id/suspend", s.consoleTenantSuspend)
	g.POST("/tenants/:id/resume", s.consoleTenantResume)
	g.POST("/tenants/:id/disconnect", s.consoleTenantDisconnect)

	// JSON API (bearer OPERATOR_API_TOKEN; off when unset), with its own
	// routes table in internal/api. CSRF and sessions are skipped for /api/.
	api.Register(e.Group("/api/v1"), api.Config{Token: s.cfg.APIToken, Store: s.store, Actions: s.actions, Logger: s.log})

	// Operations.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	e.GET("/static/*", staticHandler())
}

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
