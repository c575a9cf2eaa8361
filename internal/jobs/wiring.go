package jobs

import (
	"context"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/graph"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// graphSource adapts graph.Client to dirsync.Source. The page slices move
// between the two page types without copying, so their memory is reused.
type graphSource struct{ c *graph.Client }

func (s graphSource) UsersDelta(ctx context.Context, tenantID, link string, p *dirsync.UsersPage) error {
	gp := graph.UsersPage{Users: p.Users, Removed: p.Removed}
	err := s.c.UsersDelta(ctx, tenantID, link, &gp)
	*p = dirsync.UsersPage{Users: gp.Users, Removed: gp.Removed, NextLink: gp.NextLink, DeltaLink: gp.DeltaLink, Stats: dirsync.Stats(gp.Stats)}
	return err
}

func (s graphSource) GroupsDelta(ctx context.Context, tenantID, link string, p *dirsync.GroupsPage) error {
	gp := graph.GroupsPage{Groups: p.Groups, Removed: p.Removed, Members: p.Members, MembersRemoved: p.MembersRemoved}
	err := s.c.GroupsDelta(ctx, tenantID, link, &gp)
	*p = dirsync.GroupsPage{
		Groups: gp.Groups, Removed: gp.Removed, Members: gp.Members, MembersRemoved: gp.MembersRemoved,
		NextLink: gp.NextLink, DeltaLink: gp.DeltaLink, Stats: dirsync.Stats(gp.Stats),
	}
	return err
}

// syncStore adapts postgres.Store to dirsync.Store.
type syncStore struct{ s *postgres.Store }

func (s syncStore) SyncState(ctx context.Context, tenantID string) ([]domain.SyncCheckpoint, error) {
	return s.s.SyncStateList(ctx, tenantID)
}

func (s syncStore) ApplyUsers(ctx context.Context, tenantID string, p *dirsync.UsersPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	return s.s.DirectoryUsersApply(ctx, tenantID, p.Users, p.Removed, c)
}

func (s syncStore) ApplyGroups(ctx context.Context, tenantID string, p *dirsync.GroupsPage, c domain.SyncCommit) (domain.SyncApplied, error) {
	return s.s.DirectoryGroupsApply(ctx, tenantID, p.Groups, p.Removed, p.Members, p.MembersRemoved, c)
}

func (s syncStore) SyncRunStart(ctx context.Context, tenantID string, kind domain.SyncKind) (int64, error) {
	return s.s.SyncRunStart(ctx, tenantID, kind)
}

func (s syncStore) SyncRunFinish(ctx context.Context, run domain.SyncRun) error {
	return s.s.SyncRunFinish(ctx, run)
}

// NewSyncer wires dirsync to Graph and Postgres.
func NewSyncer(c *graph.Client, st *postgres.Store) *dirsync.Syncer {
	return dirsync.New(graphSource{c}, syncStore{st}, nil)
}

// NewSyncSource is the Graph client as a dirsync.Source.
func NewSyncSource(c *graph.Client) dirsync.Source { return graphSource{c} }

// NewSyncStore is the Postgres store as a dirsync.Store.
func NewSyncStore(st *postgres.Store) dirsync.Store { return syncStore{st} }
