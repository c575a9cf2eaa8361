// Package fleettest holds no code: its tests run the real worker and
// emulator binaries as subprocesses against a real Postgres and prove the
// worker holds up as a fleet (hundreds of tenants at once), when it is
// killed mid-round, and when Postgres restarts under it (issue #11).
// Only its _test.go files import other tenantsync packages.
package fleettest
