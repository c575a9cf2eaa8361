package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/webhook"
)

// SecretOverlap is how long a rotated-out secret keeps signing deliveries
// beside the new one, so receivers can switch without losing any.
const SecretOverlap = 24 * time.Hour

// webhookEndpointJSON is an endpoint as the API shows it: never its secret.
type webhookEndpointJSON struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	EventTypes              []string   `json:"event_types"`
	Description             string     `json:"description"`
	Disabled                bool       `json:"disabled"`
	DisabledReason          string     `json:"disabled_reason"`
	FailingSince            *time.Time `json:"failing_since"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

func toWebhookEndpointJSON(e domain.WebhookEndpoint, now time.Time) webhookEndpointJSON {
	out := webhookEndpointJSON{
		ID: e.ID, URL: e.URL, EventTypes: make([]string, len(e.EventTypes)), Description: e.Description,
		Disabled: e.Disabled, DisabledReason: e.DisabledReason, FailingSince: e.FailingSince,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
	for i, t := range e.EventTypes {
		out.EventTypes[i] = string(t)
	}
	if x := e.PreviousSecretExpiresAt; x != nil && now.Before(*x) {
		out.PreviousSecretExpiresAt = x
	}
	return out
}

// webhookSecretJSON answers a create or a rotation: the only time the
// secret is shown.
type webhookSecretJSON struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// webhookDeliveryJSON is one delivery in an endpoint's history.
type webhookDeliveryJSON struct {
	ID             int64      `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	TenantID       string     `json:"tenant_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      string     `json:"last_error"`
	LastLatencyMS  *int64     `json:"last_latency_ms"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// webhookCreateRequest is the body of POST /webhook-endpoints.
type webhookCreateRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
}

// webhookPatchRequest is the body of PATCH /webhook-endpoints/{id}; absent
// fields stay as they are.
type webhookPatchRequest struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"event_types"`
	Description *string   `json:"description"`
	Disabled    *bool     `json:"disabled"`
}

func (a *API) webhookURL(c echo.Context, raw string) error {
	err := a.webhooks.Check(c.Request().Context(), raw)
	var bad *webhook.InvalidURLError
	if errors.As(err, &bad) {
		return errInvalid("%s", bad.Reason)
	}
	return err
}

func eventTypes(in []string) ([]domain.EventType, error) {
	out := make([]domain.EventType, 0, len(in))
	for _, s := range in {
		t := domain.EventType(s)
		if !t.Valid() {
			return nil, errInvalid("unknown event type %q", s)
		}
		if !contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

const maxDescription = 500

// webhookID is the path's endpoint ID; anything but a GUID names no
// endpoint.
func webhookID(c echo.Context) (string, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return "", fmt.Errorf("webhook endpoint %q: %w", c.Param("id"), domain.ErrNotFound)
	}
	return id.String(), nil
}

func (a *API) webhookCreate(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	var body webhookCreateRequest
	if err := decodeBody(c, &body); err != nil {
		return a.fail(c, err)
	}
	if body.URL == "" {
		return a.fail(c, errInvalid("url is required"))
	}
	if len(body.Description) > maxDescription {
		return a.fail(c, errInvalid("description may be at most %d bytes", maxDescription))
	}
	types, err := eventTypes(body.EventTypes)
	if err != nil {
		return a.fail(c, err)
	}
	if err := a.webhookURL(c, body.URL); err != nil {
		return a.fail(c, err)
	}
	e, err := a.store.WebhookEndpointCreate(c.Request().Context(), domain.WebhookEndpoint{
		URL: body.URL, EventTypes: types, Description: body.Description, Secret: webhook.NewSecret(),
	})
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusCreated, webhookSecretJSON{ID: e.ID, Secret: e.Secret})
}

func (a *API) webhookList(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	es, err := a.store.WebhookEndpointList(c.Request().Context(), false)
	if err != nil {
		return a.fail(c, err)
	}
	out := struct {
		Items []webhookEndpointJSON `json:"items"`
	}{Items: make([]webhookEndpointJSON, 0, len(es))}
	for _, e := range es {
		out.Items = append(out.Items, toWebhookEndpointJSON(e, a.now()))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) webhookShow(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	id, err := webhookID(c)
	if err != nil {
		return a.fail(c, err)
	}
	e, err := a.store.WebhookEndpointGet(c.Request().Context(), id)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, toWebhookEndpointJSON(e, a.now()))
}

func (a *API) webhookUpdate(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	id, err := webhookID(c)
	if err != nil {
		return a.fail(c, err)
	}
	var body webhookPatchRequest
	if err := decodeBody(c, &body); err != nil {
		return a.fail(c, err)
	}
	var p postgres.WebhookEndpointPatch
	if body.URL != nil {
		if err := a.webhookURL(c, *body.URL); err != nil {
			return a.fail(c, err)
		}
		p.URL = body.URL
	}
	if body.EventTypes != nil {
		types, err := eventTypes(*body.EventTypes)
		if err != nil {
			return a.fail(c, err)
		}
		p.EventTypes = &types
	}
	if body.Description != nil {
		if len(*body.Description) > maxDescription {
			return a.fail(c, errInvalid("description may be at most %d bytes", maxDescription))
		}
		p.Description = body.Description
	}
	p.Disabled = body.Disabled
	e, err := a.store.WebhookEndpointUpdate(c.Request().Context(), id, p)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, toWebhookEndpointJSON(e, a.now()))
}

func (a *API) webhookDelete(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	id, err := webhookID(c)
	if err != nil {
		return a.fail(c, err)
	}
	if err := a.store.WebhookEndpointDelete(c.Request().Context(), id); err != nil {
		return a.fail(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) webhookRotate(c echo.Context) error {
	if err := onlyParams(c); err != nil {
		return a.fail(c, err)
	}
	id, err := webhookID(c)
	if err != nil {
		return a.fail(c, err)
	}
	secret := webhook.NewSecret()
	if err := a.store.WebhookEndpointRotate(c.Request().Context(), id, secret, a.now().Add(SecretOverlap)); err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, webhookSecretJSON{ID: id, Secret: secret})
}

func (a *API) webhookDeliveries(c echo.Context) error {
	if err := onlyParams(c, "limit"); err != nil {
		return a.fail(c, err)
	}
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		return a.fail(c, err)
	}
	id, err := webhookID(c)
	if err != nil {
		return a.fail(c, err)
	}
	ctx := c.Request().Context()
	if _, err := a.store.WebhookEndpointGet(ctx, id); err != nil {
		return a.fail(c, err)
	}
	ds, err := a.store.WebhookDeliveryList(ctx, id, limit)
	if err != nil {
		return a.fail(c, err)
	}
	out := struct {
		Items []webhookDeliveryJSON `json:"items"`
	}{Items: make([]webhookDeliveryJSON, 0, len(ds))}
	for _, d := range ds {
		j := webhookDeliveryJSON{
			ID: d.ID, EventID: d.EventID, EventType: string(d.EventType), TenantID: d.TenantID, Status: string(d.Status),
			Attempts: d.Attempts, LastAttemptAt: d.LastAttemptAt, LastStatusCode: d.LastStatusCode,
			LastError: d.LastError, DeliveredAt: d.DeliveredAt, CreatedAt: d.CreatedAt,
		}
		if d.Status == domain.DeliveryPending {
			next := d.NextAttemptAt
			j.NextAttemptAt = &next
		}
		if d.LastLatency != nil {
			ms := d.LastLatency.Milliseconds()
			j.LastLatencyMS = &ms
		}
		out.Items = append(out.Items, j)
	}
	return c.JSON(http.StatusOK, out)
}
