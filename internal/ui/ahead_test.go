package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// aheadStep is a step of host, of batch, run ahead of it.
func aheadStep(kind event.Kind, host string, batch, index int, name string) event.Event {
	e := step(kind, host, batch, index, name)
	e.Ahead = true
	return e
}

// TestLiveAhead: a host of the next batch shows its ahead step at work
// beside the host that soaks, then a line for how it went, and leaves the
// live area until its batch starts; an undo of it says so.
func TestLiveAhead(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	r := newRig(t, LiveOptions{Width: 100, Height: 20})
	r.emit(0, start(batches3), batchStart(1, "etcd-1"), hostStart(1, "etcd-1"),
		step(event.StepStart, "etcd-1", 1, 3, "soak"),
		aheadStep(event.StepStart, "etcd-2", 2, 0, "stage"))
	f := r.frame(time.Second)
	for _, want := range []string{" etcd-1  4/4 soak  1s\n", " etcd-2  ahead: 1/4 stage  1s\n"} {
		if !strings.Contains(f, want) {
			t.Errorf("frame lacks %q:\n%s", want, f)
		}
	}
	r.emit(2*time.Second, ended(aheadStep(event.StepEnd, "etcd-2", 2, 0, "stage"), event.Changed, time.Second, ""))
	f = r.frame(2 * time.Second)
	if !strings.Contains(f, "✓ etcd-2  ahead: 1/4 stage  changed  1s\n") || strings.Contains(f, "after ahead") {
		t.Errorf("frame after the ahead step: %q", f)
	}
	r.emit(3*time.Second, event.Event{Kind: event.RollbackStart, Batch: 2, Host: "etcd-2",
		Engine: event.Engine{Reason: "ahead", Ahead: true}},
		event.Event{Kind: event.RollbackEnd, Batch: 2, Host: "etcd-2", Status: event.RolledBack})
	f = r.frame(3 * time.Second)
	if !strings.Contains(f, "↺ etcd-2  ahead steps undone: its batch did not start\n") || strings.Contains(f, "rolling back") {
		t.Errorf("frame after the undo: %q", f)
	}
}

func TestPlainAhead(t *testing.T) {
	var tot runTotals
	tot.learn(start(batches3))
	got := plainLine(ended(aheadStep(event.StepEnd, "etcd-2", 2, 0, "stage"), event.Changed, time.Second, ""), &tot)
	if want := `etcd-2 ahead step 1/4 "stage" changed (1s)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
