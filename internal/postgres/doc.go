// Package postgres is tenantsync's storage: a pgx pool, every SQL statement,
// and the goose migrations embedded from migrations/ (River's schema included).
// It imports domain only, besides its drivers.
//
// Files are laid out by table or concern, not by caller: tenants.go (the
// tenant row), tenant_events.go, tenant_list.go (the operators' listing),
// sync_lease.go and throttle.go (a sync's claim and Graph's throttle window,
// both kept on the tenant row), connect_states.go, sessions.go, directory.go
// and directory_list.go (the copy and its pages, directory.go also writing
// their change-feed events), change_events.go (reading and pruning the feed,
// docs/events.md), sync_state.go (checkpoints),
// sync_runs.go, river_jobs.go (reads of River's tables), and store.go,
// migrate.go, command.go, river.go for the pool, the schema and River's
// migration files.
package postgres
