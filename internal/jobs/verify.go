package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entra"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/queue"
	"github.com/tenantsync/tenantsync/internal/retry"
)

type verifyWorker struct {
	river.WorkerDefaults[queue.VerifyTenantArgs]
	d *Deps
}

func (w *verifyWorker) Timeout(*river.Job[queue.VerifyTenantArgs]) time.Duration {
	return min(w.d.ConsentPropagationWait+2*time.Minute, w.d.jobTimeout())
}

// Work confirms a fresh consent: a token for the tenant (retrying through
// propagation), its roles, the organization; then active + first sync.
func (w *verifyWorker) Work(ctx context.Context, job *river.Job[queue.VerifyTenantArgs]) error {
	ctx = withJobID(ctx, job.ID)
	d, tid := w.d, strings.ToLower(job.Args.TenantID)
	t, err := d.Store.TenantGet(ctx, tid)
	if errors.Is(err, domain.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if t.Status != domain.TenantPending {
		return nil // verified already, or disconnected since
	}
	deadline := job.CreatedAt.Add(d.ConsentPropagationWait)
	backoff := 500 * time.Millisecond
	var tok entra.Token
	for {
		tok, err = d.Tokens.Token(ctx, tid)
		var missing []string
		if err == nil {
			missing = entra.MissingRoles(tok.Roles)
			if len(missing) == 0 {
				break
			}
		}
		propagating := err == nil || domain.FaultKindOf(err) == domain.FaultConsentMissing
		if !propagating || !d.Now().Before(deadline) {
			if err != nil {
				return d.handleFailure(ctx, tid, domain.TenantPending, err)
			}
			reason := "missing Microsoft Graph application permissions: " + strings.Join(missing, ", ") +
				"; an administrator must reconnect and accept all of them"
			return d.Store.Tx(ctx, func(_ pgx.Tx, st *postgres.Store) error {
				if err := st.TenantSetOrganization(ctx, tid, t.DisplayName, t.Domains, tok.Roles); err != nil {
					return err
				}
				_, err := st.TenantTransition(ctx, tid, domain.Transition{From: []domain.TenantStatus{domain.TenantPending},
					To: domain.TenantInsufficientPermissions, Reason: reason, Actor: "worker"})
				return err
			})
		}
		// Facts §6.1: a new service principal and its role assignments
		// replicate for a while; AADSTS700016 or a token without roles then
		// is expected (ARO retries 700016 for 2 minutes).
		if err == nil {
			d.Tokens.Invalidate(tid)
		}
		wait := min(backoff, deadline.Sub(d.Now()))
		backoff = min(backoff*2, 10*time.Second)
		if err := retry.Sleep(ctx, wait); err != nil {
			return river.JobSnooze(0)
		}
	}
	d.credentialOK()
	org, _, err := d.Graph.Organization(ctx, tid)
	if err != nil {
		return d.handleFailure(ctx, tid, domain.TenantPending, err)
	}
	domains := org.Domains
	if domains == nil {
		domains = []string{}
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	return d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		if err := st.TenantSetOrganization(ctx, tid, org.DisplayName, domains, tok.Roles); err != nil {
			return err
		}
		moved, err := st.TenantTransition(ctx, tid, domain.Transition{From: []domain.TenantStatus{domain.TenantPending},
			To: domain.TenantActive, Reason: "consent verified", Actor: "worker"})
		if err != nil || !moved {
			return err // disconnected meanwhile: nothing to sync
		}
		if err := st.TenantSetNextSync(ctx, tid, d.Now().Add(d.SyncInterval)); err != nil {
			return err
		}
		if _, err := client.InsertTx(ctx, tx, queue.SyncTenantArgs{TenantID: tid, Full: true}, nil); err != nil {
			return fmt.Errorf("enqueue first sync of tenant %s: %w", tid, err)
		}
		return nil
	})
}
