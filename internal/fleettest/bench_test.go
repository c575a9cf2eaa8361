package fleettest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/procstat"
	"github.com/tenantsync/tenantsync/internal/queue"
)

// Sizes and the worker binary of BenchmarkFleetRound (make bench-fleet
// TENANTS=… USERS=… WORKER=…).
var (
	benchTenants = flag.Int("fleet.tenants", 1000, "BenchmarkFleetRound: consented tenants, all due at once")
	benchUsers   = flag.Int("fleet.users", 50, "BenchmarkFleetRound: users per tenant")
	benchWorker  = flag.String("fleet.worker", "", "BenchmarkFleetRound: a worker binary to measure instead of this tree's (a baseline built from another commit)")
	benchPprof   = flag.String("fleet.pprof", "", "BenchmarkFleetRound: a directory for CPU profiles of the worker, one per round, each of the round's first -fleet.pprofsec seconds (WORKER_PPROF)")
	benchPprofS  = flag.Int("fleet.pprofsec", 10, "BenchmarkFleetRound: seconds of each round that -fleet.pprof profiles")
	benchCountRT = flag.Bool("fleet.roundtrips", true, "BenchmarkFleetRound: count the worker's Postgres round trips through a relay (pgProxy), which costs the machine CPU and context switches the product does not pay; false connects the worker straight to Postgres and reports no round trips")
)

// sampleHeap reads the worker's heap in use (go_memstats_heap_inuse_bytes
// on its /metrics) every second until peak is called, which returns the
// largest seen. The worker's peak RSS bounds it from above, with what the
// Go runtime keeps besides the heap.
func sampleHeap(addr string) (peak func() int64) {
	var peakSeen int64 // written by the sampler until done is closed
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if v, ok := heapInUse(addr); ok {
				peakSeen = max(peakSeen, v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		if v, ok := heapInUse(addr); ok {
			peakSeen = max(peakSeen, v)
		}
		return peakSeen
	}
}

// heapInUse is go_memstats_heap_inuse_bytes from the worker's /metrics.
func heapInUse(addr string) (int64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err == nil
		}
	}
	return 0, false
}

// saveHeapProfile saves the worker's heap profile (live objects as of its
// last GC, and what was allocated) to dir/heap.pprof.
func saveHeapProfile(b *testing.B, addr, dir string) {
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?gc=1")
	if err != nil {
		b.Errorf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode == http.StatusOK {
		err = os.WriteFile(filepath.Join(dir, "heap.pprof"), body, 0o644)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Errorf("heap profile: %s %v", resp.Status, err)
	}
}

// profileWorker saves a CPU profile of the worker's next seconds to
// dir/name.pprof, in the background; wait waits for it.
func profileWorker(b *testing.B, addr, dir, name string, seconds int) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The worker may be starting still: its listener comes up first.
		var resp *http.Response
		var err error
		for range 100 {
			if resp, err = http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds)); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			b.Errorf("profile %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			b.Errorf("profile %s: %v", name, err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			b.Errorf("profile %s: %s %v", name, resp.Status, err)
		}
	}()
	return func() { <-done }
}

