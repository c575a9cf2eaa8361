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
)

// handleFailure decides what a failed token or Graph call means: pause the
// job (shutdown, throttling, the app's own credential), a status that only
// the customer's admin can fix, or a counted, backed-off failure.
//
// seen is the status the job read and acted on: a verdict only applies
// while the tenant is still there (an admin who connects again meanwhile
// wins over a sync that failed before).
func (d *Deps) handleFailure(ctx context.Context, tid string, seen domain.TenantStatus, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		// Shutdown: run again from the last checkpoint without using an attempt.
		return river.JobSnooze(0)
	}
	if postgres.Unavailable(err) {
		// Postgres went away under the job (a restart, a failover): not the
		// tenant's fault, and no reason to back it off. Run again from the
		// last checkpoint soon, without counting a failure or using an
		// attempt. Counted, a restart left a tenant failing and waiting 2
		// minutes (TestPostgresRestart).
		d.log(ctx).Warn("job interrupted by the database; running again", "tenant_id", tid, "error", err.Error())
		return river.JobSnooze(databaseRetry)
	}
	f, ok := domain.FaultOf(err)
	if !ok {
		return d.recordFailure(ctx, tid, err)
	}
	switch f.Kind {
	case domain.FaultConsentMissing:
		if seen == domain.TenantPending {
			return d.revoke(ctx, tid, seen, fmt.Sprintf("the app was not found in the tenant after waiting %s (%s): consent was not granted or was removed", d.ConsentPropagationWait, f.Code))
		}
		return d.revoke(ctx, tid, seen, fmt.Sprintf("the app is no longer installed in the tenant (%s)", f.Code))
	case domain.FaultTenantNotFound:
		return d.revoke(ctx, tid, seen, fmt.Sprintf("the tenant no longer exists in Microsoft Entra ID (%s)", f.Code))
	case domain.FaultServicePrincipalDisabled:
		return d.revoke(ctx, tid, seen, fmt.Sprintf("an administrator disabled the app in the tenant (%s)", f.Code))
	case domain.FaultConsentRevoked:
		return d.revoke(ctx, tid, seen, "Microsoft Graph no longer recognises the app in the tenant (Authorization_IdentityNotFound)")
	case domain.FaultInsufficientPermissions:
		return d.insufficient(ctx, tid, seen, f)
	case domain.FaultAppCredentialBroken:
		// Not the tenant's fault: every tenant fails alike until an
		// operator fixes the credential. Say so once, loudly.
		if d.credBroken.CompareAndSwap(false, true) {
			d.log(ctx).Error("Microsoft Entra ID rejects the app's own credential; fix ENTRA_CLIENT_SECRET / ENTRA_CLIENT_CERT_FILE / ENTRA_FEDERATED_TOKEN_FILE. Tenants keep their status; jobs wait.",
				"tenant_id", tid, "error_code", f.Code)
		}
		return river.JobSnooze(d.CredentialBrokenSnooze)
	case domain.FaultUnauthorized:
		// The token itself was refused: never try it again.
		d.Tokens.Invalidate(tid)
	}
	if f.RetryAfter > 0 {
		// Throttled longer than the Graph client waits in process.
		d.log(ctx).Info("tenant throttled; job snoozed", "tenant_id", tid, "retry_after", f.RetryAfter.String())
		return river.JobSnooze(f.RetryAfter)
	}
	return d.recordFailure(ctx, tid, err)
}

// databaseRetry is how long a job waits to run again after Postgres went
// away under it.
const databaseRetry = 2 * time.Second

// recordFailure counts a transient failure and backs the tenant off, as
// miniflux parks failing feeds: the job completes and the fan-out retries
// the tenant when its next_sync_at comes.
func (d *Deps) recordFailure(ctx context.Context, tid string, err error) error {
	reason := "sync failed: " + err.Error()
	n, ferr := d.Store.TenantSyncFailed(ctx, tid, reason, func(failures int) time.Time {
		return d.Now().Add(FailureBackoff(failures, d.SyncInterval))
	})
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	d.log(ctx).Warn("tenant sync failed", "tenant_id", tid, "failures", n, "error", err.Error())
	return nil
}

// FailureBackoff is the wait before the next sync after failures
// consecutive failures: 2m, 4m, 8m … doubling, at most max(interval, 12h)…
// capped at 24h.
func FailureBackoff(failures int, interval time.Duration) time.Duration {
	d := time.Minute << min(failures, 11)
	return min(d, max(interval, 12*time.Hour), 24*time.Hour)
}

