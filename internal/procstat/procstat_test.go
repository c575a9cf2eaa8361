package procstat

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/postgres/pgtest"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses of its own (proc(5)).
	line := []byte("4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 1 0 100 0 0\n")
	d, ok := parseStat(line)
	if !ok || d != (123+45)*tick {
		t.Fatalf("parseStat = %v, %t; want %v", d, ok, (123+45)*tick)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 u 45 0"} {
		if d, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) = %v, want a failure", bad, d)
		}
	}
}

// spin uses about d of this goroutine's CPU.
func spin(d time.Duration) {
	x := 0
	for start := time.Now(); time.Since(start) < d; {
		for i := range 10_000 {
			x += i
		}
	}
	_ = x
}

func TestSelfAndProcess(t *testing.T) {
	self0, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	proc0, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	spin(200 * time.Millisecond)
	self1, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	proc1, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The spin ran on one goroutine; a loaded machine may give it less
	// than all of the 200 ms, but not nothing.
	if got := self1 - self0; got < 50*time.Millisecond {
		t.Errorf("Self grew %v over a 200 ms spin", got)
	}
	if got := proc1 - proc0; got < 50*time.Millisecond {
		t.Errorf("Process(self) grew %v over a 200 ms spin", got)
	}
	if _, err := Process(-1); err == nil {
		t.Error("Process(-1): no error")
	}
	m, err := Machine()
	if err != nil || m <= 0 {
		t.Errorf("Machine() = %v, %v", m, err)
	}
}

// TestPostgres burns Postgres CPU with a query and reads it back: the
// tests' Postgres runs on this machine (make test starts it here, or in a
// container whose processes this machine's /proc shows).
func TestPostgres(t *testing.T) {
	pool := pgtest.Pool(t)
	before, err := Postgres()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `SELECT count(*) FROM generate_series(1, 5000000)`); err != nil {
		t.Fatal(err)
	}
	after, err := Postgres()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 20*time.Millisecond {
		t.Fatalf("postgres processes grew %v over a query of 5 million rows", after-before)
	}
}
