package domain

import "time"

// DirectoryUser is a user in a tenant's synced directory copy.
type DirectoryUser struct {
	TenantID          string `db:"tenant_id"`
	ID                string `db:"id"`
	UserPrincipalName string `db:"user_principal_name"`
	DisplayName       string `db:"display_name"`
	GivenName         string `db:"given_name"`
	Surname           string `db:"surname"`
	Mail              string `db:"mail"`
	JobTitle          string `db:"job_title"`
	AccountEnabled    bool   `db:"account_enabled"`
}

// Group is a group in a tenant's synced directory copy.
type Group struct {
	TenantID    string `db:"tenant_id"`
	ID          string `db:"id"`
	DisplayName string `db:"display_name"`
	Description string `db:"description"`
}

// Membership says that a directory object belongs to a group.
type Membership struct {
	TenantID string `db:"tenant_id"`
	GroupID  string `db:"group_id"`
	MemberID string `db:"member_id"`
}

// DirectoryCounts sizes a tenant's synced directory copy.
type DirectoryCounts struct {
	Users       int `db:"users"`
	Groups      int `db:"groups"`
	Memberships int `db:"memberships"`
}

// SyncKind says whether a run read everything or only changes.
type SyncKind string

// Sync kinds.
const (
	SyncFull  SyncKind = "full"
	SyncDelta SyncKind = "delta"
)

// SyncOutcome is how a sync run ended.
type SyncOutcome string

// Sync outcomes; a run is "running" until it ends.
const (
	SyncRunning   SyncOutcome = "running"
	SyncSucceeded SyncOutcome = "succeeded"
	SyncFailed    SyncOutcome = "failed"
	SyncSnoozed   SyncOutcome = "snoozed" // paused for throttling or shutdown; resumes from its checkpoint
)

// SyncRun is one sync of one tenant's directory.
type SyncRun struct {
	ID             int64       `db:"id"`
	TenantID       string      `db:"tenant_id"`
	Kind           SyncKind    `db:"kind"`
	StartedAt      time.Time   `db:"started_at"`
	FinishedAt     *time.Time  `db:"finished_at"`
	Pages          int         `db:"pages"`
	Upserts        int         `db:"upserts"`
	Deletes        int         `db:"deletes"`
	Requests       int         `db:"requests"`
	ThrottledWaits int         `db:"throttled_waits"`
	ThrottledFor   int64       `db:"throttled_ms"` // total time waited on Retry-After, in milliseconds
	Outcome        SyncOutcome `db:"outcome"`
	Error          string      `db:"error"`      // for people
	ErrorCode      string      `db:"error_code"` // raw Graph code or AADSTS number
}

// Duration is how long the run took, or has taken until now.
func (r SyncRun) Duration(now time.Time) time.Duration {
	if r.FinishedAt != nil {
		return r.FinishedAt.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}
