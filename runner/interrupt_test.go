package runner_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/runner"
)

const gatedRunbook = `
runbook: interrupt
hosts: all
serial: 2
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: wait, gate: { key: '{{ key }}', path: '{{ dir }}/log' } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
`

// TestDrain: the first Ctrl-C lets the steps in flight finish, starts no new
// step, and rolls back the hosts left mid-way.
func TestDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gatedRunbook, "")
	drain := make(chan struct{})
	g := gateFor(e.gates)
	done := make(chan result)
	go func() { done <- e.run(runOpts{opts: func(o *runner.Options) { o.Drain = drain }}) }()
	arrived := []string{g.await(t), g.await(t)}
	slices.Sort(arrived)
	if !slices.Equal(arrived, []string{"h1", "h2"}) {
		t.Fatalf("arrived %q", arrived)
	}
	close(drain)
	g.open()
	r := <-done
	checkExit(t, r, 3)
	if !r.out.Interrupted {
		t.Error("Interrupted is not set")
	}
	want := map[string]runner.Status{"h1": "interrupted", "h2": "interrupted", "h3": "skipped", "h4": "skipped"}
	if got := statuses(r.out); !mapsEqual(got, want) {
		t.Errorf("statuses %v, want %v%s", got, want, describe(r.out))
	}
	for _, h := range []string{"h1", "h2"} {
		if got := hostLines(e.lines("log"), h); !slices.Equal(got, []string{"a", "gate", "undo gate", "undo a"}) {
			t.Errorf("%s wrote %q", h, got)
		}
		if !strings.Contains(r.out.Hosts[h].State, `interrupted before "b"`) || !strings.Contains(r.out.Hosts[h].State, "rolled back") {
			t.Errorf("%s state %q", h, r.out.Hosts[h].State)
		}
	}
	ints := find(r.events, func(e event.Event) bool { return e.Kind == event.Interrupt })
	if len(ints) != 1 || ints[0].Mode != "drain" {
		t.Errorf("interrupt events %+v", ints)
	}
	if bs := find(r.events, func(e event.Event) bool { return e.Kind == event.BatchStart }); len(bs) != 1 {
		t.Errorf("%d batches started", len(bs))
	}

	// Resumed, the hosts that were rolled back start over and the others run.
	j, st, err := journal.OpenAppend(e.state, e.runID)
	if err != nil {
		t.Fatal(err)
	}
	r = e.run(runOpts{j: j, resume: st})
	checkExit(t, r, 0)
	for _, h := range []string{"h1", "h2"} {
		if got := hostLines(e.lines("log"), h); !slices.Equal(got, []string{"a", "gate", "undo gate", "undo a", "a", "gate", "b"}) {
			t.Errorf("%s wrote %q", h, got)
		}
	}
	if got := hostLines(e.lines("log"), "h3"); !slices.Equal(got, []string{"a", "gate", "b"}) {
		t.Errorf("h3 wrote %q", got)
	}
}

