// Package graph is a thin Microsoft Graph client for directory sync:
// users/delta and groups/delta with a fixed $select, organization, paging,
// throttling and Graph's error codes. Pages are decoded as a stream into
// reused buffers, so memory does not grow with a tenant's size. It imports
// domain only; tokens come through the small TokenSource interface.
package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/retry"
)

// TokenSource gives app-only tokens per tenant (entra.TokenSource).
// Invalidate drops the tenant's cached token, so that the next AccessToken
// is freshly issued; the client calls it on every authorization failure.
type TokenSource interface {
	AccessToken(ctx context.Context, tenantID string) (string, error)
	Invalidate(tenantID string)
}

// Gate keeps each tenant's throttle window where every job and worker
// process sees it (postgres.Store). Graph throttles per app and tenant
// (protocol §5.7), so a Retry-After told to one request holds for all of them.
type Gate interface {
	// TenantThrottledUntil returns the end of the tenant's window; the zero
	// time means none.
	TenantThrottledUntil(ctx context.Context, tenantID string) (time.Time, error)
	// TenantThrottle records a window ending at until; a later window
	// already recorded is kept.
	TenantThrottle(ctx context.Context, tenantID string, until time.Time) error
}

// Config configures a Client.
type Config struct {
	// BaseURL is GRAPH_BASE_URL, scheme and host only, e.g. https://graph.microsoft.com.
	BaseURL string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Tokens authorizes requests.
	Tokens TokenSource
	// Gate, if set, holds every tenant's throttle window: no request for a
	// tenant is sent before its window ends, and every Retry-After received
	// (429 or 503) is recorded there. nil keeps windows per request only.
	Gate Gate
	// Now is the clock that throttle windows are measured by; nil means
	// time.Now.
	Now func() time.Time
	// MaxWait is the longest Retry-After waited in process; a longer one is
	// returned as a *Error with RetryAfter so the job can snooze. 0 means 5s.
	MaxWait time.Duration
	// MaxRetries bounds retries of one request after throttling, 5xx or a
	// dropped connection. 0 means 6.
	MaxRetries int
	// Sleep waits d or until ctx ends; nil means a timer (tests may count).
	Sleep func(ctx context.Context, d time.Duration) error
	// Observe, if set, is told of every request: a fixed endpoint name
	// (users_delta, groups_delta, organization), the HTTP status (0 when no
	// response came) and the time it took. Metrics hang here.
	Observe func(endpoint string, status int, d time.Duration)
	// Throttled, if set, is told of every wait for Retry-After done in process.
	Throttled func(wait time.Duration)
}

