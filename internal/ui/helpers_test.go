package ui

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/runbookhq/runbook/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var t0 = time.Date(2026, 11, 24, 2, 39, 55, 0, time.UTC)

const runID = "20261124T023955Z-3f9a01"

// tick returns a clock that moves one second per reading, so that outputs are
// the same on every machine.
func tick(start time.Time) func() time.Time {
	var mu sync.Mutex
	now := start.Add(-time.Second)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

// stamp runs events through a Bus, as the engine does, and returns them as
// every sink receives them: numbered, timed, with the run id.
func stamp(t *testing.T, evs []event.Event) []event.Event {
	t.Helper()
	bus := event.NewBus(runID, event.Options{Now: tick(t0)})
	var rec event.Recorder
	bus.Require(&rec)
	for _, e := range evs {
		if err := bus.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Events()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Events of the scenarios.

func runStart(hosts []string, batches [][]string, check bool) event.Event {
	info := event.RunInfo{
		Runbook: "upgrade-etcd.yml", Name: "upgrade-etcd", Hosts: hosts, Batches: batches,
		Steps: 4, Check: check, Args: []string{"exec", "upgrade-etcd.yml"}, PID: 4242,
	}
	return event.Event{Kind: event.RunStart, Data: info.Data()}
}

func runEnd(st event.Status, code int, d time.Duration, reason string, hosts map[string]int) event.Event {
	return event.Event{Kind: event.RunEnd, Status: st, Duration: d,
		Data: event.RunEndInfo{ExitCode: code, Hosts: hosts, Reason: reason}.Data()}
}

func batchStart(i int, hosts ...string) event.Event {
	return event.Event{Kind: event.BatchStart, Batch: i, Engine: event.Engine{Hosts: hosts}}
}

func batchEnd(i int, st event.Status, d time.Duration, err string) event.Event {
	return event.Event{Kind: event.BatchEnd, Batch: i, Status: st, Duration: d, Error: err}
}

func hostStart(batch int, host string) event.Event {
	return event.Event{Kind: event.HostStart, Batch: batch, Host: host}
}

func hostEnd(batch int, host string, st event.Status, d time.Duration, err string) event.Event {
	return event.Event{Kind: event.HostEnd, Batch: batch, Host: host, Status: st, Duration: d, Error: err}
}

func step(kind event.Kind, host string, batch, index int, name string) event.Event {
	return event.Event{Kind: kind, Phase: event.Steps, Batch: batch, Host: host, StepIndex: index, Step: name}
}

func ended(e event.Event, st event.Status, d time.Duration, errMsg string) event.Event {
	e.Status, e.Duration, e.Error = st, d, errMsg
	e.Changed = st == event.Changed
	return e
}

// runSteps is a host running the four steps of the upgrade, all changed.
func runSteps(batch int, host string) []event.Event {
	var out []event.Event
	for i, name := range []string{"snapshot", "stop etcd", "swap", "start etcd"} {
		out = append(out, step(event.StepStart, host, batch, i, name),
			ended(step(event.StepEnd, host, batch, i, name), event.Changed, time.Duration(i+1)*600*time.Millisecond, ""))
	}
	return out
}

func controller(phase event.Phase, batch, index int, name string, st event.Status, d time.Duration, errMsg string) []event.Event {
	s := event.Event{Kind: event.StepStart, Phase: phase, Batch: batch, StepIndex: index, Step: name}
	return []event.Event{s, ended(withKind(s, event.StepEnd), st, d, errMsg)}
}

func withKind(e event.Event, k event.Kind) event.Event { e.Kind = k; return e }

// looped makes a controller step one with loop: over n items, as the
// engine's start event says.
func looped(evs []event.Event, n int) []event.Event {
	evs[0].Items = event.IntPtr(n)
	return evs
}

func undo(kind event.Kind, host string, batch, index int, name string) event.Event {
	return event.Event{Kind: kind, Phase: event.Rollback, Batch: batch, Host: host, StepIndex: index, Step: name, Undo: true}
}

func cat(parts ...[]event.Event) []event.Event {
	var out []event.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(e ...event.Event) []event.Event { return e }

var (
	hosts3   = []string{"etcd-1", "etcd-2", "etcd-3"}
	batches3 = [][]string{{"etcd-1"}, {"etcd-2", "etcd-3"}}
)

// scenarios are recorded runs, named after how they end.
func scenarios() []struct {
	name   string
	events []event.Event
} {
	return []struct {
		name   string
		events []event.Event
	}{
		{"success", cat(
			one(runStart(hosts3, batches3, false)),
			controller(event.Preflight, 0, 0, "cluster is healthy", event.OK, 200*time.Millisecond, ""),
			one(batchStart(1, "etcd-1"), hostStart(1, "etcd-1")),
			runSteps(1, "etcd-1")[:4],
			one(step(event.StepStart, "etcd-1", 1, 2, "swap"),
				func() event.Event {
					e := ended(step(event.StepRetry, "etcd-1", 1, 2, "swap"), "", 0, "text file busy")
					e.Attempt = 1
					return e
				}(),
				func() event.Event {
					e := ended(step(event.StepEnd, "etcd-1", 1, 2, "swap"), event.Changed, 2100*time.Millisecond, "")
					e.Attempt = 2
					return e
				}(),
				ended(step(event.StepEnd, "etcd-1", 1, 3, "start etcd"), event.Skipped, 0, ""),
				hostEnd(1, "etcd-1", event.Changed, 9*time.Second, ""),
				batchEnd(1, event.OK, 10*time.Second, ""),
				event.Event{Kind: event.GateStart, Batch: 1}),
			controller(event.BetweenBatches, 1, 0, "leader is stable", event.OK, 20*time.Second, ""),
			one(ended(event.Event{Kind: event.GateEnd, Batch: 1}, event.OK, 0, ""),
				batchStart(2, "etcd-2", "etcd-3"), hostStart(2, "etcd-2"), hostStart(2, "etcd-3")),
			runSteps(2, "etcd-2"),
			runSteps(2, "etcd-3"),
			one(hostEnd(2, "etcd-2", event.Changed, 0, ""),
				hostEnd(2, "etcd-3", event.Changed, 8*time.Second, ""),
				batchEnd(2, event.OK, 0, "")),
			controller(event.Post, 0, 0, "", event.OK, 90*time.Second, ""),
			one(runEnd(event.OK, 0, 95*time.Second, "", map[string]int{"changed": 3})),
		)},
		{"rollback", cat(
			one(runStart(hosts3, batches3, false), batchStart(1, "etcd-1"), hostStart(1, "etcd-1")),
			runSteps(1, "etcd-1"),
			one(hostEnd(1, "etcd-1", event.Changed, 0, ""), batchEnd(1, event.OK, 0, ""),
				batchStart(2, "etcd-2", "etcd-3"), hostStart(2, "etcd-2"), hostStart(2, "etcd-3")),
			runSteps(2, "etcd-2")[:2],
			runSteps(2, "etcd-3")[:2],
			one(step(event.StepStart, "etcd-3", 2, 1, "stop etcd"),
				// A command's output may hold anything, escape sequences too.
				ended(step(event.StepEnd, "etcd-3", 2, 1, "stop etcd"), event.Failed, 300*time.Millisecond,
					"exit status 1: \x1b[31mFailed\x1b[0m to stop etcd.service\r\nUnit is masked.\n"),
				event.Event{Kind: event.RollbackStart, Batch: 2, Host: "etcd-3"},
				undo(event.RollbackStepStart, "etcd-3", 2, 0, "snapshot"),
				ended(undo(event.RollbackStepEnd, "etcd-3", 2, 0, "snapshot"), event.OK, 100*time.Millisecond, ""),
				ended(event.Event{Kind: event.RollbackEnd, Batch: 2, Host: "etcd-3"}, event.RolledBack, 0, ""),
				hostEnd(2, "etcd-3", event.RolledBack, 4*time.Second, `step "stop etcd" failed; rolled back`)),
			runSteps(2, "etcd-2")[2:],
			one(hostEnd(2, "etcd-2", event.Changed, 0, ""),
				batchEnd(2, event.Failed, 0, "1 host failed"),
				event.Event{Kind: event.Abort, Error: "max_fail 0 exceeded: 1 host failed (etcd-3)"},
				runEnd(event.Aborted, 1, 40*time.Second, "max_fail 0 exceeded: 1 host failed (etcd-3)",
					map[string]int{"changed": 2, "rolled_back": 1})),
		)},
		{"rollback-failed", cat(
			one(runStart([]string{"etcd-1", "etcd-2"}, [][]string{{"etcd-1", "etcd-2"}}, false),
				batchStart(1, "etcd-1", "etcd-2"), hostStart(1, "etcd-1"), hostStart(1, "etcd-2")),
			runSteps(1, "etcd-1")[:4],
			one(step(event.StepStart, "etcd-1", 1, 2, "swap"),
				ended(step(event.StepEnd, "etcd-1", 1, 2, "swap"), event.Unreachable, 30*time.Second, "ssh: connection reset by peer"),
				event.Event{Kind: event.RollbackStart, Batch: 1, Host: "etcd-1"},
				undo(event.RollbackStepStart, "etcd-1", 1, 1, "stop etcd"),
				ended(undo(event.RollbackStepEnd, "etcd-1", 1, 1, "stop etcd"), event.Unreachable, 0, "ssh: no route to host"),
				ended(event.Event{Kind: event.RollbackEnd, Batch: 1, Host: "etcd-1"}, event.RollbackFailed, 0, "\"stop etcd\" not undone: ssh: no route to host; etcd stopped, binary not swapped; backup snapshot at backups/etcd-1.db"),
				hostEnd(1, "etcd-1", event.RollbackFailed, 0,
					"etcd-1: step \"swap\": ssh: connection reset by peer")),
			runSteps(1, "etcd-2"),
			one(hostEnd(1, "etcd-2", event.Changed, 5*time.Second, ""),
				batchEnd(1, event.Failed, 0, "1 host failed"),
				runEnd(event.RollbackFailed, 4, 61*time.Second, "a rollback failed; see the hosts' state",
					map[string]int{"changed": 1, "rollback_failed": 1})),
		)},
		{"crashed", cat(
			one(runStart(hosts3, batches3, false), batchStart(1, "etcd-1"), hostStart(1, "etcd-1")),
			runSteps(1, "etcd-1")[:3],
		)},
		{"preflight-failed", cat(
			one(runStart(hosts3, batches3, true)),
			controller(event.Preflight, 0, 0, "cluster is healthy", event.OK, 200*time.Millisecond, ""),
			looped(controller(event.Preflight, 0, 1, "versions allow the upgrade", event.Failed, time.Second,
				"item etcd-2 (loop_index 1): expect: etcd.version >= \"3.6.11\": got 3.6.4"), 3),
			one(runEnd(event.Refused, 3, 2*time.Second, "preflight did not pass; nothing was touched", nil)),
		)},
	}
}

// screen is a minimal terminal: it applies the output of a Live view (text,
// newlines, cursor up, erase below, colours ignored) and shows what would be
// left on the screen, so that a test sees what an operator sees.
type screen struct {
	lines [][]rune
	row   int
	col   int
}

var csi = regexp.MustCompile(`^\x1b\[([0-9;]*)([A-Za-z])`)

func (s *screen) write(t *testing.T, out string) {
	t.Helper()
	for len(out) > 0 {
		if m := csi.FindStringSubmatch(out); m != nil {
			out = out[len(m[0]):]
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "A":
				if n > s.row {
					t.Fatalf("cursor up %d from row %d: past the top of what was drawn", n, s.row)
				}
				s.row -= n
			case "J":
				s.grow()
				s.lines[s.row] = s.lines[s.row][:min(s.col, len(s.lines[s.row]))]
				s.lines = s.lines[:s.row+1]
			case "m":
			default:
				t.Fatalf("unexpected escape sequence %q", m[0])
			}
			continue
		}
		if out[0] == 0x1b {
			t.Fatalf("stray escape in output: %q", out[:min(len(out), 12)])
		}
		r, size := utf8.DecodeRuneInString(out)
		out = out[size:]
		if r == '\n' {
			s.row, s.col = s.row+1, 0
			continue
		}
		s.grow()
		line := s.lines[s.row]
		for len(line) <= s.col {
			line = append(line, ' ')
		}
		line[s.col] = r
		s.lines[s.row] = line
		s.col++
	}
}

func (s *screen) grow() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

func (s *screen) String() string {
	var b strings.Builder
	for i, l := range s.lines {
		if i == len(s.lines)-1 && len(l) == 0 {
			break
		}
		b.WriteString(strings.TrimRight(string(l), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// sgr matches colour sequences.
var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var errBroken = errors.New("broken pipe")
