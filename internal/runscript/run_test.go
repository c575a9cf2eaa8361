package runscript

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects the script's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// need skips the test when a tool it needs is missing, or fails it under
// CI=true, where nothing may pass by skipping.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(what)
	}
	t.Skip(what)
}

// freeAddrs holds n loopback ports at once, so they differ, and frees them
// for the script's processes.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// processesMentioning lists the live processes whose command line contains
// any of dirs, as pid → command line.
func processesMentioning(t *testing.T, dirs ...string) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		for _, d := range dirs {
			if strings.Contains(cmdline, d) {
				out[pid] = cmdline
			}
		}
	}
	return out
}

// childrenOf lists the live processes whose parent is pid (the postmaster's
// backends retitle themselves, so they are found by parent).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok && strings.TrimSpace(v) == strconv.Itoa(pid) {
				out = append(out, child)
			}
		}
	}
	return out
}

// TestRunWithoutPostgres runs `make run`'s script pointed at an address
// where no Postgres answers: it must start a private cluster under its
// state directory, bring up the emulator, the server (answering /readyz)
// and the worker, print a working curl line for the JSON API, and after a
// Ctrl-C (SIGINT to its process group, as a terminal sends it) say
// "stopped" and leave no process and no listening port behind. A second
// run on the same state reuses the cluster and the token.
func TestRunWithoutPostgres(t *testing.T) {
	_, err := exec.LookPath("setsid")
	need(t, err == nil, "setsid (util-linux) not found")
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			bins = []string{p}
		}
	}
	need(t, len(bins) > 0, "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH")

	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(goTool, "build", "-trimpath", "-o", binDir+string(os.PathSeparator), "./cmd/...")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Not t.TempDir(): its parent is private to us, and when we are root the
	// cluster runs as the postgres user, who must reach its directory.
	runDir, err := os.MkdirTemp("", "runscript-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("state kept in %s", runDir)
			return
		}
		os.RemoveAll(runDir)
	})

	addrs := freeAddrs(t, 5)
	pgAddr, httpAddr, workerAddr, loginAddr, graphAddr := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	if answers(pgAddr) {
		t.Fatalf("something answers at %s already", pgAddr)
	}
	base := "http://" + httpAddr
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || k == "OPERATOR_API_TOKEN" || k == "HTTP_ADDR" || k == "PUBLIC_BASE_URL" ||
			k == "WORKER_ADMIN_ADDR" || k == "OPERATOR_TENANT_ID" || strings.HasPrefix(k, "ENTRA") || strings.HasPrefix(k, "RUN_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "BIN="+binDir, "RUN_DIR="+runDir, "RUN_PG_ADDR="+pgAddr, "HTTP_ADDR="+httpAddr,
		"PUBLIC_BASE_URL="+base, "WORKER_ADMIN_ADDR="+workerAddr,
		"ENTRAEMU_LOGIN_ADDR="+loginAddr, "ENTRAEMU_GRAPH_ADDR="+graphAddr)

	first := upAndDown(t, root, env, binDir, runDir, pgAddr, base, addrs)
	if !strings.Contains(first.output, "initializing a private cluster") {
		t.Errorf("the first run does not say it initialises the cluster:\n%s", first.output)
	}
	// Again on the same state: the cluster is started, not initialised
	// again, and the token is the same, so curl lines and scripts keep
	// working across restarts.
	second := upAndDown(t, root, env, binDir, runDir, pgAddr, base, addrs)
	if strings.Contains(second.output, "initializing") {
		t.Errorf("the second run initialised the cluster again:\n%s", second.output)
	}
	if first.token != second.token {
		t.Errorf("token %q on the first run, %q on the second", first.token, second.token)
	}
}

// run is what one run of the script showed.
type run struct {
	output string
	token  string // from the printed curl line
}

