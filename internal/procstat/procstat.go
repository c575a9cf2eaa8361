// Package procstat reads how much CPU time processes on this machine have
// used, for benchmarks that price a piece of work in CPU as well as wall
// time (the fleet benchmark's CPU per tenant, the full sync's CPU ceiling).
// It reads Linux's /proc (proc(5)); elsewhere every reading fails.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tick is a clock tick of /proc's CPU counters: 1/100 s on Linux
// (USER_HZ, proc(5)).
const tick = 10 * time.Millisecond

// Self is the user and system CPU time this process has used so far.
func Self() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Process is the user and system CPU time process pid has used so far
// (utime and stime of /proc/pid/stat).
func Process(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	d, ok := parseStat(b)
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return d, nil
}

// parseStat reads utime and stime, fields 14 and 15, out of a
// /proc/pid/stat line.
func parseStat(b []byte) (time.Duration, bool) {
	// The command name (field 2, in parentheses) may hold spaces and
	// parentheses of its own; count from after its last ')'.
	end := strings.LastIndexByte(string(b), ')')
	if end < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * tick, true
}

// Machine is the CPU time all cores have spent busy so far: every field
// of /proc/stat's cpu line but idle and iowait.
func Machine() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: %q", line)
	}
	var busy int64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q", line)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * tick, nil
}

// ErrNoPostgres: no process named postgres runs on this machine (the
// database is elsewhere), so its CPU cannot be read here.
var ErrNoPostgres = errors.New("no postgres process on this machine")

// Postgres is the CPU time the machine's running postgres processes
// (server, backends, background workers) have used so far. The growth
// over a piece of work is what it cost Postgres, as long as the processes
// doing it live through it (one that exits takes its share along).
func Postgres() (time.Duration, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if d, err := Process(pid); err == nil { // it may have exited meanwhile
			total += d
			found = true
		}
	}
	if !found {
		return 0, ErrNoPostgres
	}
	return total, nil
}