// TestCancel: the second Ctrl-C stops at once: commands are killed, hosts are
// left as they are, and the journal still gets its interrupt and run_end.
func TestCancel(t *testing.T) {
	t.Parallel()
	t.Run("module waiting", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, gatedRunbook, "")
		g := gateFor(e.gates)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan result)
		go func() { done <- e.run(runOpts{ctx: ctx}) }()
		g.await(t)
		g.await(t)
		cancel()
		r := <-done
		checkExit(t, r, 3)
		want := map[string]runner.Status{"h1": "interrupted", "h2": "interrupted", "h3": "skipped", "h4": "skipped"}
		if got := statuses(r.out); !mapsEqual(got, want) {
			t.Errorf("statuses %v, want %v%s", got, want, describe(r.out))
		}
		for _, h := range []string{"h1", "h2"} {
			if got := hostLines(e.lines("log"), h); !slices.Equal(got, []string{"a"}) {
				t.Errorf("%s was rolled back after a stop: %q", h, got)
			}
		}
		ints := find(r.events, func(e event.Event) bool { return e.Kind == event.Interrupt })
		if len(ints) != 1 || ints[0].Mode != "stop" {
			t.Errorf("interrupt events %+v", ints)
		}
		if !r.st.Finished || r.st.Status != event.Interrupted {
			t.Errorf("run_end: finished %v status %s", r.st.Finished, r.st.Status)
		}

		// Resumed, the step in flight runs again, and says so; a does not.
		j, st, err := journal.OpenAppend(e.state, e.runID)
		if err != nil {
			t.Fatal(err)
		}
		g.open()
		r = e.run(runOpts{j: j, resume: st})
		checkExit(t, r, 0)
		for _, h := range []string{"h1", "h2", "h3", "h4"} {
			want := []string{"a", "gate", "b"}
			if got := hostLines(e.lines("log"), h); !slices.Equal(got, want) {
				t.Errorf("%s wrote %q, want %q", h, got, want)
			}
		}
		reruns := find(r.events[len(st.Events):], func(e event.Event) bool { return e.Kind == event.StepStart && e.Rerun != "" })
		if len(reruns) != 2 || reruns[0].Step != "wait" {
			t.Errorf("reruns %+v", reruns)
		}
	})
	t.Run("command killed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, `
runbook: kill
hosts: h1
steps:
  - { name: long, command: { cmd: 'sleep 600' } }
`, "")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		started := make(chan struct{})
		var once sync.Once
		sink := event.SinkFunc(func(ev event.Event) error {
			if ev.Kind == event.StepStart && ev.Step == "long" {
				once.Do(func() { close(started) })
			}
			return nil
		})
		done := make(chan result)
		go func() { done <- e.run(runOpts{ctx: ctx, sinks: []event.Sink{sink}}) }()
		<-started
		cancel()
		r := <-done
		checkExit(t, r, 3)
		ev := endOf(t, r, "h1", "long")
		if ev.Status != event.Interrupted || ev.Duration > testTimeout/2 {
			t.Errorf("step_end %+v", ev)
		}
	})
}

// failingSink is a required sink that fails from the event matching fail on.
type failingSink struct {
	mu     sync.Mutex
	fail   func(event.Event) bool
	failed bool
}

func (s *failingSink) Emit(e event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed || s.fail(e) {
		s.failed = true
		return errors.New("disk full")
	}
	return nil
}

// TestJournalFailure: when the record cannot be written, no step acts any
// more, its rollback included: an action the journal misses could be neither
// audited nor resumed. A host left mid-change ends rollback_failed (exit 4):
// a person must look; a run stopped before any change is interrupted (3).
func TestJournalFailure(t *testing.T) {
	t.Parallel()
	const rb = `
runbook: jf
hosts: h1
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
`
	for _, tc := range []struct {
		name  string
		fail  func(event.Event) bool
		lines []string
		exit  int
	}{
		{"end of a", func(ev event.Event) bool { return ev.Kind == event.StepEnd && ev.Step == "a" }, []string{"a"}, 4},
		{"start of b", func(ev event.Event) bool { return ev.Kind == event.StepStart && ev.Step == "b" }, []string{"a"}, 4},
		{"start of a", func(ev event.Event) bool { return ev.Kind == event.StepStart && ev.Step == "a" }, nil, 3},
		{"host start", func(ev event.Event) bool { return ev.Kind == event.HostStart }, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, rb, "")
			fs := &failingSink{fail: tc.fail}
			r := e.run(runOpts{opts: func(o *runner.Options) { o.Events.Require(fs) }})
			if r.err == nil || !strings.Contains(r.err.Error(), "disk full") {
				t.Errorf("Run returned %v", r.err)
			}
			checkExit(t, r, tc.exit)
			if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, tc.lines) {
				t.Errorf("h1 wrote %q, want %q", got, tc.lines)
			}
		})
	}
}

// TestJournalFailureLeavesCompletedHosts: with the journal gone, the abort
// that a host left mid-change causes cannot roll back the hosts that
// finished (on_abort: rollback_completed): it could not be recorded. They
// stay as they finished, and say so, rather than be reported as failed.
func TestJournalFailureLeavesCompletedHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: jf-abort
hosts: web
serial: 1
on_abort: rollback_completed
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
`, "")
	fs := &failingSink{fail: func(ev event.Event) bool { return ev.Kind == event.StepStart && ev.Host == "h2" && ev.Step == "b" }}
	r := e.run(runOpts{opts: func(o *runner.Options) { o.Events.Require(fs) }})
	checkExit(t, r, 4)
	if got := statuses(r.out); got["h1"] != runner.StatusOK || got["h2"] != runner.StatusRollbackFailed {
		t.Errorf("statuses %v", got)
	}
	if got := e.lines("log"); !slices.Equal(got, []string{"h1 a", "h1 b", "h2 a"}) {
		t.Errorf("log %q, want h1's steps, h2's first, and no undo", got)
	}
}
