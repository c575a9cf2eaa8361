// Package leaktest is the TestMain of every package whose code starts
// goroutines: it runs the tests and fails the package if goroutines outlive
// them. It imports nothing of tenantsync.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs m and fails on goroutines left behind, apart from
// pgxpool's health check and idle HTTP keep-alive connections, which close
// on their own, and the cleanup loop of the in-memory store that scs.New
// starts before the server swaps in the Postgres store (scs offers no way to
// create a session manager without it, and stopping it right away races
// with its start).
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"),
	)
}
