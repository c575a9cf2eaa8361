package webapp

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
	e.GET("/connect", s.connectStart, s.requireUser)
	e.GET("/connect/callback", s.connectCallback, callback)
	e.GET("/tenant", s.tenantShow, s.requireUser)
	e.POST("/tenant/disconnect", s.tenantDisconnect, s.requireUser)

	// Operator console: mount here as
	//   g := e.Group("/console", s.requireUser, requireOperator)
	// (SessionUser.TenantID == OPERATOR_TENANT_ID and "Operator" in
	// SessionUser.AppRoles), pages rendered with s.render and the shared
	// layout, and add the console paths to returnPaths.

	// JSON API: mount here as e.Group("/api/v1", bearerAuth) with the
	// OpenAPI document at /api/v1/openapi.json. CSRF and sessions are
	// skipped for /api/ (see middleware.go).

	// Operations.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*", staticHandler())
}

// returnPaths are the only places a sign-in may return to: relative paths
// of known pages, never a URL from the request (no open redirects).
var returnPaths = map[string]bool{
	"/":        true,
	"/tenant":  true,
	"/connect": true,
}

// safeReturn returns p when it is a known page path, else /tenant.
func safeReturn(p string) string {
	if returnPaths[p] {
		return p
	}
	return "/tenant"
}
