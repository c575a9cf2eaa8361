package webapp

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// consoleDeliveryLimit is how many recent deliveries the page shows per
// endpoint.
const consoleDeliveryLimit = 10

// consoleWebhookNotices are the fixed messages after a webhook action,
// keyed by the Done of a consoleFlash without a tenant (post/redirect/get).
var consoleWebhookNotices = map[string]string{
	"replayed": "Replay queued: the endpoint receives that event and every later one again, each tenant's in order, under the same webhook-id.",
}

// consoleWebhooksView is the model of /console/webhooks.
type consoleWebhooksView struct {
	Layout
	Endpoints []consoleWebhookRow
}

// consoleWebhookRow is one endpoint with its recent deliveries.
type consoleWebhookRow struct {
	domain.WebhookEndpoint
	Types       string // in words
	State       string
	StateClass  string
	Deliveries  []consoleDeliveryRow
	DeliveryErr bool
}

// consoleDeliveryRow is one delivery with its figures in words.
type consoleDeliveryRow struct {
	domain.WebhookDelivery
	StatusClass string
	Latency     string
	Code        string
}

var deliveryClass = map[domain.DeliveryStatus]string{
	domain.DeliveryDelivered: "ok", domain.DeliveryPending: "pending", domain.DeliveryExpired: "off",
}

// consoleWebhookList shows every webhook endpoint and its recent deliveries.
func (s *Server) consoleWebhookList(c echo.Context) error {
	ctx := c.Request().Context()
	eps, err := s.store.WebhookEndpointList(ctx, false)
	if err != nil {
		return err
	}
	v := &consoleWebhooksView{Layout: Layout{Title: "Webhooks"}}
	if f, ok := s.sessions.Pop(ctx, keyFlash).(consoleFlash); ok && f.TenantID == "" {
		v.Notice = consoleWebhookNotices[f.Done]
	}
	for _, ep := range eps {
		row := consoleWebhookRow{WebhookEndpoint: ep, Types: "every event type", State: "enabled", StateClass: "ok"}
		if len(ep.EventTypes) > 0 {
			ts := make([]string, len(ep.EventTypes))
			for i, t := range ep.EventTypes {
				ts[i] = string(t)
			}
			row.Types = strings.Join(ts, ", ")
		}
		switch {
		case ep.Disabled:
			row.State, row.StateClass = "disabled", "bad"
		case ep.FailingSince != nil:
			row.State, row.StateClass = "failing", "warn"
		}
		ds, err := s.store.WebhookDeliveryList(ctx, ep.ID, consoleDeliveryLimit)
		if err != nil {
			return err
		}
		for _, d := range ds {
			dr := consoleDeliveryRow{WebhookDelivery: d, StatusClass: deliveryClass[d.Status]}
			if d.Status == domain.DeliveryPending && d.Attempts > 0 {
				dr.StatusClass = "bad"
			}
			if d.LastLatency != nil {
				dr.Latency = fmt.Sprintf("%d ms", d.LastLatency.Milliseconds())
			}
			if d.LastStatusCode != nil {
				dr.Code = fmt.Sprint(*d.LastStatusCode)
			}
			row.Deliveries = append(row.Deliveries, dr)
		}
		v.Endpoints = append(v.Endpoints, row)
	}
	return s.render(c, http.StatusOK, "console_webhooks", v)
}
