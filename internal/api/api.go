// Package api is tenantsync's JSON API for the ISV's own product and
// operators (/api/v1): tenants, their synced directory copy, sync and
// disconnect actions, webhook endpoints, and the change feed
// (docs/events.md). Bearer OPERATOR_API_TOKEN; errors as RFC 9457 problem
// documents with stable type URIs; cursors opaque and tamper-evident; an
// OpenAPI 3.1 document at /api/v1/openapi.json. It sits above postgres,
// operator and webhook; webapp mounts it.
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
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/cursor"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/webhook"
)

// Config holds the API's collaborators.
type Config struct {
	// Token is OPERATOR_API_TOKEN; the API is not mounted when it is empty.
	Token   string
	Store   *postgres.Store
	Actions *operator.Actions
	Logger  *slog.Logger
	// WebhookAllowPrivate is WEBHOOK_ALLOW_PRIVATE: webhook endpoints may be
	// http and on any address (development and tests only).
	WebhookAllowPrivate bool
	// WebhookResolve looks up a webhook host's addresses; nil means DNS.
	WebhookResolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Now is the clock of secret rotation; nil means time.Now.
	Now func() time.Time
}

// API serves /api/v1.
type API struct {
	store    *postgres.Store
	actions  *operator.Actions
	log      *slog.Logger
	token    [32]byte
	cursors  cursor.Codec
	webhooks webhook.Policy
	now      func() time.Time
}

