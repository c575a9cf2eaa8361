// Package api is tenantsync's JSON API for the ISV's own product and
// operators (/api/v1): tenants, their synced directory copy, sync and
// disconnect actions. Bearer OPERATOR_API_TOKEN; errors as RFC 9457 problem
// documents with stable type URIs; cursors opaque and tamper-evident; an
// OpenAPI 3.1 document at /api/v1/openapi.json. It sits above postgres and
// operator; webapp mounts it.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// Config holds the API's collaborators.
type Config struct {
	// Token is OPERATOR_API_TOKEN; the API is not mounted when it is empty.
	Token   string
	Store   *postgres.Store
	Actions *operator.Actions
	Logger  *slog.Logger
}

// API serves /api/v1.
type API struct {
	store   *postgres.Store
	actions *operator.Actions
	log     *slog.Logger
	token   [32]byte
	cursors cursorCodec
}

// Register mounts the API's routes on g (the /api/v1 group) and returns
// false, mounting nothing, when no token is configured.
func Register(g *echo.Group, cfg Config) bool {
	if cfg.Token == "" {
		return false
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{
		store: cfg.Store, actions: cfg.Actions, log: cfg.Logger,
		token:   sha256.Sum256([]byte(cfg.Token)),
		cursors: newCursorCodec(cfg.Token),
	}
	// The routes of /api/v1, in one place.
	g.GET("/openapi.json", openAPIDocument)
	auth := g.Group("", a.authenticate)
	auth.GET("/tenants", a.tenantList)
	auth.GET("/tenants/:id", a.tenantShow)
	auth.GET("/tenants/:id/users", a.userList)
	auth.GET("/tenants/:id/groups", a.groupList)
	auth.POST("/tenants/:id/sync", a.tenantSync)
	auth.DELETE("/tenants/:id", a.tenantDelete)
	g.Any("/*", func(echo.Context) error { return errNotFound("no such API route") })
	return true
}

// authenticate compares the bearer token in constant time (of digests, so
// the length leaks nothing) and answers 401 without detail otherwise.
func (a *API) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		tok, ok := strings.CutPrefix(h, "Bearer ")
		sum := sha256.Sum256([]byte(tok))
		if !ok || tok == "" || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="tenantsync"`)
			return writeProblem(c, problem{Type: typeUnauthorized, Title: "Unauthorized", Status: http.StatusUnauthorized})
		}
		return next(c)
	}
}

// Problem type URIs; stable, documented in the OpenAPI document.
const (
	typeInvalid      = "urn:tenantsync:problem:invalid-request"
	typeUnauthorized = "urn:tenantsync:problem:unauthorized"
	typeNotFound     = "urn:tenantsync:problem:not-found"
	typeConflict     = "urn:tenantsync:problem:conflict"
	typeTimeout      = "urn:tenantsync:problem:timeout"
	typeInternal     = "urn:tenantsync:problem:internal"
)

// problem is an RFC 9457 problem document.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (p problem) Error() string { return p.Title + ": " + p.Detail }

func errInvalid(format string, args ...any) error {
	return problem{Type: typeInvalid, Title: "Invalid request", Status: http.StatusBadRequest, Detail: fmt.Sprintf(format, args...)}
}

func errNotFound(detail string) error {
	return problem{Type: typeNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: detail}
}

// errorKinds maps domain error kinds to problems, in one table.
var errorKinds = []struct {
	kind  error
	typ   string
	title string
	code  int
}{
	{domain.ErrInvalid, typeInvalid, "Invalid request", http.StatusBadRequest},
	{domain.ErrNotFound, typeNotFound, "Not found", http.StatusNotFound},
	{domain.ErrConflict, typeConflict, "Conflict", http.StatusConflict},
	{context.DeadlineExceeded, typeTimeout, "Timed out", http.StatusServiceUnavailable},
}

// fail turns any error into a problem response, logging only the
// unexpected ones (5xx) once, here.
func (a *API) fail(c echo.Context, err error) error {
	var p problem
	if errors.As(err, &p) {
		return writeProblem(c, p)
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.kind) {
			p = problem{Type: k.typ, Title: k.title, Status: k.code}
			if k.code < 500 {
				p.Detail = kindDetail(err, k.kind)
			}
			if k.code >= 500 {
				a.log.ErrorContext(c.Request().Context(), "api request failed", "path", c.Path(), "err", err)
			}
			return writeProblem(c, p)
		}
	}
	a.log.ErrorContext(c.Request().Context(), "api request failed", "path", c.Path(), "err", err)
	return writeProblem(c, problem{Type: typeInternal, Title: "Internal error", Status: http.StatusInternalServerError})
}

// kindDetail is the part of a domain error meant for people: what follows
// the kind in "invalid: limit must be …", or the whole message otherwise.
func kindDetail(err, kind error) string {
	msg := err.Error()
	if i := strings.Index(msg, kind.Error()+": "); i >= 0 {
		return msg[i+len(kind.Error())+2:]
	}
	return msg
}

func writeProblem(c echo.Context, p problem) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return c.Blob(p.Status, "application/problem+json", b)
}