// BenchmarkFleetRound measures whole sync rounds of a fleet of small
// tenants with the real worker process (default configuration) against the
// emulator: the first sync of every tenant once, then b.N steady rounds
// with no changes. Per round it reports tenants/s (from the first run's
// start to the last run's end, as Postgres recorded them), Postgres round
// trips per tenant (counted by a relay between worker and Postgres, unless
// -fleet.roundtrips=false), Graph and token requests per tenant, and CPU
// per tenant of the worker and of the emulator separately (so the
// emulator's own cost is visible and left out of the worker's).
//
// The relay is the benchmark's, not the product's: it doubles the wakeups
// of every round trip and takes CPU of its own, which a CPU-bound worker
// pays in tenants/s. Comparisons of tenants/s and CPU (make
// bench-fleet-ab) run without it.
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
	var proxy *pgProxy
	if *benchCountRT {
		var proxied string
		proxy, proxied = startPGProxy(b, direct)
		h.dbURL = proxied // the worker's connections go through the counter; the harness's own do not
	}
	if *benchWorker != "" {
		h.workerBin = *benchWorker
	}
	h.insertTenants()
	inserter, err := queue.NewInserter(h.db)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	admin := freeAddr(b)
	h.env["WORKER_ADMIN_ADDR"] = admin
	profile := func(string) func() { return func() {} }
	if dir := *benchPprof; dir != "" {
		h.env["WORKER_PPROF"] = "true"
		profile = func(name string) func() { return profileWorker(b, admin, dir, name, *benchPprofS) }
	}
	var before roundCost
	h.startWorker()
	peakHeap := sampleHeap(admin)
	before.read(h, proxy)
	start := h.dbNow()
	profiled := profile("first")
	took := h.waitRound("first sync of every tenant", start)
	first := h.roundCost(proxy, start, before)
	profiled()
	h.logRound("first sync of every tenant", took)

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
		profiled := profile("steady")
		if _, err := inserter.Insert(ctx, queue.SyncFanoutArgs{}, nil); err != nil {
			b.Fatal(err)
		}
		took := h.waitRound("a steady round", start)
		steady.add(h.roundCost(proxy, start, c))
		profiled()
		h.logRound("a steady round", took)
	}
	b.StopTimer()
	// Reported after the loop: ResetTimer deletes metrics reported before it.
	first.report(b, "first", n)
	steady.report(b, "steady", n*b.N)
	if proxy != nil {
		first.reportRoundTrips(b, "first", n)
		steady.reportRoundTrips(b, "steady", n*b.N)
	}
	// The worker's peak resident memory bounds its heap from above
	// (issue 13: heap under 512 MiB at 100,000 tenants).
	b.ReportMetric(float64(procPeakRSS(b, h.worker.cmd.Process.Pid))/(1<<20), "worker-peak-rss-MiB")
	b.ReportMetric(float64(peakHeap())/(1<<20), "worker-peak-heap-MiB")
	if dir := *benchPprof; dir != "" {
		saveHeapProfile(b, admin, dir)
	}
	if lines := h.errorLines(); len(lines) > 0 {
		b.Fatalf("the worker logged errors:\n%s", strings.Join(lines, "\n"))
	}
}

// roundCost is what one or more rounds cost.
type roundCost struct {
	wall                     time.Duration
	roundTrips, graph, token int64
	workerCPU, emuCPU        time.Duration
	machineCPU, postgresCPU  time.Duration
}

func (c *roundCost) read(h *harness, p *pgProxy) {
	h.t.Helper()
	var cnt entraemu.Counters
	h.emu.control(h.t, http.MethodGet, "/counters", nil, &cnt)
	c.graph, c.token = int64(cnt.GraphRequests), int64(cnt.TokenRequests)
	if p != nil {
		c.roundTrips = p.roundTrip.Load()
	}
	c.workerCPU = h.cpu(procstat.Process(h.worker.cmd.Process.Pid))
	c.emuCPU = h.cpu(procstat.Process(h.emu.proc.cmd.Process.Pid))
	c.machineCPU = h.cpu(procstat.Machine())
	// The worker's connections live through a round, so their backends'
	// growth is what the round cost Postgres.
	c.postgresCPU = h.cpu(procstat.Postgres())
}

// cpu is a procstat reading; the benchmark stops when it fails.
func (h *harness) cpu(d time.Duration, err error) time.Duration {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (c *roundCost) add(d roundCost) {
	c.wall += d.wall
	c.roundTrips += d.roundTrips
	c.graph += d.graph
	c.token += d.token
	c.workerCPU += d.workerCPU
	c.emuCPU += d.emuCPU
	c.machineCPU += d.machineCPU
	c.postgresCPU += d.postgresCPU
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
		wall:        last.Sub(first),
		roundTrips:  after.roundTrips - before.roundTrips,
		graph:       after.graph - before.graph,
		token:       after.token - before.token,
		workerCPU:   after.workerCPU - before.workerCPU,
		emuCPU:      after.emuCPU - before.emuCPU,
		machineCPU:  after.machineCPU - before.machineCPU,
		postgresCPU: after.postgresCPU - before.postgresCPU,
	}
}

