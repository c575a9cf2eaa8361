package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
	"github.com/tenantsync/tenantsync/internal/webhook"
)

type webhookDeliverWorker struct {
	river.WorkerDefaults[queue.WebhookDeliverArgs]
	d *Deps
}

// Work sends one (endpoint, tenant) pair's pending deliveries strictly in
// feed order, one at a time. A 2xx delivers; anything else fails the
// attempt, schedules the next on WebhookRetrySchedule and snoozes the job
// until then, so later events of the tenant wait behind it. An endpoint
// failing for WebhookDisableAfter is disabled. The job is unique per pair
// while active: one sender per pair.
func (w *webhookDeliverWorker) Work(ctx context.Context, job *river.Job[queue.WebhookDeliverArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d := w.d
	pair := postgres.WebhookPair{EndpointID: job.Args.EndpointID, TenantID: job.Args.TenantID}
	start := d.Now()
	for {
		// Read again before every send: a rotation, a new URL or a
		// disable takes effect at the next delivery.
		ep, err := d.Store.WebhookEndpointGet(ctx, pair.EndpointID)
		if errors.Is(err, domain.ErrNotFound) {
			return nil // deleted, with its deliveries
		}
		if err != nil {
			return err
		}
		if ep.Disabled {
			return nil // the dispatcher's sweep enqueues the pair again once enabled
		}
		del, err := d.Store.WebhookDeliveryNext(ctx, pair)
		if errors.Is(err, domain.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		now := d.Now()
		if del.NextAttemptAt.After(now) {
			return river.JobSnooze(del.NextAttemptAt.Sub(now))
		}
		if del.Event == nil {
			if err := d.Store.WebhookDeliveryExpire(ctx, del.ID, now); err != nil {
				return err
			}
			continue
		}
		if now.Sub(start) >= d.WebhookSlice {
			return river.JobSnooze(0) // let other pairs' jobs have the worker
		}
		a, outcome := d.sendWebhook(ctx, ep, *del.Event, now)
		if ctx.Err() != nil {
			// Shutdown or the job's timeout, not the receiver's failure:
			// try the same delivery again, on any worker.
			return river.JobSnooze(0)
		}
		d.Metrics.ObserveWebhook(outcome, a.Latency)
		log := d.log(ctx).With("endpoint_id", ep.ID, "tenant_id", pair.TenantID, "event_id", del.EventID)
		if a.Error == "" {
			if err := d.Store.WebhookDeliverySucceeded(ctx, del.ID, a); err != nil {
				return err
			}
			continue
		}
		next := now.Add(d.webhookRetryDelay(del.Attempts + 1))
		since, err := d.Store.WebhookDeliveryFailed(ctx, del.ID, a, next)
		if err != nil {
			return err
		}
		if failing := now.Sub(since); failing >= d.WebhookDisableAfter {
			reason := fmt.Sprintf("deliveries failed for %s (since %s); last: %s",
				failing.Round(time.Minute), since.UTC().Format(time.RFC3339), a.Error)
			if err := d.Store.WebhookEndpointDisable(ctx, ep.ID, reason); err != nil {
				return err
			}
			log.Warn("webhook endpoint disabled", "reason", reason)
			return nil
		}
		log.Info("webhook delivery failed", "attempt", del.Attempts+1, "status_code", a.StatusCode, "err", a.Error,
			"next_attempt_at", next)
		return river.JobSnooze(next.Sub(now))
	}
}

// webhookRetryDelay is the wait after the attempt-th failed attempt: the
// schedule's entry, and its last entry once it is used up (deliveries are
// never dropped; an endpoint failing long enough is disabled instead).
func (d *Deps) webhookRetryDelay(attempt int) time.Duration {
	s := d.WebhookRetrySchedule
	return s[min(attempt, len(s))-1]
}

// Outcomes of an attempt, as metrics count them.
const (
	outcomeDelivered  = "delivered"
	outcomeHTTPError  = "http_error"  // a response other than 2xx
	outcomeNoResponse = "no_response" // timeout, refused or reset connection, TLS failure
	outcomeRefused    = "refused"     // our own rule: not https, or a private address
)

// sendWebhook makes one delivery attempt: the event as JSON, signed with
// every current secret of ep. Nothing of the secret, the signature or the
// URL (which may carry the receiver's own token) reaches the result.
func (d *Deps) sendWebhook(ctx context.Context, ep domain.WebhookEndpoint, ev domain.Event, now time.Time) (postgres.WebhookAttempt, string) {
	a := postgres.WebhookAttempt{At: now}
	body, err := json.Marshal(ev)
	if err != nil {
		a.Error = "encode event: " + err.Error()
		return a, outcomeRefused
	}
	u, err := url.Parse(ep.URL)
	if err != nil || u.Scheme != "https" && !(d.WebhookAllowPrivate && u.Scheme == "http") {
		a.Error = "refused: the endpoint URL is not https"
		return a, outcomeRefused
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		a.Error = "refused: the endpoint URL is not valid"
		return a, outcomeRefused
	}
	if err := webhook.Headers(req.Header, ep.Secrets(now), ev.ID, now, body); err != nil {
		a.Error = err.Error()
		return a, outcomeRefused
	}
	req.Header.Set("User-Agent", "tenantsync-webhooks/1")
	t0 := time.Now()
	resp, err := d.webhookClient.Do(req)
	a.Latency = time.Since(t0)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL it repeats
		}
		var ne net.Error
		switch {
		case errors.Is(err, webhook.ErrForbiddenAddress):
			a.Error = "refused: " + webhook.ErrForbiddenAddress.Error()
			return a, outcomeRefused
		case errors.As(err, &ne) && ne.Timeout():
			a.Error = fmt.Sprintf("no response within %s", d.WebhookTimeout)
		default:
			a.Error = err.Error()
		}
		return a, outcomeNoResponse
	}
	// Read a little so the connection can be reused; the body means nothing.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	a.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.Error = fmt.Sprintf("the endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		return a, outcomeHTTPError
	}
	return a, outcomeDelivered
}
