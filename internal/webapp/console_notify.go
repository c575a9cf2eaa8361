package webapp

import (
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// consoleNotify is a tenant's change-notification status in words (issue
// 17, docs/protocol.md §7): near-real-time, or periodic and why.
type consoleNotify struct {
	postgres.NotificationStatus
	Label string
	Class string
	Words string
}

// notifyStateWords label the states.
var notifyStateWords = map[domain.NotificationState]struct{ label, class, words string }{
	domain.NotificationsSubscribed: {"Near-real-time", "ok",
		"Microsoft Graph notifies tenantsync of every user and group change; the change reaches the copy within about a minute. The periodic sync still runs as a safety net."},
	domain.NotificationsSubscribing: {"Subscribing", "pending",
		"The worker is creating the tenant's Microsoft Graph subscriptions; until then it syncs periodically."},
	domain.NotificationsPeriodic: {"Periodic sync", "off", "The tenant is synced every SYNC_INTERVAL only."},
}

// notifyReasonWords explain why a tenant is on periodic sync; the keys are
// the reasons the worker writes (migrations/00095_change_notifications.sql)
// and "off" for a tenant without subscriptions.
var notifyReasonWords = map[string]string{
	"quota": "The app's Microsoft Graph subscription quota is used up (50,000 subscriptions per app, about 25,000 tenants); " +
		"this tenant syncs periodically until subscriptions are free again.",
	"permission": "Microsoft Graph refused the subscription: the app lacks a permission in this tenant (User.Read.All, GroupMember.Read.All).",
	"unreachable": "Microsoft Graph could not reach the notification URL to validate it: " +
		"PUBLIC_BASE_URL must be HTTPS and reachable from Microsoft Graph.",
	"error":    "Creating the subscription failed; the worker tries again.",
	"disabled": "The tenant does not sync (suspended or not active), so it has no subscriptions.",
	"off":      "Change notifications are off (CHANGE_NOTIFICATIONS), or the worker has not subscribed this tenant yet.",
}

// notifyReasonLabel is a reason as a short label, for the overview.
var notifyReasonLabel = map[string]string{
	"quota": "quota used up", "permission": "permission missing", "unreachable": "notification URL unreachable",
	"error": "error", "disabled": "not syncing", "off": "notifications off",
}

// newConsoleNotify puts a status into words.
func newConsoleNotify(n postgres.NotificationStatus) consoleNotify {
	st, ok := notifyStateWords[n.State]
	if !ok {
		st = notifyStateWords[domain.NotificationsPeriodic]
	}
	v := consoleNotify{NotificationStatus: n, Label: st.label, Class: st.class, Words: st.words}
	if n.State == domain.NotificationsPeriodic {
		if w, ok := notifyReasonWords[n.Reason]; ok {
			v.Words = w + " " + st.words
		}
		if n.Reason != postgres.NotificationReasonOff && n.Reason != domain.NotificationReasonDisabled {
			v.Class = "warn"
		}
	}
	return v
}
