package journal

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
)

// tick returns a clock that moves one second per reading, so that stories and
// summaries are the same on every machine.
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

var t0 = time.Date(2026, 11, 24, 2, 39, 55, 0, time.UTC)

// newRun opens a journal for id under dir and a Bus that requires it.
func newRun(t *testing.T, dir, id string, start time.Time, secrets *redact.Set) (*Journal, *event.Bus) {
	t.Helper()
	j, err := Open(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	bus := event.NewBus(id, event.Options{Now: tick(start), Secrets: secrets})
	bus.Require(j)
	return j, bus
}

func emitAll(t *testing.T, bus *event.Bus, evs ...event.Event) {
	t.Helper()
	for _, e := range evs {
		if err := bus.Emit(e); err != nil {
			t.Fatalf("emit %s: %v", e.Kind, err)
		}
	}
}

// readLines decodes every line of a journal file, failing on any that is not a
// complete JSON event.
func readLines(t *testing.T, path string) []event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []event.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", n, err, sc.Bytes())
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func runStart(hosts []string, batches [][]string) event.Event {
	info := event.RunInfo{
		Runbook: "upgrade-etcd.yml", Name: "upgrade-etcd", RunbookDigest: "sha256:1111",
		Inventory: "inventory/lab.yml", InventoryDigest: "sha256:2222",
		Hosts: hosts, Batches: batches, Args: []string{"exec", "upgrade-etcd.yml", "-i", "lab"},
		User: "ops", PID: 4242, Version: "v0.1.0",
	}
	return event.Event{Kind: event.RunStart, Data: info.Data()}
}

func step(kind event.Kind, host string, batch, index int, name string) event.Event {
	return event.Event{Kind: kind, Phase: event.Steps, Batch: batch, Host: host, StepIndex: index, Step: name}
}

func ended(e event.Event, st event.Status, d time.Duration, result map[string]any, errMsg string) event.Event {
	e.Status, e.Duration, e.Result, e.Error = st, d, result, errMsg
	e.Changed = st == event.Changed
	return e
}

// firstPart is an upgrade of three etcd members that crashes while etcd-2 swaps
// its binary: etcd-1 done (with a no_log step and a retry), gates passed,
// etcd-3 failed and rolled back by automatic undo.
func firstPart() []event.Event {
	hosts := []string{"etcd-1", "etcd-2", "etcd-3"}
	batches := [][]string{{"etcd-1"}, {"etcd-2", "etcd-3"}}
	pre := event.Event{Kind: event.StepStart, Phase: event.Preflight, Host: "etcd-1", Step: "cluster is healthy"}
	gate := event.Event{Kind: event.StepStart, Phase: event.BetweenBatches, Batch: 1, Step: "leader is stable"}
	return []event.Event{
		runStart(hosts, batches),
		pre, ended(withKind(pre, event.StepEnd), event.OK, 200*time.Millisecond, map[string]any{"members": 3.0}, ""),
		{Kind: event.BatchStart, Batch: 1, Engine: event.Engine{Hosts: []string{"etcd-1"}}},
		{Kind: event.HostStart, Batch: 1, Host: "etcd-1"},
		step(event.StepStart, "etcd-1", 1, 0, "snapshot"),
		ended(step(event.StepEnd, "etcd-1", 1, 0, "snapshot"), event.Changed, 1500*time.Millisecond, map[string]any{"path": "backups/etcd-1.db"}, ""),
		noLog(step(event.StepStart, "etcd-1", 1, 1, "fetch token")),
		noLog(ended(step(event.StepEnd, "etcd-1", 1, 1, "fetch token"), event.OK, 10*time.Millisecond, map[string]any{"stdout": "tok-hunter2"}, "")),
		step(event.StepStart, "etcd-1", 1, 2, "swap"),
		attempt(ended(step(event.StepRetry, "etcd-1", 1, 2, "swap"), "", 0, nil, "text file busy"), 1),
		attempt(ended(step(event.StepEnd, "etcd-1", 1, 2, "swap"), event.Changed, 2100*time.Millisecond, map[string]any{"backup": "/usr/local/bin/etcd.runbook-bak"}, ""), 2),
		step(event.StepStart, "etcd-1", 1, 3, "start"),
		ended(step(event.StepEnd, "etcd-1", 1, 3, "start"), event.Changed, 3*time.Second, nil, ""),
		ended(event.Event{Kind: event.HostEnd, Batch: 1, Host: "etcd-1"}, event.Changed, 9*time.Second, nil, ""),
		ended(event.Event{Kind: event.BatchEnd, Batch: 1}, event.OK, 10*time.Second, nil, ""),
		{Kind: event.GateStart, Batch: 1},
		gate, ended(withKind(gate, event.StepEnd), event.OK, 20*time.Second, nil, ""),
		ended(event.Event{Kind: event.GateEnd, Batch: 1}, event.OK, 0, nil, ""),
		{Kind: event.BatchStart, Batch: 2, Engine: event.Engine{Hosts: []string{"etcd-2", "etcd-3"}}},
		{Kind: event.HostStart, Batch: 2, Host: "etcd-2"},
		{Kind: event.HostStart, Batch: 2, Host: "etcd-3"},
		step(event.StepStart, "etcd-2", 2, 0, "snapshot"),
		step(event.StepStart, "etcd-3", 2, 0, "snapshot"),
		ended(step(event.StepEnd, "etcd-3", 2, 0, "snapshot"), event.Changed, 1400*time.Millisecond, map[string]any{"path": "backups/etcd-3.db"}, ""),
		ended(step(event.StepEnd, "etcd-2", 2, 0, "snapshot"), event.Changed, 1600*time.Millisecond, map[string]any{"path": "backups/etcd-2.db"}, ""),
		step(event.StepStart, "etcd-3", 2, 2, "swap"),
		ended(step(event.StepEnd, "etcd-3", 2, 2, "swap"), event.Failed, 300*time.Millisecond, nil,
			"swap: dist/etcd-3.7.3: no such file or directory\nsecond line of detail"),
		{Kind: event.RollbackStart, Batch: 2, Host: "etcd-3"},
		undo(event.RollbackStepStart, "etcd-3", 0, "snapshot"),
		ended(undo(event.RollbackStepEnd, "etcd-3", 0, "snapshot"), event.OK, 100*time.Millisecond, nil, ""),
		ended(event.Event{Kind: event.RollbackEnd, Batch: 2, Host: "etcd-3"}, event.RolledBack, 0, nil, ""),
		ended(event.Event{Kind: event.HostEnd, Batch: 2, Host: "etcd-3"}, event.RolledBack, 4*time.Second, nil, "swap failed"),
		step(event.StepStart, "etcd-2", 2, 2, "swap"),
	}
}

// secondPart is the resume of firstPart: etcd-2 swaps again and finishes; the
// run ends failed because etcd-3 failed.
func secondPart() []event.Event {
	info := event.RunInfo{Runbook: "upgrade-etcd.yml", Name: "upgrade-etcd", Args: []string{"resume"}, PID: 4343}
	return []event.Event{
		{Kind: event.RunResume, Data: info.Data()},
		step(event.StepStart, "etcd-2", 2, 2, "swap"),
		ended(step(event.StepEnd, "etcd-2", 2, 2, "swap"), event.Changed, 2*time.Second, map[string]any{"backup": "/usr/local/bin/etcd.runbook-bak"}, ""),
		step(event.StepStart, "etcd-2", 2, 3, "start"),
		ended(step(event.StepEnd, "etcd-2", 2, 3, "start"), event.Changed, 3*time.Second, nil, ""),
		ended(event.Event{Kind: event.HostEnd, Batch: 2, Host: "etcd-2"}, event.Changed, 0, nil, ""),
		ended(event.Event{Kind: event.BatchEnd, Batch: 2}, event.Failed, 0, nil, "1 host failed"),
		{Kind: event.Abort, Error: "max_fail 0 exceeded: 1 host failed (etcd-3)"},
		{Kind: event.RunEnd, Status: event.Failed, Duration: 95 * time.Second,
			Data: event.RunEndInfo{ExitCode: 1, Hosts: map[string]int{"changed": 2, "rolled_back": 1}, Reason: "etcd-3 failed and was rolled back"}.Data()},
	}
}

func withKind(e event.Event, k event.Kind) event.Event { e.Kind = k; return e }
func noLog(e event.Event) event.Event                  { e.NoLog = true; return e }
func attempt(e event.Event, n int) event.Event         { e.Attempt = n; return e }

func undo(kind event.Kind, host string, index int, name string) event.Event {
	return event.Event{Kind: kind, Phase: event.Rollback, Batch: 2, Host: host, StepIndex: index, Step: name, Undo: true}
}

// last returns the latest record of the step at index (Undo false), if it ended.
func last(s Steps, index int) (StepRecord, bool) {
	for i := len(s.Done) - 1; i >= 0; i-- {
		if r := s.Done[i]; r.Index == index && !r.Undo {
			return r, true
		}
	}
	return StepRecord{}, false
}

// succeeded returns the latest record of each step whose latest run ended ok
// or changed, in the order they ended.
func succeeded(s Steps) []StepRecord {
	latest := map[int]int{}
	for i, r := range s.Done {
		if !r.Undo {
			latest[r.Index] = i
		}
	}
	var out []StepRecord
	for i, r := range s.Done {
		if r.Undo || latest[r.Index] != i {
			continue
		}
		if r.Status == event.OK || r.Status == event.Changed {
			out = append(out, r)
		}
	}
	return out
}
