package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/operator"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// tenantJSON is a tenant as the API shows it.
type tenantJSON struct {
	ID              string     `json:"id"`
	Status          string     `json:"status"`
	StatusReason    string     `json:"status_reason"`
	StatusChangedAt time.Time  `json:"status_changed_at"`
	DisplayName     string     `json:"display_name"`
	Domains         []string   `json:"domains"`
	ConsentedAt     *time.Time `json:"consented_at"`
	ConsentedBy     string     `json:"consented_by"`
	GrantedRoles    []string   `json:"granted_roles"`
	LastSyncedAt    *time.Time `json:"last_synced_at"`
	NextSyncAt      *time.Time `json:"next_sync_at"`
	FailureCount    int        `json:"failure_count"`
	SyncSuspended   bool       `json:"sync_suspended"`
	UserCount       int        `json:"user_count"`
	GroupCount      int        `json:"group_count"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	// ChangeNotifications says whether the tenant is near-real-time.
	ChangeNotifications changeNotificationsJSON `json:"change_notifications"`
}

// changeNotificationsJSON is whether a tenant is near-real-time, subscribed
// to Graph change notifications (issue 17), or on periodic sync, and why.
type changeNotificationsJSON struct {
	State              string     `json:"state"`
	Reason             string     `json:"reason"`
	Since              *time.Time `json:"since"`
	LastNotificationAt *time.Time `json:"last_notification_at"`
}

func toChangeNotificationsJSON(n postgres.NotificationStatus) changeNotificationsJSON {
	if n.State == "" { // not asked for: a tenant the store knows nothing of
		n.State, n.Reason = domain.NotificationsPeriodic, postgres.NotificationReasonOff
	}
	return changeNotificationsJSON{State: string(n.State), Reason: n.Reason, Since: n.Since, LastNotificationAt: n.LastNotificationAt}
}

func toTenantJSON(t domain.Tenant, n postgres.NotificationStatus) tenantJSON {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return tenantJSON{
		ID: t.ID, Status: string(t.Status), StatusReason: t.StatusReason, StatusChangedAt: t.StatusChangedAt,
		DisplayName: t.DisplayName, Domains: nonNil(t.Domains), ConsentedAt: t.ConsentedAt, ConsentedBy: t.ConsentedBy,
		GrantedRoles: nonNil(t.GrantedRoles), LastSyncedAt: t.LastSyncedAt, NextSyncAt: t.NextSyncAt,
		FailureCount: t.FailureCount, SyncSuspended: t.SyncSuspended, UserCount: t.UserCount, GroupCount: t.GroupCount,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, ChangeNotifications: toChangeNotificationsJSON(n),
	}
}

// page is one page of a listing.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// onlyParams refuses query parameters the route does not know, so a typo
// is an error rather than a silently ignored filter.
func onlyParams(c echo.Context, known ...string) error {
	for k := range c.QueryParams() {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return errInvalid("unknown query parameter %q; this route takes %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

func limitParam(c echo.Context, def, max int) (int, error) {
	s := c.QueryParam("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errInvalid("limit must be a whole number from 1 to %d", max)
	}
	return n, nil
}

func (a *API) tenantList(c echo.Context) error {
	if err := onlyParams(c, "q", "status", "sort", "limit", "cursor"); err != nil {
		return a.fail(c, err)
	}
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		return a.fail(c, err)
	}
	f := postgres.TenantFilter{
		Query: c.QueryParam("q"), Status: domain.TenantStatus(c.QueryParam("status")),
		Sort: postgres.TenantSort(c.QueryParam("sort")), Limit: limit,
	}
	if f.Sort == "" {
		f.Sort = postgres.SortCreated
	}
	// A cursor continues the listing it came from: same query, status and order.
	listing := "tenants\x00" + f.Query + "\x00" + string(f.Status) + "\x00" + string(f.Sort)
	if cur := c.QueryParam("cursor"); cur != "" {
		var after postgres.TenantCursor
		if err := a.cursors.Decode(listing, cur, &after); err != nil {
			return a.fail(c, errInvalid("the cursor is not one this API issued for this listing"))
		}
		f.After = &after
	}
	p, err := a.store.TenantList(c.Request().Context(), f)
	if err != nil {
		return a.fail(c, err)
	}
	ids := make([]string, len(p.Tenants))
	for i, t := range p.Tenants {
		ids[i] = t.ID
	}
	notes, err := a.store.TenantNotifications(c.Request().Context(), ids)
	if err != nil {
		return a.fail(c, err)
	}
	out := page[tenantJSON]{Items: make([]tenantJSON, 0, len(p.Tenants))}
	for _, t := range p.Tenants {
		out.Items = append(out.Items, toTenantJSON(t, notes[t.ID]))
	}
	if p.Next != nil {
		s := a.cursors.Encode(listing, p.Next)
		out.NextCursor = &s
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) tenantShow(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	t, err := a.store.TenantGet(c.Request().Context(), c.Param("id"))
	if err != nil {
		return a.fail(c, err)
	}
	n, err := a.store.TenantNotificationsOne(c.Request().Context(), t.ID)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, toTenantJSON(t, n))
}

// syncRequest is the optional body of POST /tenants/{id}/sync.
type syncRequest struct {
	Full bool `json:"full"`
}

func (a *API) tenantSync(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	var body syncRequest
	if err := decodeBody(c, &body); err != nil {
		return a.fail(c, err)
	}
	res, err := a.actions.RequestSync(c.Request().Context(), c.Param("id"), body.Full, "api")
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusAccepted, res)
}

func (a *API) tenantDelete(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	if err := a.actions.Disconnect(c.Request().Context(), c.Param("id"), "api", operator.ReasonOperatorDisconnect); err != nil {
		return a.fail(c, err)
	}
	return c.NoContent(http.StatusAccepted)
}

// decodeBody reads an optional JSON object, refusing unknown fields and
// trailing data. An empty body leaves v as it is.
func decodeBody(c echo.Context, v any) error {
	r := c.Request()
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return problem{Type: typeUnsupportedMedia, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType, Detail: "the body must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.As(err, &mbe):
			return err // a 413, not a JSON mistake
		}
		return errInvalid("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errInvalid("body: one JSON object expected")
	}
	return nil
}
