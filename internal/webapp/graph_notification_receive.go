package webapp

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// graphNotificationReceive is POST /graph/notifications, Graph's
// notificationUrl (docs/protocol.md §7): the validation handshake, or a
// batch of change notifications. Each accepted tenant gets notified_at set
// and one sync job, unique per tenant, so a burst of notifications makes
// one queued job and a round already running runs once more (migration
// 00095). The answer is 202 whatever happens behind it.
func (s *Server) graphNotificationReceive(c echo.Context) error {
	const endpoint = "notifications"
	return s.receiveNotifications(c, endpoint, func(ctx context.Context, verified []verifiedNotification) error {
		return s.recordNotifications(ctx, c, endpoint, verified)
	})
}

// recordNotifications is graphNotificationReceive's work on the verified
// notifications of one request.
func (s *Server) recordNotifications(ctx context.Context, c echo.Context, endpoint string, verified []verifiedNotification) error {
	perTenant := map[string]int{}
	for _, v := range verified {
		perTenant[v.TenantID]++
	}
	if len(perTenant) == 0 {
		return s.acceptNotifications(c, nil)
	}
	jobs := make([]river.InsertManyParams, 0, len(perTenant))
	for id := range perTenant {
		jobs = append(jobs, river.InsertManyParams{Args: queue.SyncTenantArgs{TenantID: id}})
	}
	// notified_at first, then the job: a sync job of the tenant still
	// running swallows the unique insert, and then finds notified_at later
	// than its start when it completes, and runs once more (§7.1).
	err := s.store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		if err := st.TenantNotificationsRecord(ctx, perTenant); err != nil {
			return err
		}
		_, err := s.cfg.Jobs.InsertManyTx(ctx, tx, jobs)
		return err
	})
	if err != nil {
		s.metrics.ObserveGraphNotifications(endpoint, resultStoreFailure, len(verified))
		return s.acceptNotifications(c, s.notificationsLost(c, endpoint, err))
	}
	s.metrics.ObserveGraphNotifications(endpoint, resultAccepted, len(verified))
	return s.acceptNotifications(c, nil)
}

// acceptNotifications answers 202, or the 413 of a body over the limit.
// Every other outcome is 202 too: Graph retries anything else for hours,
// and a forged batch learns nothing from the answer.
func (s *Server) acceptNotifications(c echo.Context, err error) error {
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// notificationsLost logs notifications that could not be recorded (the
// database failed or took too long) and returns nil: the answer is still
// 202, because the periodic delta round is the safety net that picks the
// changes up (docs/protocol.md §7: a slow or failing endpoint is retried
// and then throttled or dropped, which would only make things worse).
func (s *Server) notificationsLost(c echo.Context, endpoint string, err error) error {
	s.log.Error("graph notifications not recorded; the periodic sync will catch up", "endpoint", endpoint,
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
	return nil
}