// upAndDown runs the script until the server is ready, checks what runs and
// the curl line, sends Ctrl-C and checks that nothing is left.
func upAndDown(t *testing.T, root string, env []string, binDir, runDir, pgAddr, base string, addrs []string) run {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command("bash", "scripts/run.sh")
	cmd.Dir = root
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// Whatever a failed run left behind, so the next run starts clean.
		for pid := range processesMentioning(t, binDir, runDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	// Up: the server answers /readyz (database reachable, schema current).
	// The bound is for a broken script, not a measurement.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for ready := false; !ready; {
		select {
		case err := <-done:
			exited = true
			t.Fatalf("run.sh exited before the server was ready (%v):\n%s", err, out)
		case <-ctx.Done():
			t.Fatalf("the server did not answer %s/readyz:\n%s", base, out)
		case <-time.After(200 * time.Millisecond):
		}
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			ready = res.StatusCode == http.StatusOK
		}
	}
	// The banner comes after /readyz answers; wait for its last line.
	for !strings.Contains(out.String(), "Ctrl-C stops everything.") {
		select {
		case err := <-done:
			exited = true
			t.Fatalf("run.sh exited (%v):\n%s", err, out)
		case <-ctx.Done():
			t.Fatalf("no banner:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	text := out.String()
	if want := "started a private cluster on " + pgAddr; !strings.Contains(text, want) {
		t.Errorf("output does not say %q:\n%s", want, text)
	}

	// The private cluster is the one under the state directory.
	pidFile, err := os.ReadFile(filepath.Join(runDir, "pg", "data", "postmaster.pid"))
	if err != nil {
		t.Fatalf("no running private cluster under %s: %v", runDir, err)
	}
	postmaster, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	running := processesMentioning(t, binDir, runDir)
	if _, ok := running[postmaster]; !ok {
		t.Errorf("postmaster %d not running from %s: %v", postmaster, runDir, running)
	}
	for _, name := range []string{"entraemu", "server", "worker"} {
		found := false
		for _, cmdline := range running {
			found = found || strings.HasPrefix(cmdline, filepath.Join(binDir, name))
		}
		if !found {
			t.Errorf("no %s process running from %s: %v", name, binDir, running)
		}
	}
	backends := childrenOf(t, postmaster)
	if len(backends) == 0 {
		t.Errorf("the postmaster %d has no child processes", postmaster)
	}

	// The printed curl line works, with the token kept under the state
	// directory.
	m := regexp.MustCompile(`curl -H 'Authorization: Bearer ([^']+)' (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no curl line in the output:\n%s", text)
	}
	saved, err := os.ReadFile(filepath.Join(runDir, "operator-api-token"))
	if err != nil || strings.TrimSpace(string(saved)) != m[1] || len(m[1]) < 16 {
		t.Errorf("token %q printed, %q saved (%v)", m[1], saved, err)
	}
	req, err := http.NewRequest(http.MethodGet, m[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+m[1])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"items"`) {
		t.Errorf("the printed curl line: %d %s", res.StatusCode, body)
	}

	// Ctrl-C: a terminal signals the whole foreground process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
		exited = true
	case <-time.After(2 * time.Minute):
		t.Fatalf("run.sh did not stop after SIGINT:\n%s", out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	text = out.String()
	if err != nil {
		t.Errorf("run.sh ended with %v after SIGINT, want exit 0", err)
	}
	tail := text[len(text)-min(len(text), 200):]
	if !strings.HasSuffix(strings.TrimSpace(text), "stopped") || strings.Contains(text, "exited; see") {
		t.Errorf("after Ctrl-C the output must end with \"stopped\" and name no process as exited; it ends:\n%s", tail)
	}
	if left := processesMentioning(t, binDir, runDir); len(left) > 0 {
		t.Errorf("still running after Ctrl-C: %v", left)
	}
	for _, pid := range append(backends, postmaster) {
		if err := syscall.Kill(pid, 0); err == nil {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); len(cmdline) > 0 {
				t.Errorf("postgres process %d still running: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
	}
	for _, addr := range addrs {
		if answers(addr) {
			t.Errorf("%s still answers after Ctrl-C", addr)
		}
	}
	return run{output: text, token: m[1]}
}
