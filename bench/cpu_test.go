package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// serverCPU is the CPU the farm's servers have used so far. On a machine
// other work keeps busy, wall time says as much about that work as about
// ours, CPU time much less. In-process servers run in this process: its own
// CPU (the children it starts are not counted). An sshd forks a process per
// connection, which forks the shells; each waits for its children, so once
// every connection has ended and been reaped, the listener's own and its
// children's times are all of it.
func serverCPU(b *testing.B, f farm) time.Duration {
	b.Helper()
	if len(f.sshds) == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var total time.Duration
	for _, pid := range f.sshds {
		d, err := reapedCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	return total
}

// reapedCPU waits until pid has no children left (its connections were
// closed, but sshd reaps them when it gets to it) and returns its CPU time
// with that of its reaped children.
func reapedCPU(pid int) (time.Duration, error) {
	children := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(children)
		if err != nil {
			return 0, fmt.Errorf("sshd %d: %w", pid, err)
		}
		if strings.TrimSpace(string(data)) == "" {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("sshd %d: its connections' processes %s are still there after 30s", pid, strings.TrimSpace(string(data)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("sshd %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ')'. After it: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 15 {
		return 0, fmt.Errorf("sshd %d: short stat %q", pid, s)
	}
	var ticks int64
	for _, v := range fields[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("sshd %d: stat %q: %w", pid, s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
