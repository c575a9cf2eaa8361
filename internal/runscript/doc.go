// Package runscript holds no code: its test runs scripts/run.sh (`make run`)
// as a real subprocess, with the real binaries and a real PostgreSQL, and
// proves the demo comes up with no Postgres answering and leaves nothing
// running after Ctrl-C (issue #15). It imports nothing of tenantsync.
package runscript
