package webapp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// Microsoft Graph change notifications (issue 17, docs/protocol.md §7).
// Graph POSTs to PUBLIC_BASE_URL + /graph/notifications and
// /graph/lifecycle; nothing but the clientState of each notification, kept
// as its SHA-256 beside the subscription, tells Graph from anyone else, so
// every notification is checked against its subscription and a failed
// check changes nothing. The clientState never reaches a log line.
const (
	// graphBodyLimit bounds a notification POST: Graph batches
	// notifications of about 700 bytes each, so a few thousand fit.
	graphBodyLimit = 4 << 20
	// graphWorkTimeout bounds the database work behind a notification, so
	// the answer leaves within Graph's 3 seconds (§7) whatever happens.
	graphWorkTimeout = 2 * time.Second
	// maxValidationToken bounds the validation token echoed back.
	maxValidationToken = 1024
)

// graphEndpoints names the notification routes in the metric's endpoint
// label.
var graphEndpoints = map[string]string{
	"/graph/notifications": "notifications",
	"/graph/lifecycle":     "lifecycle",
}

// Results of tenantsync_graph_notifications_total.
const (
	resultValidation   = "validation"
	resultAccepted     = "accepted"
	resultReauthorize  = "reauthorize"
	resultIgnored      = "ignored"
	resultUnknown      = "unknown_subscription"
	resultClientState  = "bad_client_state"
	resultTenant       = "tenant_mismatch"
	resultMalformed    = "malformed"
	resultTooLarge     = "too_large"
	resultStoreFailure = "error"
)

// graphNotification is the part of one change or lifecycle notification
// the server reads (§7); resource data is not needed: any change of a
// tenant means "run its delta round soon".
type graphNotification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	TenantID       string `json:"tenantId"`
	LifecycleEvent string `json:"lifecycleEvent"`
}

// graphNotificationBatch is the body Graph POSTs.
type graphNotificationBatch struct {
	Value []graphNotification `json:"value"`
}

// verifiedNotification is a notification that passed every check, with the
// tenant of its subscription.
type verifiedNotification struct {
	TenantID       string
	LifecycleEvent string
}

// answerValidation answers Graph's validation handshake (§7): 200 with the
// decoded token as plain text, never as HTML. It reports false when the
// request is no handshake.
func (s *Server) answerValidation(c echo.Context, endpoint string) (bool, error) {
	q := c.QueryParams()
	if !q.Has("validationToken") {
		return false, nil
	}
	token := q.Get("validationToken")
	if token == "" || len(token) > maxValidationToken {
		s.metrics.ObserveGraphNotifications(endpoint, resultMalformed, 1)
		return true, echo.NewHTTPError(http.StatusBadRequest, "The validation token is empty or too long.")
	}
	s.metrics.ObserveGraphNotifications(endpoint, resultValidation, 1)
	c.Response().Header().Set(echo.HeaderXContentTypeOptions, "nosniff")
	return true, c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(token))
}

// readNotifications reads and parses a notification POST. A body over
// graphBodyLimit is the caller's 413 (observe counts it); anything else
// unreadable is counted as malformed and reported as nil.
func (s *Server) readNotifications(c echo.Context, endpoint string) ([]graphNotification, error) {
	body, err := io.ReadAll(c.Request().Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		c.Response().Header().Set(echo.HeaderConnection, "close")
		return nil, errTooLarge(mbe.Limit)
	}
	var batch graphNotificationBatch
	if err != nil || json.Unmarshal(body, &batch) != nil || len(batch.Value) == 0 {
		s.metrics.ObserveGraphNotifications(endpoint, resultMalformed, 1)
		return nil, nil
	}
	return batch.Value, nil
}

// receiveNotifications is the part both Graph endpoints share
// (docs/protocol.md §7): the validation handshake, or a bounded body of
// notifications verified one by one (clientState, tenant); work then gets
// the verified ones. Malformed and unverifiable requests are answered 202
// and counted here; work answers the rest.
func (s *Server) receiveNotifications(c echo.Context, endpoint string, work func(ctx context.Context, verified []verifiedNotification) error) error {
	if ok, err := s.answerValidation(c, endpoint); ok {
		return err
	}
	ns, err := s.readNotifications(c, endpoint)
	if err != nil || ns == nil {
		return s.acceptNotifications(c, err)
	}
	// Bounded and detached from the client: Graph wants its answer within 3
	// seconds, and a client that hangs up does not undo what was accepted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), graphWorkTimeout)
	defer cancel()
	verified, err := s.verifyNotifications(ctx, c, endpoint, ns)
	if err != nil {
		return s.acceptNotifications(c, s.notificationsLost(c, endpoint, err))
	}
	return work(ctx, verified)
}

// verifyNotifications checks each notification against its subscription,
// looked up for the whole batch in one query: the subscription must exist,
// the SHA-256 of the clientState must match in constant time, and the
// tenantId must be the subscription's tenant. What fails is counted and
// dropped; a failed lookup drops everything and is returned.
func (s *Server) verifyNotifications(ctx context.Context, c echo.Context, endpoint string, ns []graphNotification) ([]verifiedNotification, error) {
	ids := make([]string, 0, len(ns))
	seen := map[string]bool{}
	for _, n := range ns {
		if n.SubscriptionID != "" && !seen[n.SubscriptionID] {
			seen[n.SubscriptionID] = true
			ids = append(ids, n.SubscriptionID)
		}
	}
	subs, err := s.store.GraphSubscriptionsByID(ctx, ids)
	if err != nil {
		s.metrics.ObserveGraphNotifications(endpoint, resultStoreFailure, len(ns))
		return nil, err
	}
	byID := make(map[string]domain.Subscription, len(subs))
	for _, sub := range subs {
		byID[sub.ID] = sub
	}
	counts := map[string]int{}
	var out []verifiedNotification
	for _, n := range ns {
		sub, ok := byID[n.SubscriptionID]
		sum := sha256.Sum256([]byte(n.ClientState))
		switch {
		case !ok:
			counts[resultUnknown]++
		case subtle.ConstantTimeCompare(sum[:], sub.ClientStateHash) != 1:
			counts[resultClientState]++
		case !strings.EqualFold(n.TenantID, sub.TenantID):
			counts[resultTenant]++
		default:
			out = append(out, verifiedNotification{TenantID: sub.TenantID, LifecycleEvent: n.LifecycleEvent})
		}
	}
	for result, n := range counts {
		s.metrics.ObserveGraphNotifications(endpoint, result, n)
	}
	if dropped := len(ns) - len(out); dropped > 0 {
		// Counts only: the request's own log line has its ID, and nothing
		// of a forged body is worth repeating.
		s.log.Warn("graph notifications dropped", "endpoint", endpoint, "dropped", dropped, "accepted", len(out),
			"unknown_subscription", counts[resultUnknown], "bad_client_state", counts[resultClientState],
			"tenant_mismatch", counts[resultTenant], "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	return out, nil
}