func (c roundCost) report(b *testing.B, round string, tenants int) {
	t := float64(tenants)
	b.ReportMetric(t/c.wall.Seconds(), round+"-tenants/s")
	b.ReportMetric(float64(c.graph)/t, round+"-graph-requests/tenant")
	b.ReportMetric(float64(c.token)/t, round+"-token-requests/tenant")
	b.ReportMetric(float64(c.workerCPU.Microseconds())/t, round+"-worker-cpu-µs/tenant")
	b.ReportMetric(float64(c.emuCPU.Microseconds())/t, round+"-emulator-cpu-µs/tenant")
	// The whole machine's: mostly Postgres beside the two above (and
	// whatever else runs meanwhile, so a quiet machine is wanted).
	b.ReportMetric(float64(c.machineCPU.Microseconds())/t, round+"-machine-cpu-µs/tenant")
	b.ReportMetric(float64(c.postgresCPU.Microseconds())/t, round+"-postgres-cpu-µs/tenant")
	// The product's own: the worker's and Postgres's, without the
	// emulator's, which stands for Microsoft's side (its token signing most
	// of all) yet shares this machine's cores. On a CPU-bound machine
	// tenants/s follows the machine's speed; this follows the code.
	b.ReportMetric(float64((c.workerCPU+c.postgresCPU).Microseconds())/t, round+"-product-cpu-µs/tenant")
}

// reportRoundTrips reports the rounds' Postgres round trips per tenant,
// counted by the relay (-fleet.roundtrips).
func (c roundCost) reportRoundTrips(b *testing.B, round string, tenants int) {
	b.ReportMetric(float64(c.roundTrips)/float64(tenants), round+"-pg-roundtrips/tenant")
}

func (h *harness) dbNow() time.Time {
	h.t.Helper()
	var now time.Time
	if err := h.db.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		h.t.Fatal(err)
	}
	return now
}

// waitRound waits until every tenant has synced since start, polling one
// count a second, and returns how long that took. It does not poll the
// harness's snapshot (waitUntil): its counts over every directory row and
// run cost Postgres more than a second of CPU per second at 100,000
// tenants, which the benchmark billed to the worker's round; the snapshot
// is logged after the round is measured (logRound). It counts the tenants
// still to sync, in tenants_last_sync_idx (shrinking as the round goes),
// not those synced: that count read the whole table every second, about
// 180 ms of Postgres at 100,000 tenants (pg_stat_statements, docs/benchmarks.md).
func (h *harness) waitRound(what string, start time.Time) time.Duration {
	h.t.Helper()
	begin := time.Now()
	last, lastMove := -1, begin
	for {
		var left int
		err := h.db.QueryRow(context.Background(),
			`SELECT count(*) FROM tenants WHERE coalesce(last_synced_at, '-infinity') < $1`, start).Scan(&left)
		if err == nil && left == 0 {
			return time.Since(begin)
		}
		n := len(h.tids) - left
		if n != last {
			last, lastMove = n, time.Now()
		}
		switch {
		case h.worker != nil && h.worker.exited():
			h.fatal(what, fmt.Sprintf("%s exited (%v) after %s", h.worker.name, h.worker.err, time.Since(begin).Round(time.Second)), h.snapshot())
		case time.Since(lastMove) > 2*time.Minute:
			h.fatal(what, fmt.Sprintf("no progress for 2m0s (deadlock?) after %s", time.Since(begin).Round(time.Second)), h.snapshot())
		case time.Since(begin) > 2*time.Hour:
			h.fatal(what, "not done after 2h0m0s", h.snapshot())
		}
		time.Sleep(time.Second)
	}
}

// logRound logs a measured round with the harness's snapshot.
func (h *harness) logRound(what string, took time.Duration) {
	h.t.Helper()
	h.t.Logf("%s after %s: %s", what, took.Round(time.Second), h.snapshot())
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
