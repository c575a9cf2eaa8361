package webapp

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/queue"
)

// lifecycleReauthorize is the lifecycle event directory resources send
// (docs/protocol.md §7); subscriptionRemoved and missed are documented for
// other resources only, and are counted and ignored like any other.
const lifecycleReauthorize = "reauthorizationRequired"

// graphLifecycleReceive is POST /graph/lifecycle, Graph's
// lifecycleNotificationUrl (docs/protocol.md §7): the validation handshake,
// or lifecycle notifications. After the checks of every notification, each
// tenant with a reauthorizationRequired gets one ensure_subscriptions job
// with Reauthorize set; the worker reauthorizes or renews. The answer is
// 202 whatever happens behind it.
func (s *Server) graphLifecycleReceive(c echo.Context) error {
	const endpoint = "lifecycle"
	return s.receiveNotifications(c, endpoint, func(ctx context.Context, verified []verifiedNotification) error {
		return s.reauthorizeSubscriptions(ctx, c, endpoint, verified)
	})
}

// reauthorizeSubscriptions is graphLifecycleReceive's work on the verified
// lifecycle notifications of one request.
func (s *Server) reauthorizeSubscriptions(ctx context.Context, c echo.Context, endpoint string, verified []verifiedNotification) error {
	tenants := map[string]bool{}
	reauthorize, ignored := 0, 0
	var jobs []river.InsertManyParams
	for _, v := range verified {
		if v.LifecycleEvent != lifecycleReauthorize {
			ignored++
			continue
		}
		reauthorize++
		if !tenants[v.TenantID] {
			tenants[v.TenantID] = true
			jobs = append(jobs, river.InsertManyParams{Args: queue.EnsureSubscriptionsArgs{TenantID: v.TenantID, Reauthorize: true}})
		}
	}
	s.metrics.ObserveGraphNotifications(endpoint, resultIgnored, ignored)
	if len(jobs) == 0 {
		return s.acceptNotifications(c, nil)
	}
	if _, err := s.cfg.Jobs.InsertMany(ctx, jobs); err != nil {
		s.metrics.ObserveGraphNotifications(endpoint, resultStoreFailure, reauthorize)
		// The worker's own renewal, well before expiry, is the safety net.
		return s.acceptNotifications(c, s.notificationsLost(c, endpoint, err))
	}
	s.metrics.ObserveGraphNotifications(endpoint, resultReauthorize, reauthorize)
	return c.NoContent(http.StatusAccepted)
}
