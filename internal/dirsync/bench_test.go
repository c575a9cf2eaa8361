package dirsync_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantsync/tenantsync/internal/dirsync"
	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/entraemu"
	"github.com/tenantsync/tenantsync/internal/jobs/jobstest"
	"github.com/tenantsync/tenantsync/internal/postgres"
	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
	"github.com/tenantsync/tenantsync/internal/procstat"
)

const benchTenant = "0b5e4c1e-6a43-4f7e-9d1c-b3a5c7e90001"

// bigSeed is SmallSeed plus one consented tenant of users generated users.
func bigSeed(users int) *entraemu.Seed {
	s := entraemu.SmallSeed()
	s.Tenants = append(s.Tenants, entraemu.Tenant{
		ID: benchTenant, DisplayName: "Bench", Domains: []string{"bench.example"}, Consented: true,
		Generate: &entraemu.Generate{Users: users, Groups: 50, MembersPerGroup: 100, Seed: 9},
	})
	return s
}

// heapPeak samples the live heap every few milliseconds until stopped.
type heapPeak struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > h.peak.Load() {
				h.peak.Store(ms.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) done() uint64 { close(h.stop); h.wg.Wait(); return h.peak.Load() }

// settle vacuums the directory tables and the feed, so that the next write
// finds them as a new tenant's first sync does: without the dead index
// entries a purge (or a raw COPY's cleanup) left in the same key range,
// which every later insert there must check and step over. A sync and the
// raw COPY it is compared with each start settled.
func settle(b *testing.B, bd *bundle) {
	b.Helper()
	if _, err := bd.pool.Exec(context.Background(),
		`VACUUM directory_users, directory_groups, group_members, directory_user_tombstones, change_events`); err != nil {
		b.Fatal(err)
	}
}

// cpuMeter adds up the CPU time of this process (the syncer and the
// emulator serving it) and of the machine's Postgres over what it
// measures; unread when Postgres's cannot be read here.
type cpuMeter struct {
	self, pg   time.Duration
	self0, pg0 time.Duration
	unread     bool
}

func (m *cpuMeter) start(b *testing.B) {
	b.Helper()
	var err error
	if m.self0, err = procstat.Self(); err != nil {
		b.Fatal(err)
	}
	m.pg0, err = procstat.Postgres()
	m.unread = m.unread || err != nil
}

func (m *cpuMeter) stop(b *testing.B) {
	b.Helper()
	self, err := procstat.Self()
	if err != nil {
		b.Fatal(err)
	}
	pg, err := procstat.Postgres()
	m.unread = m.unread || err != nil
	m.self += self - m.self0
	m.pg += pg - m.pg0
}

func (m *cpuMeter) add(o cpuMeter) {
	m.self += o.self
	m.pg += o.pg
	m.unread = m.unread || o.unread
}

func setupBench(b *testing.B, users int) *bundle {
	b.Helper()
	srv := entraemu.StartTest(b, entraemu.Config{Seed: bigSeed(users), DeltaPageSize: 999, ThrottleScale: 1e6})
	pool := pgtest.Pool(b)
	bd := newBundle(b, srv, postgres.New(pool), benchTenant, nil)
	bd.pool = pool
	return bd
}

// rawCopy is the ingest ceiling: the same rows COPYed straight into
// directory_users of another tenant, in one transaction.
func rawCopy(b *testing.B, bd *bundle, users []domain.DirectoryUser) time.Duration {
	return rawCopyPaged(b, bd, users, len(users), nil)
}

// rawCopyPaged is rawCopy in transactions of page rows, each COPYing in a
// savepoint as a bulk page does (internal/postgres/directory_bulk.go). It
// starts settled; cpu, when not nil, measures it.
func rawCopyPaged(b *testing.B, bd *bundle, users []domain.DirectoryUser, page int, cpu *cpuMeter) time.Duration {
	b.Helper()
	ctx := context.Background()
	other := "0b5e4c1e-6a43-4f7e-9d1c-b3a5c7e90002"
	if _, err := bd.store.TenantUpsertConsented(ctx, other, "bench", "oid"); err != nil {
		b.Fatal(err)
	}
	settle(b, bd)
	if cpu != nil {
		cpu.start(b)
	}
	start := time.Now()
	// IDs go as 16-byte UUIDs, parsed here: handed to pgx as strings, each
	// would first fail the binary uuid encoding and be retried through
	// text, which costs more than the row (and made this ceiling low).
	tid := pgtype.UUID{Bytes: uuid.MustParse(other), Valid: true}
	for lo := 0; lo < len(users); lo += page {
		rows := users[lo:min(lo+page, len(users))]
		err := bd.store.Tx(ctx, func(tx pgx.Tx, _ *postgres.Store) error {
			if page < len(users) {
				if _, err := tx.Exec(ctx, `SAVEPOINT bulk_page`); err != nil {
					return err
				}
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"directory_users"},
				[]string{"tenant_id", "id", "user_principal_name", "display_name", "given_name", "surname", "mail", "job_title", "account_enabled"},
				pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
					u := &rows[i]
					id, err := uuid.Parse(u.ID)
					if err != nil {
						return nil, err
					}
					return []any{tid, pgtype.UUID{Bytes: id, Valid: true}, u.UserPrincipalName, u.DisplayName, u.GivenName, u.Surname, u.Mail, u.JobTitle, u.AccountEnabled}, nil
				}))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	if cpu != nil {
		cpu.stop(b)
	}
	if err := bd.store.Tx(ctx, func(tx pgx.Tx, _ *postgres.Store) error {
		_, err := tx.Exec(ctx, `DELETE FROM directory_users WHERE tenant_id = $1`, other)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkRawCopyPaged prices the ceiling of a sync that commits page by
// page: 100,000 user rows COPYed in transactions of one Graph page (999)
// and of the pages the sync merges when Postgres is the slower side (9 ×
// 999), each against one COPY of them all in the same run.
func BenchmarkRawCopyPaged(b *testing.B) {
	const n = 100_000
	bd := setupBench(b, n)
	ctx := context.Background()
	if _, err := bd.syncer.Sync(ctx, bd.tid, dirsync.Options{}); err != nil {
		b.Fatal(err)
	}
	users, err := bd.store.DirectoryUsers(ctx, bd.tid)
	if err != nil || len(users) != n {
		b.Fatalf("synced %d users, want %d: %v", len(users), n, err)
	}
	var one, p999, p9k time.Duration
	for i := 0; i < b.N; i++ {
		one += rawCopy(b, bd, users)
		p999 += rawCopyPaged(b, bd, users, 999, nil)
		p9k += rawCopyPaged(b, bd, users, 9*999, nil)
	}
	b.ReportMetric(float64(n*b.N)/one.Seconds(), "one-copy-rows/s")
	b.ReportMetric(one.Seconds()/p999.Seconds(), "pages-of-999-ratio")
	b.ReportMetric(one.Seconds()/p9k.Seconds(), "pages-of-8991-ratio")
}

// BenchmarkFullSync100k syncs a 100,000-user tenant from the emulator into
// Postgres (users, groups, memberships, and their creation events) and
// compares the users/s with a raw COPY of the same user rows, alternating
// in the same run, each starting settled; ratio-to-raw-copy-events-off is
// the same sync without directory events (issue 13,
// internal/postgres/directory_bulk.go).
//
// It also prices the sync in CPU (this process's — the syncer and the
// emulator serving it — and Postgres's) and reports ratio-ceiling: the
// ratio the sync could reach on this machine's cores if it kept every one
// busy with its work and nothing else, raw COPY's wall time over the
// sync's CPU time spread over runtime.NumCPU() cores. A sync's wall time
// cannot be shorter than that, so no change to how the work is scheduled
// (pipelining, connections in parallel) lifts the ratio above it; only
// doing less work does. ratio-ceiling-events-off is the same for the sync
// without events.
func BenchmarkFullSync100k(b *testing.B) {
	const n = 100_000
	bd := setupBench(b, n)
	ctx := context.Background()
	// The same sync without directory events, to tell the write path's cost
	// from the change feed's (BenchmarkFullSync100kEvents prices that).
	_, gc := jobstest.Clients(b, bd.srv, "")
	noEvents := dirsync.New(gc, bd.store.WithoutDirectoryEvents(), nil)
	// fullSync runs one full sync from an empty, settled copy and returns
	// its time, requests and the peak heap while it ran; cpu, when not nil,
	// measures it.
	var job int64
	fullSync := func(syncer *dirsync.Syncer, opt dirsync.Options, cpu *cpuMeter) (time.Duration, int, uint64) {
		b.StopTimer()
		if err := bd.store.DirectoryPurge(ctx, bd.tid); err != nil {
			b.Fatal(err)
		}
		settle(b, bd)
		runtime.GC()
		h := startHeapPeak()
		if cpu != nil {
			cpu.start(b)
		}
		b.StartTimer()
		start := time.Now()
		job++
		opt.FullJob = job
		run, err := syncer.Sync(ctx, bd.tid, opt)
		d := time.Since(start)
		b.StopTimer()
		if cpu != nil {
			cpu.stop(b)
		}
		peak := h.done()
		if err != nil {
			b.Fatal(err)
		}
		return d, run.Requests, peak
	}
	var total, seq, quiet, raw time.Duration
	var syncCPU, quietCPU, rawCPU cpuMeter
	var requests int
	var peak uint64
	for i := 0; i < b.N; i++ {
		d, r, p := fullSync(bd.syncer, dirsync.Options{}, &syncCPU)
		total += d
		requests += r
		peak = max(peak, p)
		// The raw COPY's rows are read from the copy just written, in each
		// iteration: held across it, they would count in the syncs' peak heap.
		users, err := bd.store.DirectoryUsers(ctx, bd.tid)
		if err != nil || len(users) != n {
			b.Fatalf("synced %d users, want %d: %v", len(users), n, err)
		}
		// The baseline is the faster of one COPY and COPYs of 9 × 999 rows
		// (in as many transactions): one COPY of them all can be the slower,
		// its statement's transition table (migration 00100's tenant check)
		// spilling past work_mem (BenchmarkRawCopyPaged).
		var one, paged cpuMeter
		d1 := rawCopyPaged(b, bd, users, len(users), &one)
		d2 := rawCopyPaged(b, bd, users, 9*999, &paged)
		if d2 < d1 {
			d1, one = d2, paged
		}
		raw += d1
		rawCPU.add(one)
		d, _, _ = fullSync(bd.syncer, dirsync.Options{Sequential: true}, nil)
		seq += d
		d, _, _ = fullSync(noEvents, dirsync.Options{}, &quietCPU)
		quiet += d
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(n/per(total), "users/s")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(n/per(raw), "raw-copy-users/s")
	b.ReportMetric(raw.Seconds()/total.Seconds(), "ratio-to-raw-copy")
	b.ReportMetric(raw.Seconds()/quiet.Seconds(), "ratio-to-raw-copy-events-off")
	b.ReportMetric(seq.Seconds()/total.Seconds(), "speedup-vs-sequential")
	if syncCPU.unread || quietCPU.unread || rawCPU.unread {
		b.Log("Postgres's CPU cannot be read on this machine: no CPU figures")
		return
	}
	ms := func(d time.Duration) float64 { return 1000 * per(d) }
	b.ReportMetric(ms(syncCPU.self), "sync-process-cpu-ms")
	b.ReportMetric(ms(syncCPU.pg), "sync-postgres-cpu-ms")
	b.ReportMetric(ms(rawCPU.self), "raw-copy-process-cpu-ms")
	b.ReportMetric(ms(rawCPU.pg), "raw-copy-postgres-cpu-ms")
	ceiling := func(m cpuMeter) float64 {
		return raw.Seconds() / ((m.self + m.pg).Seconds() / float64(runtime.NumCPU()))
	}
	b.ReportMetric(ceiling(syncCPU), "ratio-ceiling")
	b.ReportMetric(ceiling(quietCPU), "ratio-ceiling-events-off")
}

// BenchmarkIncremental100 changes 100 users of a 100,000-user tenant and
// runs a delta round; it reports the requests (want ≤ 2) and the time as a
// fraction of a full sync measured in the same run.
func BenchmarkIncremental100(b *testing.B) {
	const n = 100_000
	bd := setupBench(b, n)
	ctx := context.Background()
	start := time.Now()
	if _, err := bd.syncer.Sync(ctx, bd.tid, dirsync.Options{FullJob: 1}); err != nil {
		b.Fatal(err)
	}
	full := time.Since(start)
	dir := bd.srv.Directory(bd.tid)
	var total time.Duration
	var requests int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for k := range 100 {
			u := dir.Users[(i*100+k)%len(dir.Users)]
			u.JobTitle = fmt.Sprintf("Title %d", i)
			if err := bd.srv.UpdateUser(bd.tid, u); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		t0 := time.Now()
		run, err := bd.syncer.Sync(ctx, bd.tid, dirsync.Options{})
		total += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if run.Kind != domain.SyncDelta || run.Upserts < 100 {
			b.Fatalf("delta round: %+v", run)
		}
		requests += run.Requests
	}
	b.StopTimer()
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(per.Seconds()/full.Seconds(), "ratio-to-full")
	b.ReportMetric(float64(full.Milliseconds()), "full-ms")
}

// BenchmarkFullSync1M syncs a 1,000,000-user tenant once per iteration and
// reports the peak heap of the process while it runs (the emulator serving
// the pages lives in the same process, so this is an upper bound for the
// syncer; target < 64 MiB) and users/s.
func BenchmarkFullSync1M(b *testing.B) {
	const n = 1_000_000
	bd := setupBench(b, n)
	ctx := context.Background()
	var total time.Duration
	var peak uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := bd.store.DirectoryPurge(ctx, bd.tid); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		h := startHeapPeak()
		b.StartTimer()
		start := time.Now()
		_, err := bd.syncer.Sync(ctx, bd.tid, dirsync.Options{FullJob: int64(i + 1)})
		total += time.Since(start)
		peak = max(peak, h.done())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c, err := bd.store.DirectoryCounts(ctx, bd.tid)
	if err != nil || c.Users != n {
		b.Fatalf("synced %d users, want %d: %v", c.Users, n, err)
	}
	b.ReportMetric(float64(n)/(total/time.Duration(b.N)).Seconds(), "users/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkFullSync100kEvents prices the change feed: a full sync of a
// 100,000-user tenant into an empty copy (the worst case: every user, group
// and membership is a creation event) with directory events on and off, in
// the same run, alternating. It reports events-on throughput as a fraction
// of events-off (target ≥ 0.8, docs/events.md).
func BenchmarkFullSync100kEvents(b *testing.B) {
	const n = 100_000
	bd := setupBench(b, n)
	ctx := context.Background()
	_, gc := jobstest.Clients(b, bd.srv, "")
	syncers := map[bool]*dirsync.Syncer{
		true:  bd.syncer,
		false: dirsync.New(gc, bd.store.WithoutDirectoryEvents(), nil),
	}
	var job int64
	fullSync := func(events bool) time.Duration {
		b.StopTimer()
		if err := bd.store.DirectoryPurge(ctx, bd.tid); err != nil {
			b.Fatal(err)
		}
		// Each run starts from the same empty feed.
		if err := bd.store.Tx(ctx, func(tx pgx.Tx, _ *postgres.Store) error {
			_, err := tx.Exec(ctx, `TRUNCATE change_events`)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		job++
		if _, err := syncers[events].Sync(ctx, bd.tid, dirsync.Options{FullJob: job}); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		b.StopTimer()
		want := 0
		if events {
			want = n
		}
		var created int
		if err := bd.pool.QueryRow(ctx, `SELECT coalesce(sum(coalesce(n, 1)), 0) FROM change_events WHERE type = 'user.created'`).Scan(&created); err != nil {
			b.Fatal(err)
		}
		if created != want {
			b.Fatalf("events %t: %d user.created events, want %d", events, created, want)
		}
		return d
	}
	var on, off time.Duration
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			on += fullSync(true)
			off += fullSync(false)
		} else {
			off += fullSync(false)
			on += fullSync(true)
		}
	}
	b.ReportMetric(float64(n)/(on.Seconds()/float64(b.N)), "users/s-events-on")
	b.ReportMetric(float64(n)/(off.Seconds()/float64(b.N)), "users/s-events-off")
	b.ReportMetric(off.Seconds()/on.Seconds(), "ratio-on-to-off")
}
