package fleettest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// pgCluster is a PostgreSQL cluster private to one test, so that the test
// may restart it without disturbing the shared server other tests use.
type pgCluster struct {
	t    testing.TB
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	uid  int // run as this OS user when we are root (postgres refuses root); -1: as ourselves
	gid  int
}

// startPGCluster initialises and starts a private cluster on a free port
// with trust authentication; t.Cleanup stops and deletes it.
func startPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		msg := "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c := &pgCluster{t: t, bin: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and postgres refuses root: need an OS user named postgres: %v", err)
		}
		c.uid, _ = strconv.Atoi(u.Uid)
		c.gid, _ = strconv.Atoi(u.Gid)
	}
	// Not t.TempDir(): its parent is private to us, and the cluster's
	// OS user must reach its data directory.
	dir, err := os.MkdirTemp("", "fleettest-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	if c.uid >= 0 {
		if err := os.Chown(dir, c.uid, c.gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.pgCtl("stop", "-m", "immediate")
		if t.Failed() {
			t.Logf("private Postgres kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	port, err := strconv.Atoi(freeAddr(t)[len("127.0.0.1:"):])
	if err != nil {
		t.Fatal(err)
	}
	c.port = port
	if out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := c.pgCtl("start"); err != nil {
		t.Fatal(err)
	}
	return c
}

func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// URL is the connection string of the cluster's postgres database.
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *pgCluster) command(name string, args ...string) *exec.Cmd {
	if c.uid >= 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// pgCtl runs pg_ctl with the cluster's options (start and restart wait
// until the server accepts connections).
func (c *pgCluster) pgCtl(action string, more ...string) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", c.port, c.dir)
	args := append([]string{"-D", c.data(), "-l", c.logFile(), "-w", "-t", "120", "-o", opts, action}, more...)
	if out, err := c.command(filepath.Join(c.bin, "pg_ctl"), args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", action, err, out)
	}
	return nil
}

// restart is `pg_ctl restart -m fast`: every session is terminated.
func (c *pgCluster) restart() {
	c.t.Helper()
	if err := c.pgCtl("restart", "-m", "fast"); err != nil {
		c.t.Fatal(err)
	}
}

// crash is `pg_ctl stop -m immediate` and a start: Postgres dies without a
// shutdown checkpoint and recovers from its WAL, so commits whose WAL was
// not yet written (the worker's event-free ones do not wait for it) are lost.
func (c *pgCluster) crash() {
	c.t.Helper()
	if err := c.pgCtl("stop", "-m", "immediate"); err != nil {
		c.t.Fatal(err)
	}
	if err := c.pgCtl("start"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *pgCluster) tail(n int) string {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
