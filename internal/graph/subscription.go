package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Subscription is a Graph change notification subscription as Graph
// reports it (protocol §7). Graph never returns the clientState.
type Subscription struct {
	ID                       string
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ExpiresAt                time.Time
}

// NewSubscription is what CreateSubscription asks Graph for.
type NewSubscription struct {
	Resource                 string // users or groups
	ChangeType               string // e.g. "updated,deleted"
	NotificationURL          string
	LifecycleNotificationURL string
	ExpiresAt                time.Time
	// ClientState is the secret Graph echoes in every notification: at
	// most 128 characters, never logged.
	ClientState string
}

type subscriptionJSON struct {
	ID                       string `json:"id"`
	Resource                 string `json:"resource"`
	ChangeType               string `json:"changeType"`
	NotificationURL          string `json:"notificationUrl"`
	LifecycleNotificationURL string `json:"lifecycleNotificationUrl,omitempty"`
	ExpirationDateTime       string `json:"expirationDateTime"`
	ClientState              string `json:"clientState,omitempty"`
}

// maxSubscriptionBody bounds a subscription answer; a list page of 100
// subscriptions is far smaller.
const maxSubscriptionBody = 1 << 20

// CreateSubscription creates a subscription for the tenant and returns it
// with the expiration Graph granted. Graph validates both URLs before it
// answers (protocol §7); a failed validation is FaultValidationFailed, a
// quota FaultQuotaExceeded, a missing permission FaultInsufficientPermissions.
func (c *Client) CreateSubscription(ctx context.Context, tenantID string, s NewSubscription) (Subscription, error) {
	if len(s.ClientState) == 0 || len(s.ClientState) > 128 {
		return Subscription{}, errors.New("subscription clientState must be 1 to 128 characters")
	}
	body, err := json.Marshal(subscriptionJSON{
		Resource: s.Resource, ChangeType: s.ChangeType, NotificationURL: s.NotificationURL,
		LifecycleNotificationURL: s.LifecycleNotificationURL, ExpirationDateTime: formatTime(s.ExpiresAt),
		ClientState: s.ClientState,
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("encode subscription: %w", err)
	}
	var out Subscription
	err = c.write(ctx, tenantID, http.MethodPost, c.base+"/subscriptions", body, func(r io.Reader) error {
		var derr error
		out, derr = decodeSubscription(r)
		return derr
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("create %s subscription for tenant %s: %w", s.Resource, tenantID, err)
	}
	return out, nil
}

// RenewSubscription moves the subscription's expiration to until and
// returns the expiration Graph granted. A subscription Graph no longer
// knows is FaultVanished.
func (c *Client) RenewSubscription(ctx context.Context, tenantID, id string, until time.Time) (time.Time, error) {
	body, err := json.Marshal(map[string]string{"expirationDateTime": formatTime(until)})
	if err != nil {
		return time.Time{}, fmt.Errorf("encode renewal: %w", err)
	}
	granted := until
	err = c.write(ctx, tenantID, http.MethodPatch, c.subscriptionURL(id), body, func(r io.Reader) error {
		s, derr := decodeSubscription(r)
		if derr == nil {
			granted = s.ExpiresAt
		}
		return derr
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("renew subscription %s of tenant %s: %w", id, tenantID, err)
	}
	return granted, nil
}

// ReauthorizeSubscription answers a reauthorizationRequired lifecycle
// notification (protocol §7).
func (c *Client) ReauthorizeSubscription(ctx context.Context, tenantID, id string) error {
	if err := c.write(ctx, tenantID, http.MethodPost, c.subscriptionURL(id)+"/reauthorize", nil, nil); err != nil {
		return fmt.Errorf("reauthorize subscription %s of tenant %s: %w", id, tenantID, err)
	}
	return nil
}

// DeleteSubscription deletes the subscription; one Graph no longer knows
// is FaultVanished.
func (c *Client) DeleteSubscription(ctx context.Context, tenantID, id string) error {
	if err := c.write(ctx, tenantID, http.MethodDelete, c.subscriptionURL(id), nil, nil); err != nil {
		return fmt.Errorf("delete subscription %s of tenant %s: %w", id, tenantID, err)
	}
	return nil
}

// maxSubscriptionPages bounds a listing: at 100 per tenant and app
// (protocol §7) a few pages are already more than Graph keeps.
const maxSubscriptionPages = 20

// Subscriptions lists the app's subscriptions in the tenant, following
// nextLinks on the configured host only.
func (c *Client) Subscriptions(ctx context.Context, tenantID string) ([]Subscription, error) {
	var out []Subscription
	link := c.base + "/subscriptions"
	for range maxSubscriptionPages {
		var next string
		var st domain.RequestStats
		err := c.send(ctx, tenantID, http.MethodGet, link, nil, &st, func(r io.Reader) error {
			page, n, derr := decodeSubscriptionList(r)
			out = append(out, page...)
			next = n
			return derr
		})
		if err != nil {
			return nil, fmt.Errorf("list subscriptions of tenant %s: %w", tenantID, fault(err))
		}
		if next == "" {
			return out, nil
		}
		link = next
	}
	return nil, fmt.Errorf("list subscriptions of tenant %s: more than %d pages", tenantID, maxSubscriptionPages)
}

func (c *Client) subscriptionURL(id string) string {
	return c.base + "/subscriptions/" + url.PathEscape(id)
}

// write sends one subscription write; send gives its failure the
// subscription vocabulary.
func (c *Client) write(ctx context.Context, tenantID, method, link string, body []byte, decode func(io.Reader) error) error {
	var st domain.RequestStats
	return fault(c.send(ctx, tenantID, method, link, body, &st, decode))
}

// subscriptionKind refines Graph's answer to a subscription call
// (protocol §7): 404 is a subscription that vanished; 403 is a quota when
// the message names the limit (Graph gives quota failures no code of their
// own) and a missing permission otherwise (Authorization_RequestDenied);
// 400 naming validation is a notification or lifecycle URL that did not
// answer Graph's handshake.
func subscriptionKind(e *Error) {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Status == http.StatusNotFound:
		e.Kind = ErrVanished
	case e.Status == http.StatusForbidden && !strings.EqualFold(e.Code, "Authorization_RequestDenied") &&
		(strings.Contains(msg, "limit") || strings.Contains(msg, "quota") || strings.Contains(msg, "maximum")):
		e.Kind = ErrQuotaExceeded
	case e.Status == http.StatusBadRequest && (strings.EqualFold(e.Code, "ValidationError") || strings.Contains(msg, "validation")):
		e.Kind = ErrValidationFailed
	}
}

// decodeSubscription reads one subscription: it must have an id and a
// valid expirationDateTime.
func decodeSubscription(r io.Reader) (Subscription, error) {
	var j subscriptionJSON
	if err := json.NewDecoder(io.LimitReader(r, maxSubscriptionBody)).Decode(&j); err != nil {
		return Subscription{}, fmt.Errorf("subscription: %w", err)
	}
	return j.subscription()
}

// decodeSubscriptionList reads one page of GET /subscriptions.
func decodeSubscriptionList(r io.Reader) ([]Subscription, string, error) {
	var page struct {
		Value    []subscriptionJSON `json:"value"`
		NextLink string             `json:"@odata.nextLink"`
	}
	if err := json.NewDecoder(io.LimitReader(r, maxSubscriptionBody)).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("subscription list: %w", err)
	}
	out := make([]Subscription, 0, len(page.Value))
	for _, j := range page.Value {
		s, err := j.subscription()
		if err != nil {
			return nil, "", err
		}
		out = append(out, s)
	}
	return out, page.NextLink, nil
}

func (j subscriptionJSON) subscription() (Subscription, error) {
	if j.ID == "" || len(j.ID) > 256 {
		return Subscription{}, errors.New("subscription without a valid id")
	}
	exp, err := time.Parse(time.RFC3339Nano, j.ExpirationDateTime)
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription %s: expirationDateTime is no RFC 3339 time", j.ID)
	}
	return Subscription{ID: j.ID, Resource: j.Resource, ChangeType: j.ChangeType, NotificationURL: j.NotificationURL,
		LifecycleNotificationURL: j.LifecycleNotificationURL, ExpiresAt: exp.UTC()}, nil
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }
