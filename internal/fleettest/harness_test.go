package fleettest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantsync/tenantsync/internal/entraemu"
)

// ---- sizes ----

// size is full, or small under -short on a developer's machine; CI always
// runs the full size (issue #11: never skip the large sizes in CI).
func size(full, short int) int {
	if testing.Short() && os.Getenv("CI") != "true" {
		return short
	}
	return full
}

// ---- binaries ----

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds cmd/worker and cmd/entraemu once per test binary run,
// without -race: they are the processes under test, not the test.
func binaries(t testing.TB) (worker, emu string) {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "fleettest-bin-"); buildErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		cmd := exec.Command(goTool, "build", "-trimpath", "-o", binDir+string(os.PathSeparator),
			"github.com/tenantsync/tenantsync/cmd/worker", "github.com/tenantsync/tenantsync/cmd/entraemu")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "worker"), filepath.Join(binDir, "entraemu")
}

// ---- processes ----

// proc is a subprocess in its own process group, its stdout and stderr in
// one log file.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

func startProc(t testing.TB, name, logPath, bin string, args, env []string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the whole process group and waits for the process.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to limit; it reports whether the process
// exited by itself with status 0.
func (p *proc) stop(limit time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		p.kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.name, limit)
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ---- emulator ----

type emuInfo struct {
	AuthorityHost string `json:"authority_host"`
	GraphBaseURL  string `json:"graph_base_url"`
	ControlURL    string `json:"control_url"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	CAFile        string `json:"ca_file"`
}

type emulator struct {
	proc *proc
	info emuInfo
	hc   *http.Client
}

func startEmulator(t testing.TB, dir string, seed *entraemu.Seed) *emulator {
	t.Helper()
	_, bin := binaries(t)
	seedFile := filepath.Join(dir, "seed.json")
	b, err := json.Marshal(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seedFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "entraemu", filepath.Join(dir, "entraemu.log"), bin,
		[]string{"-login-addr", "127.0.0.1:0", "-graph-addr", "127.0.0.1:0", "-seed", seedFile,
			"-ca-out", filepath.Join(dir, "entraemu-ca.pem"), "-control", "-log-level", "warn"},
		baseEnv())
	e := &emulator{proc: p}
	deadline := time.Now().Add(time.Minute)
	for {
		if line, ok := firstLine(p.log); ok {
			if err := json.Unmarshal([]byte(line), &e.info); err != nil {
				t.Fatalf("emulator start line %q: %v", line, err)
			}
			break
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("the emulator did not start:\n%s", p.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	pem, err := os.ReadFile(e.info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	e.hc = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return e
}

func firstLine(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(line), true
}

// control calls the emulator's control API; out may be nil.
func (e *emulator) control(t testing.TB, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.info.ControlURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("emulator %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("emulator %s %s: %s %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("emulator %s %s: decode: %v", method, path, err)
		}
	}
}

func (e *emulator) directory(t testing.TB, tid string) entraemu.Directory {
	t.Helper()
	var d entraemu.Directory
	e.control(t, http.MethodGet, "/tenants/"+tid+"/directory", nil, &d)
	return d
}

// ---- fleet seed ----

// fleetTenantID is the i-th generated tenant's GUID.
func fleetTenantID(i int) string { return fmt.Sprintf("f1ee7000-0000-4000-8000-%012d", i) }

// largeTenantID is the large tenant's GUID.
const largeTenantID = "1a26e000-0000-4000-8000-000000000001"

// fleetSeed is the emulator's default app and home tenant plus small
// consented tenants (a few users and groups each) and, when largeUsers > 0,
// one large tenant with an "All Users" group of every user.
func fleetSeed(small, largeUsers int) (*entraemu.Seed, []string) {
	s := entraemu.SmallSeed()
	s.Tenants = s.Tenants[:1] // the ISV's home tenant
	var ids []string
	for i := range small {
		id := fleetTenantID(i)
		s.Tenants = append(s.Tenants, entraemu.Tenant{
			ID: id, DisplayName: fmt.Sprintf("Fleet %d", i), Domains: []string{fmt.Sprintf("fleet%d.example", i)}, Consented: true,
			Generate: &entraemu.Generate{Users: 3 + i%5, Groups: 1 + i%3, MembersPerGroup: 2, Seed: int64(i + 1)},
		})
		ids = append(ids, id)
	}
	if largeUsers > 0 {
		s.Tenants = append(s.Tenants, entraemu.Tenant{
			ID: largeTenantID, DisplayName: "Large", Domains: []string{"large.example"}, Consented: true,
			Generate: &entraemu.Generate{Users: largeUsers, Groups: 20, MembersPerGroup: 100, Seed: 42, AllUsersGroup: true},
		})
		ids = append(ids, largeTenantID)
	}
	return s, ids
}

// ---- harness ----

// harness is one scenario: an emulator, a database, and the worker
// processes started against them, with their logs in dir (kept when the
// test fails).
type harness struct {
	t      testing.TB
	dir    string
	emu    *emulator
	dbURL  string
	db     *pgxpool.Pool
	tids   []string
	env    map[string]string // worker settings beyond the wiring
	worker *proc
	starts int
	pg     *pgCluster // a private cluster, if the test has one
	// workerBin, when set, is the worker binary to start instead of this
	// tree's (a baseline built from another commit).
	workerBin string
}

func newHarness(t testing.TB, seed *entraemu.Seed, tids []string, dbURL string) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "fleettest-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	h := &harness{t: t, dir: dir, dbURL: dbURL, tids: tids, env: map[string]string{}}
	h.emu = startEmulator(t, dir, seed)
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// Named, so that killWorker can tell the worker's connections from the
	// harness's own.
	pc.ConnConfig.RuntimeParams["application_name"] = harnessAppName
	h.db, err = pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	// Closed before pgtest drops the database (cleanups run last-in first-out).
	t.Cleanup(h.db.Close)
	return h
}

func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startWorker starts a worker process with its default configuration, wired
// to the emulator and the database, plus h.env.
func (h *harness) startWorker() {
	t := h.t
	t.Helper()
	bin, _ := binaries(t)
	if h.workerBin != "" {
		bin = h.workerBin
	}
	h.starts++
	env := append(baseEnv(),
		"DATABASE_URL="+h.dbURL,
		"ENTRA_AUTHORITY_HOST="+h.emu.info.AuthorityHost,
		"GRAPH_BASE_URL="+h.emu.info.GraphBaseURL,
		"ENTRA_CLIENT_ID="+h.emu.info.ClientID,
		"ENTRA_CLIENT_SECRET="+h.emu.info.ClientSecret,
		"ENTRA_CA_FILE="+h.emu.info.CAFile,
		"LOG_FORMAT=json",
		"WORKER_ADMIN_ADDR="+freeAddr(t),
	)
	for k, v := range h.env {
		env = append(env, k+"="+v)
	}
	h.worker = startProc(t, fmt.Sprintf("worker#%d", h.starts), filepath.Join(h.dir, fmt.Sprintf("worker-%d.log", h.starts)), bin, nil, env)
}

const harnessAppName = "fleettest-harness"

// killWorker sends SIGKILL to the worker's process group, then waits until
// Postgres has ended the dead worker's sessions: a COMMIT the worker sent
// just before it died is still carried out, and what the test reads after
// the kill must include it.
func (h *harness) killWorker() {
	h.t.Helper()
	h.worker.kill()
	h.t.Logf("%s killed", h.worker.name)
	for range 600 { // a minute
		var n int
		err := h.db.QueryRow(context.Background(), `
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> $1`, harnessAppName).Scan(&n)
		if err == nil && n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("the killed %s's database sessions did not end within a minute", h.worker.name)
}

// migrate applies the migrations with the worker's own `migrate` command.
func (h *harness) migrate() {
	t := h.t
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, "migrate")
	cmd.Env = append(baseEnv(), "DATABASE_URL="+h.dbURL, "LOG_FORMAT=json")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("worker migrate: %v\n%s", err, out)
	}
}

const tenantInsert = `
INSERT INTO tenants (id, status, status_reason, display_name, consented_at, consented_by, granted_roles, next_sync_at)
SELECT id::uuid, 'active', 'fleet test', 'Fleet tenant', now(), 'admin', ARRAY['User.Read.All', 'GroupMember.Read.All', 'Organization.Read.All'], now()
FROM unnest($1::text[]) AS id`

// insertTenants stores h.tids as consented, active tenants due now.
func (h *harness) insertTenants() {
	h.t.Helper()
	if _, err := h.db.Exec(context.Background(), tenantInsert, h.tids); err != nil {
		h.t.Fatalf("insert tenants: %v", err)
	}
}

// ---- progress ----

// snapshot is what the database says about the fleet at one moment.
type snapshot struct {
	err          error
	synced       int            // tenants with last_synced_at
	succeeded    int            // tenants with a succeeded sync run
	runs         map[string]int // sync runs by outcome
	pages        int64          // pages recorded in sync runs
	userRows     int64          // directory_users rows
	memberRows   int64          // group_members rows
	statuses     map[string]int // tenants by status
	jobs         map[string]int // River jobs by state
	largeRunning bool           // the large tenant has a running sync run
	largeMid     bool           // ... and it has written pages or a nextLink checkpoint
}

func (s snapshot) progressKey() string {
	return fmt.Sprintf("%d/%d/%d/%d/%d/%v", s.synced, s.succeeded, s.pages, s.userRows, s.memberRows, s.runs)
}

func (s snapshot) String() string {
	if s.err != nil {
		return "snapshot failed: " + s.err.Error()
	}
	return fmt.Sprintf("tenants synced %d, with a succeeded run %d, by status %v; sync runs by outcome %v, pages %d; rows: users %d, members %d; river jobs by state %v; large tenant running %v (mid-round %v)",
		s.synced, s.succeeded, s.statuses, s.runs, s.pages, s.userRows, s.memberRows, s.jobs, s.largeRunning, s.largeMid)
}

func (h *harness) snapshot() snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := snapshot{runs: map[string]int{}, statuses: map[string]int{}, jobs: map[string]int{}}
	counts := func(q string, into map[string]int) error {
		rows, err := h.db.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				return err
			}
			into[k] = n
		}
		return rows.Err()
	}
	s.err = errors.Join(
		h.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE last_synced_at IS NOT NULL) FROM tenants`).Scan(&s.synced),
		h.db.QueryRow(ctx, `SELECT count(DISTINCT tenant_id) FROM sync_runs WHERE outcome = 'succeeded'`).Scan(&s.succeeded),
		h.db.QueryRow(ctx, `SELECT coalesce(sum(pages), 0) FROM sync_runs`).Scan(&s.pages),
		h.db.QueryRow(ctx, `SELECT count(*) FROM directory_users`).Scan(&s.userRows),
		h.db.QueryRow(ctx, `SELECT count(*) FROM group_members`).Scan(&s.memberRows),
		counts(`SELECT outcome, count(*) FROM sync_runs GROUP BY outcome`, s.runs),
		counts(`SELECT status, count(*) FROM tenants GROUP BY status`, s.statuses),
		counts(`SELECT state::text, count(*) FROM river_job GROUP BY state`, s.jobs),
		h.db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM sync_runs WHERE tenant_id = $1 AND outcome = 'running')`, largeTenantID).Scan(&s.largeRunning),
		h.db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM sync_runs WHERE tenant_id = $1 AND outcome = 'running' AND pages > 0)
			OR EXISTS (SELECT FROM sync_state WHERE tenant_id = $1 AND link_kind = 'next')`, largeTenantID).Scan(&s.largeMid),
	)
	return s
}

// waitUntil polls the database every second until done says so. It fails
// the test with a diagnostic when limit passes, when nothing has moved for
// stall (a deadlock is not a slow run), or when the worker exits.
func (h *harness) waitUntil(what string, limit, stall time.Duration, done func(snapshot) bool) snapshot {
	t := h.t
	t.Helper()
	start := time.Now()
	lastKey, lastMove := "", start
	for {
		s := h.snapshot()
		if s.err == nil && done(s) {
			t.Logf("%s after %s: %s", what, time.Since(start).Round(time.Second), s)
			return s
		}
		if k := s.progressKey(); k != lastKey {
			lastKey, lastMove = k, time.Now()
		}
		switch {
		case h.worker != nil && h.worker.exited():
			h.fatal(what, fmt.Sprintf("%s exited (%v) after %s", h.worker.name, h.worker.err, time.Since(start).Round(time.Second)), s)
		case time.Since(lastMove) > stall:
			h.fatal(what, fmt.Sprintf("no progress for %s (deadlock?) after %s", stall, time.Since(start).Round(time.Second)), s)
		case time.Since(start) > limit:
			h.fatal(what, fmt.Sprintf("not done after %s", limit), s)
		}
		time.Sleep(time.Second)
	}
}

func (h *harness) fatal(what, why string, s snapshot) {
	h.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "waiting for %s: %s\n  %s\n", what, why, s)
	if h.worker != nil {
		fmt.Fprintf(&b, "  last lines of %s (%s):\n%s\n", h.worker.name, h.worker.log, indent(h.worker.tail(25)))
	}
	if h.pg != nil {
		fmt.Fprintf(&b, "  last lines of the Postgres log:\n%s\n", indent(h.pg.tail(15)))
	}
	h.t.Fatal(b.String())
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// ---- checks ----