// Client calls Microsoft Graph v1.0 as the app, per tenant.
type Client struct {
	scheme, host string
	base         string // scheme://host/v1.0
	hc           *http.Client
	tokens       TokenSource
	gate         Gate
	now          func() time.Time
	maxWait      time.Duration
	maxRetries   int
	sleep        func(ctx context.Context, d time.Duration) error
	observe      func(endpoint string, status int, d time.Duration)
	throttled    func(wait time.Duration)
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || u.Host == "" || u.Scheme != "https" {
		return nil, fmt.Errorf("graph base URL must be an https URL with a host")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("graph client needs a token source")
	}
	c := &Client{
		scheme: u.Scheme, host: strings.ToLower(u.Host), hc: cfg.HTTPClient, tokens: cfg.Tokens,
		gate: cfg.Gate, now: cfg.Now, maxWait: cfg.MaxWait, maxRetries: cfg.MaxRetries, sleep: cfg.Sleep,
		observe: cfg.Observe, throttled: cfg.Throttled,
	}
	if c.observe == nil {
		c.observe = func(string, int, time.Duration) {}
	}
	if c.throttled == nil {
		c.throttled = func(time.Duration) {}
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.base = c.scheme + "://" + u.Host + "/v1.0"
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.maxWait <= 0 {
		c.maxWait = 5 * time.Second
	}
	if c.maxRetries <= 0 {
		c.maxRetries = 6
	}
	if c.sleep == nil {
		c.sleep = retry.Sleep
	}
	return c, nil
}

// sameOrigin reports whether link is on the configured Graph host: a
// nextLink or deltaLink anywhere else is refused, so the token is never sent
// to another host.
func (c *Client) sameOrigin(link string) bool {
	u, err := url.Parse(link)
	return err == nil && strings.EqualFold(u.Scheme, c.scheme) && strings.EqualFold(u.Host, c.host) && u.User == nil
}

// get sends GET link with the tenant's token and hands a 200 response body
// to decode. It waits out the tenant's throttle window first (see
// awaitWindow), retries throttling (429/503/504 with Retry-After up to
// MaxWait), 5xx and dropped connections a bounded number of times, refreshes
// the token once on 401 InvalidAuthenticationToken, drops the cached token
// on every other authorization failure, and maps every other failure to
// *Error.
func (c *Client) get(ctx context.Context, tenantID, link string, st *domain.RequestStats, decode func(io.Reader) error) error {
	return fault(c.send(ctx, tenantID, http.MethodGet, link, nil, st, decode))
}

// send is get for any method, with an optional JSON body, before its errors
// are given the domain's vocabulary. Any 2xx answer is a success; decode,
// if set, reads its body. Writes are repeated like reads: a POST repeated
// after a lost answer may leave a duplicate at Graph, which the
// subscription job's orphan cleanup deletes.
func (c *Client) send(ctx context.Context, tenantID, method, link string, body []byte, st *domain.RequestStats, decode func(io.Reader) error) error {
	if !c.sameOrigin(link) {
		return &Error{Kind: ErrForeignLink, Status: 0, Code: "foreignLink", Message: "link does not point at GRAPH_BASE_URL"}
	}
	refreshed := false
	backoff := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if err := c.awaitWindow(ctx, tenantID, st); err != nil {
			return err
		}
		tok, err := c.tokens.AccessToken(ctx, tenantID)
		if err != nil {
			return err
		}
		var rb io.Reader
		if body != nil {
			rb = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, link, rb)
		if err != nil {
			return fmt.Errorf("graph request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		st.Requests++
		sent := time.Now()
		resp, err := c.hc.Do(req)
		if err != nil {
			c.observe(endpointName(req.URL.Path), 0, time.Since(sent))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A dropped connection: GET, PATCH and DELETE are safe to
			// repeat; a repeated POST is cleaned up (see above).
			if attempt >= c.maxRetries {
				return &Error{Kind: ErrUnavailable, Code: "connection", Message: "connection failed repeatedly"}
			}
			if err := c.sleep(ctx, jitter(backoff)); err != nil {
				return err
			}
			backoff = min(backoff*2, c.maxWait)
			continue
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			var err error
			if decode != nil {
				err = decode(resp.Body)
			}
			c.observe(endpointName(req.URL.Path), resp.StatusCode, time.Since(sent))
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // drain for reuse
			resp.Body.Close()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("decode graph response: %w", err)
			}
			return nil
		}
		gerr := readError(resp)
		if endpointName(req.URL.Path) == "subscriptions" {
			// Before the switch: a quota 403 must not drop the token.
			subscriptionKind(gerr)
		}
		resp.Body.Close()
		c.observe(endpointName(req.URL.Path), resp.StatusCode, time.Since(sent))
		switch {
		case gerr.Kind == ErrUnauthorized && !refreshed:
			// Facts §5.6: an expired or not-yet-valid token; one new token.
			refreshed = true
			c.tokens.Invalidate(tenantID)
			continue
		case gerr.Kind == ErrUnauthorized || gerr.Kind == ErrConsentRevoked || gerr.Kind == ErrInsufficientPermissions:
			// Consent, the service principal or its grants changed (issue 11,
			// defect 3): a cached token would keep failing after the admin
			// consents again, until it expires.
			c.tokens.Invalidate(tenantID)
			return gerr
		case gerr.Kind == ErrThrottled || gerr.Kind == ErrUnavailable:
			if gerr.RetryAfter > 0 && c.gate != nil {
				if err := c.gate.TenantThrottle(ctx, tenantID, c.now().Add(gerr.RetryAfter)); err != nil {
					return fmt.Errorf("%w, and %w", gerr, err)
				}
			}
			wait := gerr.RetryAfter
			if wait == 0 {
				// Facts §5.7: no Retry-After → exponential backoff.
				wait = jitter(backoff)
				backoff = min(backoff*2, c.maxWait)
			}
			retries := c.maxRetries
			if gerr.Kind == ErrUnavailable && gerr.RetryAfter == 0 {
				retries = min(retries, 3) // a failing server, not a busy one
			}
			if wait > c.maxWait || attempt >= retries {
				// A long Retry-After travels with gerr so the job snoozes;
				// exhausted retries are a failure.
				return gerr
			}
			if gerr.Kind == ErrThrottled {
				st.ThrottledWaits++
				st.ThrottledFor += wait
				c.throttled(wait)
			}
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		return gerr
	}
}

// awaitWindow returns once the tenant's throttle window, kept by the gate,
// has ended: it waits in process while the rest is at most MaxWait, and
// otherwise returns a throttled *Error with RetryAfter set to the rest,
// without sending anything, so the job snoozes until then.
func (c *Client) awaitWindow(ctx context.Context, tenantID string, st *domain.RequestStats) error {
	if c.gate == nil {
		return nil
	}
	// The window the caller read (WithThrottleWindow) stands in for the
	// first read only.
	known, ok := ctx.Value(windowKey{}).(knownWindow)
	until := known.until
	for {
		if !ok || known.tenantID != tenantID {
			var err error
			if until, err = c.gate.TenantThrottledUntil(ctx, tenantID); err != nil {
				return err // names the tenant and the operation
			}
		}
		ok = false
		rest := until.Sub(c.now())
		if rest <= 0 {
			return nil
		}
		if rest > c.maxWait {
			return &Error{Kind: ErrThrottled, Code: "tenantThrottled", Message: "the tenant's Retry-After window is still open", RetryAfter: rest}
		}
		st.ThrottledWaits++
		st.ThrottledFor += rest
		c.throttled(rest)
		if err := c.sleep(ctx, rest); err != nil {
			return err
		}
		// Read again: another process may have been throttled meanwhile.
	}
}

type windowKey struct{}

type knownWindow struct {
	tenantID string
	until    time.Time
}

// WithThrottleWindow returns ctx carrying tenantID's throttle window as the
// caller has just read it from the gate (the worker reads it with the
// sync's lease, in the same round trip): requests under ctx for that
// tenant go by it instead of each reading the gate (issue 13: two of a
// steady round's round trips). A window recorded by another job meanwhile
// is then learnt from Graph's own 429 one request later, and honoured from
// there; one this client waits out in process is read from the gate again.
func WithThrottleWindow(ctx context.Context, tenantID string, until time.Time) context.Context {
	return context.WithValue(ctx, windowKey{}, knownWindow{tenantID: tenantID, until: until})
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// endpointName is a fixed, low-cardinality name for a Graph path.
func endpointName(path string) string {
	switch p := strings.TrimPrefix(strings.ToLower(path), "/v1.0/"); {
	case strings.HasPrefix(p, "users/delta"):
		return "users_delta"
	case strings.HasPrefix(p, "groups/delta"):
		return "groups_delta"
	case strings.HasPrefix(p, "organization"):
		return "organization"
	case strings.HasPrefix(p, "subscriptions"):
		return "subscriptions"
	case strings.HasPrefix(p, "users"):
		return "users"
	case strings.HasPrefix(p, "groups"):
		return "groups"
	}
	return "other"
}