// errNotRevoked means a revocation verdict did not hold up with a fresh
// token: the consent exists (given again meanwhile), so the job retries.
var errNotRevoked = errors.New("the app's consent exists again; not revoked")

// revoke moves the tenant from seen to consent_revoked and schedules the
// purge of its copy after PURGE_AFTER, in one transaction, once a freshly
// acquired token confirms the verdict. A token cached from before a
// revocation, or a revocation followed at once by a fresh consent, must
// neither keep a revoked tenant alive nor revoke and purge a tenant whose
// consent exists.
func (d *Deps) revoke(ctx context.Context, tid string, seen domain.TenantStatus, reason string) error {
	ctx = context.WithoutCancel(ctx)
	if err := d.confirmRevoked(ctx, tid); err != nil {
		// The consent is back (or Entra could not tell): try again soon
		// rather than count a failure.
		d.log(ctx).Info("revocation not confirmed with a fresh token", "tenant_id", tid, "error", err.Error())
		return river.JobSnooze(5 * time.Second)
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	moved := false
	err := d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		var err error
		moved, err = st.TenantTransition(ctx, tid, domain.Transition{From: []domain.TenantStatus{seen},
			To: domain.TenantConsentRevoked, Reason: reason, Actor: "worker"})
		if err != nil || !moved {
			return err
		}
		opts := queue.PurgeTenantArgs{}.InsertOpts()
		opts.ScheduledAt = d.Now().Add(d.PurgeAfter)
		if _, err = client.InsertTx(ctx, tx, queue.PurgeTenantArgs{TenantID: tid}, &opts); err != nil {
			return err
		}
		return d.unsubscribeTx(ctx, tx, tid)
	})
	if err != nil {
		return err
	}
	if moved {
		d.log(ctx).Warn("tenant consent revoked", "tenant_id", tid, "reason", reason)
	}
	return nil
}

// confirmRevoked asks Entra ID and Graph again with a token acquired now,
// past every cache: nil means the app is gone from the tenant.
func (d *Deps) confirmRevoked(ctx context.Context, tid string) error {
	_, err := d.Tokens.Fresh(ctx, tid)
	if domain.FaultKindOf(err).AppGone() {
		return nil
	}
	if err != nil {
		return err
	}
	_, _, err = d.Graph.Organization(ctx, tid)
	if domain.FaultKindOf(err).AppGone() {
		d.Tokens.Invalidate(tid)
		return nil
	}
	if err != nil {
		return err
	}
	return errNotRevoked
}

// insufficient moves the tenant from seen to insufficient_permissions,
// naming the roles a fresh token lacks when it can tell.
func (d *Deps) insufficient(ctx context.Context, tid string, seen domain.TenantStatus, f *domain.Fault) error {
	d.Tokens.Invalidate(tid)
	reason := fmt.Sprintf("Microsoft Graph denied access (HTTP 403 %s)", f.Code)
	if tok, err := d.Tokens.Token(ctx, tid); err == nil {
		if missing := entra.MissingRoles(tok.Roles); len(missing) > 0 {
			reason += "; missing application permissions: " + strings.Join(missing, ", ")
		}
	}
	moved := false
	err := d.Store.Tx(ctx, func(tx pgx.Tx, st *postgres.Store) error {
		var err error
		moved, err = st.TenantTransition(ctx, tid, domain.Transition{From: []domain.TenantStatus{seen},
			To: domain.TenantInsufficientPermissions, Reason: reason, Actor: "worker"})
		if err != nil || !moved {
			return err
		}
		return d.unsubscribeTx(ctx, tx, tid)
	})
	if err != nil {
		return err
	}
	if moved {
		d.log(ctx).Warn("tenant lacks permissions", "tenant_id", tid, "reason", reason)
	}
	return nil
}

func (d *Deps) credentialOK() {
	if d.credBroken.CompareAndSwap(true, false) {
		d.Logger.Info("Microsoft Entra ID accepts the app's credential again")
	}
}

// unsubscribeTx enqueues, in tx, the removal of the subscriptions of a
// tenant that leaves active, when change notifications are on (issue 17).
func (d *Deps) unsubscribeTx(ctx context.Context, tx pgx.Tx, tid string) error {
	if !d.ChangeNotifications {
		return nil
	}
	if _, err := river.ClientFromContext[pgx.Tx](ctx).InsertTx(ctx, tx, queue.EnsureSubscriptionsArgs{TenantID: tid}, nil); err != nil {
		return fmt.Errorf("enqueue removal of the subscriptions of tenant %s: %w", tid, err)
	}
	return nil
}