// errorLines returns the worker logs' lines at level ERROR (every start).
func (h *harness) errorLines() []string {
	h.t.Helper()
	var out []string
	for i := 1; i <= h.starts; i++ {
		b, err := os.ReadFile(filepath.Join(h.dir, fmt.Sprintf("worker-%d.log", i)))
		if err != nil {
			h.t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			var rec struct {
				Level string `json:"level"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && strings.EqualFold(rec.Level, "ERROR") {
				out = append(out, fmt.Sprintf("worker-%d: %s", i, line))
			}
		}
	}
	return out
}

// assertExact compares each tenant's copy in Postgres (users, groups,
// memberships) with what the emulator holds, field by field.
func (h *harness) assertExact(tids []string) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	bad := 0
	for _, tid := range tids {
		dir := h.emu.directory(t, tid)
		var want []string
		for _, u := range dir.Users {
			want = append(want, fmt.Sprintf("u %s %s|%s|%s|%s|%s|%s|%v", strings.ToLower(u.ID), u.UserPrincipalName, u.DisplayName,
				u.GivenName, u.Surname, u.Mail, u.JobTitle, u.AccountEnabled))
		}
		for _, g := range dir.Groups {
			want = append(want, fmt.Sprintf("g %s %s|%s", strings.ToLower(g.ID), g.DisplayName, g.Description))
			for _, m := range g.Members {
				want = append(want, fmt.Sprintf("m %s %s", strings.ToLower(g.ID), strings.ToLower(m)))
			}
		}
		got, err := h.copyLines(ctx, tid)
		if err != nil {
			t.Fatalf("copy of %s: %v", tid, err)
		}
		if len(want) == 0 {
			t.Fatalf("the emulator holds nothing for tenant %s", tid)
		}
		if d := setDiff(want, got); d != "" {
			bad++
			if bad <= 5 {
				t.Errorf("copy of tenant %s differs from the emulator (%d objects there, %d rows here):\n%s", tid, len(want), len(got), d)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tenants' copies differ from the emulator", bad, len(tids))
	}
}

// assertEvents checks the change feed the killed and restarted workers
// wrote (docs/events.md): every user of every final copy was created once,
// no directory event is written twice for the same object, and the second
// round's changes are there — a new hire in each of the small tenants, and
// the large tenant's deleted user gone (user.deleted or, seen by a full
// round, user.removed). The events are counted here, not joined in SQL: on
// tables the planner has no statistics for yet, such a join can take
// minutes.
// feedKey is one event's tenant, type and object.
type feedKey struct{ tenant, typ, object string }

// assertFeedOnce checks the change feed holds no event twice and a
// user.created for every user in the copies.
func (h *harness) assertFeedOnce() {
	h.t.Helper()
	h.feedOnce()
}

func (h *harness) assertEvents(small int, gone string) {
	t := h.t
	t.Helper()
	seen, hires := h.feedOnce()
	gone = strings.ToLower(gone)
	removals := seen[feedKey{largeTenantID, "user.deleted", gone}] + seen[feedKey{largeTenantID, "user.removed", gone}]
	if hires != small || removals != 1 {
		t.Errorf("change feed: %d user.created for the %d new hires, %d removal events for the deleted user (want 1)",
			hires, small, removals)
	}
}

// feedOnce is assertFeedOnce, also counting the user.created events of the
// chaos test's new hires.
func (h *harness) feedOnce() (map[feedKey]int, int) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	type key = feedKey
	seen := map[key]int{}
	var tenant, typ, object, upn string
	rows, err := h.db.Query(ctx, `SELECT tenant_id::text, type,
		coalesce(data->>'id', (data->>'group_id') || '/' || (data->>'member_id')), coalesce(data->>'user_principal_name', '')
		FROM change_feed WHERE type NOT LIKE 'tenant.%'`)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	hires := 0
	if _, err := pgx.ForEachRow(rows, []any{&tenant, &typ, &object, &upn}, func() error {
		seen[key{tenant, typ, object}]++
		if typ == "user.created" && strings.HasPrefix(upn, "new@fleet") {
			hires++
		}
		return nil
	}); err != nil {
		t.Fatalf("events: %v", err)
	}
	dup := 0
	for k, n := range seen {
		if n > 1 {
			if dup++; dup <= 5 {
				t.Errorf("%s %s %s written %d times", k.tenant, k.typ, k.object, n)
			}
		}
	}
	rows, err = h.db.Query(ctx, `SELECT tenant_id::text, id::text FROM directory_users`)
	if err != nil {
		t.Fatalf("users: %v", err)
	}
	uncreated := 0
	if _, err := pgx.ForEachRow(rows, []any{&tenant, &object}, func() error {
		if seen[key{tenant, "user.created", object}] != 1 {
			if uncreated++; uncreated <= 5 {
				t.Errorf("user %s of tenant %s in the copy without a user.created event", object, tenant)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("users: %v", err)
	}
	if dup > 0 || uncreated > 0 {
		t.Errorf("change feed: %d duplicated events, %d users without their creation", dup, uncreated)
	}
	return seen, hires
}

func (h *harness) copyLines(ctx context.Context, tid string) ([]string, error) {
	var out []string
	collect := func(q string) error {
		rows, err := h.db.Query(ctx, q, tid)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			out = append(out, s)
		}
		return rows.Err()
	}
	err := errors.Join(
		collect(`SELECT 'u ' || id::text || ' ' || concat_ws('|', user_principal_name, display_name, given_name, surname, mail, job_title, account_enabled::text)
			FROM directory_users WHERE tenant_id = $1`),
		collect(`SELECT 'g ' || id::text || ' ' || concat_ws('|', display_name, description) FROM directory_groups WHERE tenant_id = $1`),
		collect(`SELECT 'm ' || group_id::text || ' ' || member_id::text FROM group_members WHERE tenant_id = $1`),
	)
	return out, err
}

// setDiff describes what want lacks and has over got (as sets), or "".
func setDiff(want, got []string) string {
	w, g := slices.Clone(want), slices.Clone(got)
	sort.Strings(w)
	sort.Strings(g)
	var missing, extra []string
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case j == len(g) || (i < len(w) && w[i] < g[j]):
			missing = append(missing, w[i])
			i++
		case i == len(w) || g[j] < w[i]:
			extra = append(extra, g[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	show := func(label string, xs []string) {
		if len(xs) == 0 {
			return
		}
		fmt.Fprintf(&b, "  %d %s, e.g.:\n", len(xs), label)
		for _, x := range xs[:min(5, len(xs))] {
			fmt.Fprintf(&b, "    %s\n", x)
		}
	}
	show("in the emulator but not in Postgres", missing)
	show("in Postgres but not in the emulator", extra)
	return b.String()
}

// sample picks n tenants spread over tids.
func sample(tids []string, n int) []string {
	if n >= len(tids) {
		return tids
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, tids[i*len(tids)/n])
	}
	return out
}

// runningRuns returns the IDs of the sync runs recorded as running.
func (h *harness) runningRuns() []int64 {
	h.t.Helper()
	rows, err := h.db.Query(context.Background(), `SELECT id FROM sync_runs WHERE outcome = 'running' ORDER BY id`)
	if err != nil {
		h.t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return ids
}

// assertRunsClosed checks that no sync run is left running and that the
// runs of killed workers ended abandoned.
func (h *harness) assertRunsClosed(killed []int64) {
	t := h.t
	t.Helper()
	if ids := h.runningRuns(); len(ids) > 0 {
		t.Errorf("%d sync runs left running: %v", len(ids), ids[:min(10, len(ids))])
	}
	slices.Sort(killed)
	killed = slices.Compact(killed)
	if len(killed) == 0 {
		return
	}
	rows, err := h.db.Query(context.Background(), `SELECT id, outcome FROM sync_runs WHERE id = ANY($1) AND outcome <> 'abandoned' ORDER BY id`, killed)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var wrong []string
	for rows.Next() {
		var id int64
		var outcome string
		if err := rows.Scan(&id, &outcome); err != nil {
			t.Fatal(err)
		}
		wrong = append(wrong, fmt.Sprintf("%d:%s", id, outcome))
	}
	if len(wrong) > 0 {
		t.Errorf("%d of the %d sync runs of killed workers did not end abandoned: %v", len(wrong), len(killed), wrong[:min(10, len(wrong))])
	}
}

// assertAllActiveSyncedSince checks that every tenant is active and has
// synced after since.
func (h *harness) assertAllActiveSyncedSince(since time.Time) {
	t := h.t
	t.Helper()
	var n int
	var stragglers []string
	rows, err := h.db.Query(context.Background(), `
SELECT id::text || ' ' || status || ' ' || coalesce(last_synced_at::text, 'never') FROM tenants
WHERE status <> 'active' OR last_synced_at IS NULL OR last_synced_at < $1 ORDER BY id`, since)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		n++
		if len(stragglers) < 10 {
			stragglers = append(stragglers, s)
		}
	}
	if n > 0 {
		t.Errorf("%d tenants are not active and synced since %s, e.g. %v", n, since.Format(time.RFC3339), stragglers)
	}
}

// assertNoOverlap checks that no two finished runs of one tenant overlap in
// time: one tenant is synced by one job at a time, also when River rescues
// a job of a dead worker or a slice continues in a follow-up.
func (h *harness) assertNoOverlap() {
	t := h.t
	t.Helper()
	rows, err := h.db.Query(context.Background(), `
SELECT a.tenant_id::text, a.id, b.id FROM sync_runs a JOIN sync_runs b ON b.tenant_id = a.tenant_id AND b.id > a.id
WHERE a.outcome NOT IN ('running', 'abandoned') AND b.outcome NOT IN ('running', 'abandoned')
	AND b.started_at < a.finished_at AND a.started_at < b.finished_at
ORDER BY a.id LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var tid string
		var a, b int64
		if err := rows.Scan(&tid, &a, &b); err != nil {
			t.Fatal(err)
		}
		t.Errorf("sync runs %d and %d of tenant %s overlap in time", a, b, tid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// logFigures logs the emulator's request counters (requests, throttled
// answers, early retries): the figures issue #11's closing note reports.
func (h *harness) logFigures(start time.Time) {
	h.t.Helper()
	var c map[string]any
	h.emu.control(h.t, http.MethodGet, "/counters", nil, &c)
	h.t.Logf("figures: %d tenants in %s; emulator counters %v", len(h.tids), time.Since(start).Round(time.Second), c)
}
