package webapp

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// operatorRole is the app role (ID token "roles") that opens the console.
const operatorRole = "Operator"

// consoleMessageView is the model of the console's one-message pages:
// refusals, a console that is not configured, bad cursors, conflicts.
type consoleMessageView struct {
	Layout
	Status  int
	Heading string
	// Message and Detail are fixed text chosen by the handler, or our own
	// domain error messages; never request text.
	Message string
	Detail  string
	// Why lists the reasons a signed-in user was refused.
	Why []string
	// SwitchAccount offers signing out to sign in as an operator.
	SwitchAccount bool
	BackURL       string
	BackText      string
}

// isOperator reports whether u may use the console: a user of the
// operator tenant whose ID token carried the Operator app role.
func (s *Server) isOperator(u SessionUser) bool {
	return s.cfg.OperatorTenantID != "" && strings.EqualFold(u.TenantID, s.cfg.OperatorTenantID) &&
		slices.Contains(u.AppRoles, operatorRole)
}

// requireOperator guards /console: 404 while OPERATOR_TENANT_ID is unset,
// sign-in for visitors, and a 403 page saying why for everyone else.
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.OperatorTenantID == "" {
			return s.render(c, http.StatusNotFound, "console_message", &consoleMessageView{
				Layout: Layout{Title: "Console not configured"}, Status: http.StatusNotFound,
				Heading: "The operator console is not configured",
				Message: "This server has no OPERATOR_TENANT_ID, so nobody may use the console. Set it to the ISV's own tenant ID and restart the server.",
				BackURL: "/", BackText: "Home",
			})
		}
		u, ok := s.currentUser(c)
		if !ok {
			if !isRead(c) {
				return domain.ErrUnauthorized
			}
			return c.Redirect(http.StatusSeeOther, "/signin?return=/console")
		}
		if s.isOperator(u) {
			return next(c)
		}
		v := &consoleMessageView{Layout: Layout{Title: "Not an operator"}, Status: http.StatusForbidden,
			Heading:       "You cannot use the operator console",
			Message:       "The console is only for the service's operators: users of the operator organization who hold the Operator app role.",
			SwitchAccount: true, BackURL: "/tenant", BackText: "Your organization"}
		if !strings.EqualFold(u.TenantID, s.cfg.OperatorTenantID) {
			v.Why = append(v.Why, "You signed in with an account of another organization (tenant "+u.TenantID+").")
		}
		if !slices.Contains(u.AppRoles, operatorRole) {
			v.Why = append(v.Why, "Your sign-in does not carry the Operator app role. An administrator of the operator organization can assign it under Enterprise applications, Users and groups; then sign in again.")
		}
		return s.render(c, http.StatusForbidden, "console_message", v)
	}
}
