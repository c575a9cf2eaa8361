package entraemu

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Change-notification subscriptions for users and groups (protocol §7).
// Subscriptions live in memory beside the directory; e.subMu guards them and
// the delivery queues (notify.go). Lock order: e.mu before e.subMu.

// Subscription limits for directory resources (protocol §7).
const (
	subMaxLifetime      = 41760 * time.Minute
	subMinLifetime      = 45 * time.Minute
	subLifecycleNeeded  = time.Hour // a lifecycle URL is required beyond this
	subQuotaAppTenant   = 100
	subQuotaTenant      = 1000
	subQuotaAppDefault  = 50000
	subClientStateMax   = 128
	lifecycleReauthName = "reauthorizationRequired"
)

// subscription is one Graph subscription.
type subscription struct {
	id, tid, appID, creatorID string
	resource                  string // as sent by the client ("users", "/groups")
	kind                      string // "users" or "groups"
	changeType                string // normalised, e.g. "updated,deleted"
	notificationURL           string
	lifecycleURL              string
	clientState               string
	expires                   time.Time
	seq                       uint64 // creation order
	reauthRequired            bool
	removed                   bool // deleted or expired: queues drain without sending

	changes, lifecycle *subQueue
}

func (s *subscription) wants(changeType string) bool {
	return slices.Contains(strings.Split(s.changeType, ","), changeType)
}

// SubscriptionInfo describes a subscription for tests and the control API.
type SubscriptionInfo struct {
	ID                       string    `json:"id"`
	TenantID                 string    `json:"tenant_id"`
	AppID                    string    `json:"app_id"`
	Resource                 string    `json:"resource"`
	ChangeType               string    `json:"change_type"`
	NotificationURL          string    `json:"notification_url"`
	LifecycleNotificationURL string    `json:"lifecycle_notification_url,omitempty"`
	ExpirationDateTime       time.Time `json:"expiration_date_time"`
	ReauthorizationRequired  bool      `json:"reauthorization_required"`
	// Delivered, Failed and Dropped count notification values (change and
	// lifecycle); Failed counts failed attempts, so a value retried twice
	// counts twice. Pending values wait for (re)delivery.
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	Dropped   int `json:"dropped"`
	Pending   int `json:"pending"`
}

func (s *subscription) info() SubscriptionInfo {
	in := SubscriptionInfo{ID: s.id, TenantID: s.tid, AppID: s.appID, Resource: s.resource, ChangeType: s.changeType,
		NotificationURL: s.notificationURL, LifecycleNotificationURL: s.lifecycleURL,
		ExpirationDateTime: s.expires, ReauthorizationRequired: s.reauthRequired}
	for _, q := range []*subQueue{s.changes, s.lifecycle} {
		in.Delivered += q.delivered
		in.Failed += q.failed
		in.Dropped += q.dropped
		in.Pending += len(q.pending)
	}
	return in
}

// liveSubLocked returns the subscription if it exists and has not expired
// (an expired one is removed: Graph deletes it, protocol §7). The caller
// holds e.subMu.
func (e *Emulator) liveSubLocked(id string) *subscription {
	s := e.subs[strings.ToLower(id)]
	if s == nil {
		return nil
	}
	if !e.now().Before(s.expires) {
		e.removeSubLocked(s)
		return nil
	}
	return s
}

func (e *Emulator) addSubLocked(s *subscription) {
	e.subSeq++
	s.seq = e.subSeq
	e.subs[s.id] = s
	e.subsByTenant[s.tid] = append(e.subsByTenant[s.tid], s)
	for _, k := range quotaKeys(s.tid, s.appID) {
		e.subCount[k]++
	}
}

func (e *Emulator) removeSubLocked(s *subscription) {
	if s.removed {
		return
	}
	s.removed = true
	delete(e.subs, s.id)
	e.subsByTenant[s.tid] = slices.DeleteFunc(e.subsByTenant[s.tid], func(x *subscription) bool { return x == s })
	if len(e.subsByTenant[s.tid]) == 0 {
		delete(e.subsByTenant, s.tid)
	}
	for _, k := range quotaKeys(s.tid, s.appID) {
		if e.subCount[k]--; e.subCount[k] == 0 {
			delete(e.subCount, k)
		}
	}
}

// quotaKeys are the subCount keys of the three quotas: app and tenant,
// tenant, app.
func quotaKeys(tid, appID string) [3]string {
	return [3]string{"at|" + appID + "|" + tid, "t|" + tid, "a|" + appID}
}

// quotaErrLocked checks the three directory quotas (protocol §7) for one
// more subscription of appID in tid; "" means within quota. Counts are kept
// per key; expired subscriptions are purged only when a quota seems
// reached. The caller holds e.subMu.
func (e *Emulator) quotaErrLocked(tid, appID string) string {
	msg := e.quotaMsgLocked(tid, appID)
	if msg != "" {
		now := e.now()
		for _, s := range e.subs {
			if !now.Before(s.expires) {
				e.removeSubLocked(s)
			}
		}
		msg = e.quotaMsgLocked(tid, appID)
	}
	return msg
}

