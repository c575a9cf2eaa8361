package domain

import (
	"errors"
	"time"
)

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
	SyncSnoozed   SyncOutcome = "snoozed" // paused for throttling, shutdown or the end of its slice; resumes from its checkpoint
	// SyncAbandoned closes a run whose worker died: its lease lapsed while
	// the run was still marked running. The next run resumes from the last
	// committed page.
	SyncAbandoned SyncOutcome = "abandoned"
)

// Link kinds of a SyncCheckpoint.
const (
	LinkNone  = ""
	LinkNext  = "next"  // resume the round from this page
	LinkDelta = "delta" // the round finished; the next round starts here
)

// SyncCheckpoint is where one resource's sync stands (table sync_state).
type SyncCheckpoint struct {
	Resource  string   // "users" or "groups"
	Link      string   // nextLink to resume from, or the round's deltaLink
	LinkKind  string   // LinkNone, LinkNext or LinkDelta
	Round     int64    // the current full round; rows seen in it carry it in seen_round
	RoundKind SyncKind // kind of the round the link belongs to
	// FullJob is the job that forced the current full round, or 0: a forced
	// full sync that snoozes or retries resumes its own round instead of
	// starting another.
	FullJob int64
}

// SyncApplied counts the rows one page changed.
type SyncApplied struct {
	Upserts int
	Deletes int
}

// RequestStats count what one Graph call cost, for sync_runs.
type RequestStats struct {
	Requests       int           // HTTP requests sent to Graph
	ThrottledWaits int           // Retry-After waits done in process
	ThrottledFor   time.Duration // total time of those waits
}

// UsersPage is one page of users/delta. Users and Removed are disjoint: when
// a page names a user twice, the last mention wins (protocol §5.2: replays and
// repeats happen). Decoding reuses the slices' memory.
type UsersPage struct {
	Users   []DirectoryUser // created or changed; TenantID unset
	Removed []string        // @removed, soft or hard deleted
	// SoftDeleted is the part of Removed whose @removed reason is "changed":
	// the user is in the tenant's deleted items and may be restored
	// (protocol §5.2); the rest were deleted for good.
	SoftDeleted []string
	NextLink    string
	DeltaLink   string
	Stats       RequestStats
}

// GroupsPage is one page of groups/delta. Groups holds groups whose
// properties the page carries; a large group repeats across pages with a
// slice of members@delta each (protocol §5.3) and may carry only members.
type GroupsPage struct {
	Groups         []Group // TenantID unset
	Removed        []string
	Members        []Membership // added; TenantID unset
	MembersRemoved []Membership
	NextLink       string
	DeltaLink      string
	Stats          RequestStats
}

// SyncCommit is what a page commits together with its rows.
type SyncCommit struct {
	Checkpoint SyncCheckpoint
	// Sweep (the last page of a full round) also deletes every row the
	// round did not see.
	Sweep bool
	// First says the page is the first of its round.
	First bool
	// Lease, when its Owner is set, must still be held; the commit extends it.
	Lease SyncLease
}

// SyncPage is a fetched page and what it commits, held to be applied with
// the run's end: the only page of a resource's round (dirsync). One of
// Users and Groups is set.
type SyncPage struct {
	Users  *UsersPage
	Groups *GroupsPage
	Commit SyncCommit
}

// ErrHeldPagesRefused means a store did not write held pages with the run's
// end, and wrote nothing: they are to be applied one by one, as they came.
var ErrHeldPagesRefused = errors.New("held pages are to be applied one by one")

// ErrSyncLeaseLost means a sync's lease lapsed and another sync took the
// tenant: the page was not committed and the sync must stop.
var ErrSyncLeaseLost = errors.New("sync lease lost to another worker")

// SyncLease is a sync's claim on its tenant: only the owner may commit
// pages, and every page it commits extends the claim by TTL. A claim that
// is not extended lapses, so a dead worker blocks its tenant for at most TTL.
type SyncLease struct {
	Owner string // a UUID chosen per job attempt
	TTL   time.Duration
}

// SyncStart is what a sync job reads as it begins (postgres.Store.SyncBegin).
type SyncStart struct {
	Tenant Tenant
	// Taken reports whether the lease was taken: false when another job
	// holds it, the tenant does not sync, or it is unknown.
	Taken bool
	// Abandoned is how many runs of a dead holder taking the lease closed.
	Abandoned int
	// Checkpoints are the tenant's checkpoints, read with the lease.
	Checkpoints []SyncCheckpoint
	// ThrottledUntil is the end of the tenant's Graph throttle window, or zero.
	ThrottledUntil time.Time
}

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

// SyncEnd is what the end of a successful round records besides its run:
// the tenant's next sync is due Interval after it, and LeaseOwner's sync
// lease (if any) is released.
type SyncEnd struct {
	Interval   time.Duration
	LeaseOwner string
}

// Duration is how long the run took, or has taken until now.
func (r SyncRun) Duration(now time.Time) time.Duration {
	if r.FinishedAt != nil {
		return r.FinishedAt.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}
