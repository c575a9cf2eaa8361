package fleettest

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// Sizes and the worker binary of BenchmarkFleetRound (make bench-fleet
// TENANTS=… USERS=… WORKER=…).
var (
	benchTenants = flag.Int("fleet.tenants", 1000, "BenchmarkFleetRound: consented tenants, all due at once")
	benchUsers   = flag.Int("fleet.users", 50, "BenchmarkFleetRound: users per tenant")
	benchWorker  = flag.String("fleet.worker", "", "BenchmarkFleetRound: a worker binary to measure instead of this tree's (a baseline built from another commit)")
)

// BenchmarkFleetRound measures whole sync rounds of a fleet of small
// tenants with the real worker process (default configuration) against the
// emulator: the first sync of every tenant once, then b.N steady rounds
// with no changes. Per round it reports tenants/s (from the first run's
// start to the last run's end, as Postgres recorded them), Postgres round
// trips per tenant (counted by a proxy between worker and Postgres), Graph
// and token requests per tenant, and CPU per tenant of the worker and of
// the emulator separately (so the emulator's own cost is visible and left
// out of the worker's).
func BenchmarkFleetRound(b *testing.B) {
	n, users := *benchTenants, *benchUsers
	seed := entraemu.SmallSeed()
	seed.Tenants = seed.Tenants[:1]
	tids := make([]string, n)
	for i := range tids {
		tids[i] = fleetTenantID(i)
		seed.Tenants = append(seed.Tenants, entraemu.Tenant{
			ID: tids[i], DisplayName: fmt.Sprintf("Fleet %d", i), Domains: []string{fmt.Sprintf("fleet%d.example", i)}, Consented: true,
			Generate: &entraemu.Generate{Users: users, Groups: 2, MembersPerGroup: min(users, 10), Seed: int64(i + 1)},
		})
	}
	direct := pgtest.URL(b)
	h := newHarness(b, seed, tids, direct)
	proxy, proxied := startPGProxy(b, direct)
	h.dbURL = proxied // the worker's connections go through the counter; the harness's own do not
	if *benchWorker != "" {
		h.workerBin = *benchWorker
	}
	h.insertTenants()
	inserter, err := queue.NewInserter(h.db)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	var before roundCost
	h.startWorker()
	before.read(h, proxy)
	start := h.dbNow()
	h.waitRound("first sync of every tenant", start)
	first := h.roundCost(proxy, start, before)

	b.ResetTimer()
	var steady roundCost
	for range b.N {
		var c roundCost
		c.read(h, proxy)
		start := h.dbNow()
		if _, err := h.db.Exec(ctx, `UPDATE tenants SET next_sync_at = now()`); err != nil {
			b.Fatal(err)
		}
		// The fan-out runs every minute; start it now rather than measure
		// the wait for its tick.
		if _, err := inserter.Insert(ctx, queue.SyncFanoutArgs{}, nil); err != nil {
			b.Fatal(err)
		}
		h.waitRound("a steady round", start)
		steady.add(h.roundCost(proxy, start, c))
	}
	b.StopTimer()
	// Reported after the loop: ResetTimer deletes metrics reported before it.
	first.report(b, "first", n)
	steady.report(b, "steady", n*b.N)
	// The worker's peak resident memory bounds its heap from above
	// (issue 13: heap under 512 MiB at 100,000 tenants).
	b.ReportMetric(float64(procPeakRSS(b, h.worker.cmd.Process.Pid))/(1<<20), "worker-peak-rss-MiB")
	if lines := h.errorLines(); len(lines) > 0 {
		b.Fatalf("the worker logged errors:\n%s", strings.Join(lines, "\n"))
	}
}

// roundCost is what one or more rounds cost.
type roundCost struct {
	wall                     time.Duration
	roundTrips, graph, token int64
	workerCPU, emuCPU        time.Duration
}

func (c *roundCost) read(h *harness, p *pgProxy) {
	h.t.Helper()
	var cnt entraemu.Counters
	h.emu.control(h.t, http.MethodGet, "/counters", nil, &cnt)
	c.roundTrips, c.graph, c.token = p.roundTrip.Load(), int64(cnt.GraphRequests), int64(cnt.TokenRequests)
	c.workerCPU, c.emuCPU = procCPU(h.t, h.worker.cmd.Process.Pid), procCPU(h.t, h.emu.proc.cmd.Process.Pid)
}

func (c *roundCost) add(d roundCost) {
	c.wall += d.wall
	c.roundTrips += d.roundTrips
	c.graph += d.graph
	c.token += d.token
	c.workerCPU += d.workerCPU
	c.emuCPU += d.emuCPU
}

// roundCost is the round since start: its wall time as Postgres recorded
// the runs, and the counters' growth since before.
func (h *harness) roundCost(p *pgProxy, start time.Time, before roundCost) roundCost {
	h.t.Helper()
	var first, last time.Time
	if err := h.db.QueryRow(context.Background(),
		`SELECT min(started_at), max(finished_at) FROM sync_runs WHERE started_at >= $1`, start).Scan(&first, &last); err != nil {
		h.t.Fatal(err)
	}
	var after roundCost
	after.read(h, p)
	return roundCost{
		wall:       last.Sub(first),
		roundTrips: after.roundTrips - before.roundTrips,
		graph:      after.graph - before.graph,
		token:      after.token - before.token,
		workerCPU:  after.workerCPU - before.workerCPU,
		emuCPU:     after.emuCPU - before.emuCPU,
	}
}

func (c roundCost) report(b *testing.B, round string, tenants int) {
	t := float64(tenants)
	b.ReportMetric(t/c.wall.Seconds(), round+"-tenants/s")
	b.ReportMetric(float64(c.roundTrips)/t, round+"-pg-roundtrips/tenant")
	b.ReportMetric(float64(c.graph)/t, round+"-graph-requests/tenant")
	b.ReportMetric(float64(c.token)/t, round+"-token-requests/tenant")
	b.ReportMetric(float64(c.workerCPU.Microseconds())/t, round+"-worker-cpu-µs/tenant")
	b.ReportMetric(float64(c.emuCPU.Microseconds())/t, round+"-emulator-cpu-µs/tenant")
}

func (h *harness) dbNow() time.Time {
	h.t.Helper()
	var now time.Time
	if err := h.db.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		h.t.Fatal(err)
	}
	return now
}

// waitRound waits until every tenant has synced since start.
func (h *harness) waitRound(what string, start time.Time) {
	h.t.Helper()
	h.waitUntil(what, 2*time.Hour, 2*time.Minute, func(snapshot) bool {
		var n int
		err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM tenants WHERE last_synced_at >= $1`, start).Scan(&n)
		return err == nil && n == len(h.tids)
	})
}

// procCPU is the user and system CPU time a process has used so far
// (proc(5): utime and stime, fields 14 and 15 of /proc/pid/stat, in clock
// ticks of 1/100 s on Linux).
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; count from after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procPeakRSS is a process's peak resident set size in bytes (proc(5):
// VmHWM in /proc/pid/status, in kB).
func procPeakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: %q", pid, line)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no VmHWM", pid)
	return 0
}