func (e *Emulator) quotaMsgLocked(tid, appID string) string {
	k := quotaKeys(tid, appID)
	quota := e.subQuota
	if quota <= 0 {
		quota = subQuotaAppDefault
	}
	switch {
	case e.subCount[k[0]] >= subQuotaAppTenant:
		return fmt.Sprintf("Subscription quota exceeded: at most %d subscriptions per application and tenant.", subQuotaAppTenant)
	case e.subCount[k[1]] >= subQuotaTenant:
		return fmt.Sprintf("Subscription quota exceeded: at most %d subscriptions per tenant across all applications.", subQuotaTenant)
	case e.subCount[k[2]] >= quota:
		return fmt.Sprintf("Subscription quota exceeded: at most %d subscriptions per application across all tenants.", quota)
	}
	return ""
}

// Subscriptions lists the live subscriptions of a tenant ("" = all), oldest
// first.
func (e *Emulator) Subscriptions(tenantID string) []SubscriptionInfo {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	subs := e.sortedSubsLocked(strings.ToLower(tenantID))
	out := make([]SubscriptionInfo, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.info())
	}
	return out
}

// sortedSubsLocked returns the unexpired subscriptions of tid ("" = all),
// oldest first. The caller holds e.subMu.
func (e *Emulator) sortedSubsLocked(tid string) []*subscription {
	var subs []*subscription
	now := e.now()
	for _, s := range e.subs {
		if (tid == "" || s.tid == tid) && now.Before(s.expires) {
			subs = append(subs, s)
		}
	}
	slices.SortFunc(subs, func(a, b *subscription) int {
		return cmp.Compare(a.seq, b.seq)
	})
	return subs
}

// DeleteSubscription removes a subscription silently, "behind the client's
// back" (its next PATCH answers 404, protocol §7); pending notifications
// are discarded.
func (e *Emulator) DeleteSubscription(id string) error {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	s := e.subs[strings.ToLower(id)]
	if s == nil {
		return fmt.Errorf("subscription %s: %w", id, ErrNotFound)
	}
	e.removeSubLocked(s)
	return nil
}

// SendLifecycle queues a lifecycle notification (protocol §7; directory
// resources send "reauthorizationRequired") to the subscription's lifecycle
// URL. reauthorizationRequired marks the subscription until it is
// reauthorized or renewed.
func (e *Emulator) SendLifecycle(id, event string) error {
	if event != lifecycleReauthName && event != "subscriptionRemoved" && event != "missed" {
		return fmt.Errorf("lifecycle event %q: want reauthorizationRequired, subscriptionRemoved or missed", event)
	}
	e.subMu.Lock()
	defer e.subMu.Unlock()
	s := e.liveSubLocked(id)
	if s == nil {
		return fmt.Errorf("subscription %s: %w", id, ErrNotFound)
	}
	if s.lifecycleURL == "" {
		return fmt.Errorf("subscription %s has no lifecycleNotificationUrl: %w", id, ErrConflict)
	}
	if event == lifecycleReauthName {
		s.reauthRequired = true
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"subscriptionId":"`...)
	b = append(b, s.id...)
	b = append(b, `","subscriptionExpirationDateTime":"`...)
	b = appendGraphTime(b, s.expires)
	b = append(b, `","tenantId":"`...)
	b = append(b, s.tid...)
	b = append(b, `","clientState":`...)
	b = appendNullableString(b, s.clientState)
	b = append(b, `,"lifecycleEvent":`...)
	b = appendJSONString(b, event)
	b = append(b, '}')
	e.enqueueLocked(s.lifecycle, b)
	return nil
}

// SetSubscriptionQuota changes Config.SubscriptionQuota (subscriptions per
// app across all tenants; 0 means 50,000). Existing subscriptions stay.
func (e *Emulator) SetSubscriptionQuota(n int) {
	e.subMu.Lock()
	e.subQuota = n
	e.subMu.Unlock()
}

// notifyChange queues a change notification for every live subscription of
// the tenant on kind ("users" or "groups"); deleted means a permanent
// delete (protocol §7: creation, update and soft deletion arrive as
// "updated"). Called with e.mu held by directory mutations; it never waits
// for delivery.
func (e *Emulator) notifyChange(tid, kind, id string, deleted bool) {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	subs := e.subsByTenant[tid]
	if len(subs) == 0 {
		return
	}
	changeType := "updated"
	if deleted {
		changeType = "deleted"
	}
	odataType, seg := "#Microsoft.Graph.User", "Users/"
	if kind == "groups" {
		odataType, seg = "#Microsoft.Graph.Group", "Groups/"
	}
	now := e.now()
	for _, s := range subs {
		if s.kind != kind || !s.wants(changeType) || !now.Before(s.expires) {
			continue
		}
		b := make([]byte, 0, 512)
		b = append(b, `{"subscriptionId":"`...)
		b = append(b, s.id...)
		b = append(b, `","subscriptionExpirationDateTime":"`...)
		b = appendGraphTime(b, s.expires)
		b = append(b, `","changeType":"`...)
		b = append(b, changeType...)
		b = append(b, `","resource":"`...)
		b = append(b, seg...)
		b = append(b, id...)
		b = append(b, `","resourceData":{"@odata.type":"`...)
		b = append(b, odataType...)
		b = append(b, `","@odata.id":"`...)
		b = append(b, seg...)
		b = append(b, id...)
		b = append(b, `","id":"`...)
		b = append(b, id...)
		b = append(b, `","organizationId":"`...)
		b = append(b, tid...)
		b = append(b, `"},"clientState":`...)
		b = appendNullableString(b, s.clientState)
		b = append(b, `,"tenantId":"`...)
		b = append(b, tid...)
		b = append(b, `"}`...)
		e.enqueueLocked(s.changes, b)
	}
}

func appendGraphTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.0000000Z")
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}