// Register mounts the API's routes on g (the /api/v1 group) and returns
// true. When no token is configured it returns false and mounts one answer,
// on every path and method, that the API is off and how to turn it on: a
// client (or a person with curl) learns what to do instead of guessing from
// a bare 404.
func Register(g *echo.Group, cfg Config) bool {
	if cfg.Token == "" {
		g.Any("", apiOff)
		g.Any("/*", apiOff)
		return false
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{
		store: cfg.Store, actions: cfg.Actions, log: cfg.Logger,
		token:    sha256.Sum256([]byte(cfg.Token)),
		cursors:  cursor.New("tenantsync api cursor", cfg.Token),
		webhooks: webhook.Policy{AllowPrivate: cfg.WebhookAllowPrivate, Resolve: cfg.WebhookResolve}, now: cfg.Now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	// The routes of /api/v1, in one place. Every GET answers HEAD too
	// (uptime monitors use it). Unknown routes and methods are left to the
	// router: its 404 and its 405 with Allow reach WriteError. Middleware is
	// per route: on a group, echo would add catch-all routes that turn
	// every 405 into a 404.
	auth := a.authenticate
	g.Match(getHead, "/openapi.json", openAPIDocument)
	g.Match(getHead, "/tenants", a.tenantList, auth)
	g.Match(getHead, "/tenants/:id", a.tenantShow, auth)
	g.Match(getHead, "/tenants/:id/users", a.userList, auth)
	g.Match(getHead, "/tenants/:id/groups", a.groupList, auth)
	g.POST("/tenants/:id/sync", a.tenantSync, auth)
	g.DELETE("/tenants/:id", a.tenantDelete, auth)
	g.POST("/webhook-endpoints", a.webhookCreate, auth)
	g.Match(getHead, "/webhook-endpoints", a.webhookList, auth)
	g.Match(getHead, "/webhook-endpoints/:id", a.webhookShow, auth)
	g.PATCH("/webhook-endpoints/:id", a.webhookUpdate, auth)
	g.DELETE("/webhook-endpoints/:id", a.webhookDelete, auth)
	g.POST("/webhook-endpoints/:id/rotate-secret", a.webhookRotate, auth)
	g.Match(getHead, "/webhook-endpoints/:id/deliveries", a.webhookDeliveries, auth)
	g.Match(getHead, "/events", a.eventList, auth)
	return true
}

// getHead are the methods of a read-only route.
var getHead = []string{http.MethodGet, http.MethodHead}

// BodyLimit is the most any API request body may hold: the largest, POST
// /tenants/{id}/sync, is a one-field JSON object.
const BodyLimit = 4 << 10

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

// apiOff answers every request while no OPERATOR_API_TOKEN is configured.
func apiOff(c echo.Context) error {
	return writeProblem(c, problem{Type: typeAPIOff, Title: "The API is off", Status: http.StatusNotFound,
		Detail: "This server has no OPERATOR_API_TOKEN, so it serves no /api/v1. Set OPERATOR_API_TOKEN " +
			"(at least 16 characters) in the server's environment and restart it, then send Authorization: Bearer <token>. " +
			"make run generates one into .run/operator-api-token."})
}

// Problem type URIs; stable, documented in the OpenAPI document.
const (
	typeAPIOff           = "urn:tenantsync:problem:api-off"
	typeInvalid          = "urn:tenantsync:problem:invalid-request"
	typeUnauthorized     = "urn:tenantsync:problem:unauthorized"
	typeForbidden        = "urn:tenantsync:problem:forbidden"
	typeNotFound         = "urn:tenantsync:problem:not-found"
	typeMethodNotAllowed = "urn:tenantsync:problem:method-not-allowed"
	typeConflict         = "urn:tenantsync:problem:conflict"
	typeGone             = "urn:tenantsync:problem:events-gone"
	typeTooLarge         = "urn:tenantsync:problem:too-large"
	typeUnsupportedMedia = "urn:tenantsync:problem:unsupported-media-type"
	typeTimeout          = "urn:tenantsync:problem:timeout"
	typeInternal         = "urn:tenantsync:problem:internal"
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

// errorKinds is the API's one mapping from errors to problems: by domain
// kind for the handlers' errors, by status for the router's and the
// middleware's (*echo.HTTPError, *http.MaxBytesError).
var errorKinds = []struct {
	kind  error // nil: matched by status only
	code  int
	typ   string
	title string
}{
	{domain.ErrInvalid, http.StatusBadRequest, typeInvalid, "Invalid request"},
	{domain.ErrUnauthorized, http.StatusUnauthorized, typeUnauthorized, "Unauthorized"},
	{domain.ErrForbidden, http.StatusForbidden, typeForbidden, "Forbidden"},
	{domain.ErrNotFound, http.StatusNotFound, typeNotFound, "Not found"},
	{nil, http.StatusMethodNotAllowed, typeMethodNotAllowed, "Method not allowed"},
	{domain.ErrConflict, http.StatusConflict, typeConflict, "Conflict"},
	{domain.ErrGone, http.StatusGone, typeGone, "Events deleted by retention"},
	{nil, http.StatusRequestEntityTooLarge, typeTooLarge, "Request body too large"},
	{nil, http.StatusUnsupportedMediaType, typeUnsupportedMedia, "Unsupported media type"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, typeTimeout, "Timed out"},
}

// StatusOf is the HTTP status of err's domain kind: the one mapping from
// error kinds to statuses, which the pages use as well; anything else is
// 500.
func StatusOf(err error) int {
	return problemOf(err).Status
}

// fail turns a handler's error into a problem response, logging only the
// unexpected ones (5xx) once, here.
func (a *API) fail(c echo.Context, err error) error {
	if p := problemOf(err); p.Status >= 500 {
		a.log.ErrorContext(c.Request().Context(), "api request failed", "path", c.Path(), "err", err)
	}
	WriteError(c, err)
	return nil
}

// WriteError answers err as a problem document and returns its status. The
// server's error handler calls it for what escapes the API's handlers under
// /api/v1: the router's 404 and 405, a body over the limit, a timeout, a
// recovered panic. Logging is the caller's.
func WriteError(c echo.Context, err error) int {
	p := problemOf(err)
	_ = writeProblem(c, p) // the client went away; nothing left to tell it
	return p.Status
}

// problemOf finds err's problem; anything unknown is a detail-less 500.
func problemOf(err error) problem {
	var p problem
	if errors.As(err, &p) {
		return p
	}
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	code, detail := 0, ""
	switch {
	case errors.As(err, &he):
		code = he.Code
		if msg, ok := he.Message.(string); ok && he.Code < 500 && msg != http.StatusText(he.Code) {
			detail = msg
		}
	case errors.As(err, &mbe):
		code, detail = http.StatusRequestEntityTooLarge, fmt.Sprintf("the body may hold at most %d bytes", mbe.Limit)
	}
	for _, k := range errorKinds {
		if code != 0 && k.code == code || code == 0 && k.kind != nil && errors.Is(err, k.kind) {
			p = problem{Type: k.typ, Title: k.title, Status: k.code, Detail: detail}
			if code == 0 && k.code < 500 {
				p.Detail = domain.Message(err)
			}
			return p
		}
	}
	if code >= 400 && code < 500 {
		// A client error without a type of its own: RFC 9457's about:blank.
		return problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: detail}
	}
	return problem{Type: typeInternal, Title: "Internal error", Status: http.StatusInternalServerError}
}

func writeProblem(c echo.Context, p problem) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return c.Blob(p.Status, "application/problem+json", b)
}
