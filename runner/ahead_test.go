package runner_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/runner"
)

// aheadRunbook stages on each host ahead of its batch, works, then soaks at
// a gate of its own, which the test opens.
const aheadRunbook = `
runbook: ahead
hosts: web
serial: 1
steps:
  - name: stage
    mark: { path: '{{ dir }}/log', text: stage }
    register: staged
    ahead: true
  - name: work
    mark: { path: '{{ dir }}/log', text: 'work after {{ staged.line }}' }
  - name: soak
    gate: { key: '{{ key }}-{{ host.name }}', path: '{{ dir }}/log' }
`

// waitLine waits until the log has line, polling it.
func (e *env) waitLine(line string) {
	e.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !slices.Contains(e.lines("log"), line) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%q never came; the log: %q", line, e.lines("log"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAheadOverlapsLastStep: the next host stages while the host before it
// soaks, and not before; its own steps wait for its batch.
func TestAheadOverlapsLastStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, aheadRunbook, "")
	staged := make(chan string, 3)
	sink := event.SinkFunc(func(ev event.Event) error {
		if ev.Kind == event.StepEnd && ev.Step == "stage" && ev.Ahead {
			staged <- ev.Host
		}
		return nil
	})
	done := make(chan result, 1)
	go func() { done <- e.run(runOpts{sinks: []event.Sink{sink}}) }()
	for i, h := range []string{"h1", "h2", "h3"} {
		g := gateFor(e.gates + "-" + h)
		if got := g.await(t); got != h {
			t.Fatalf("%s at its soak, want %s", got, h)
		}
		if i < 2 {
			next := []string{"h2", "h3"}[i]
			// Staged while h soaks: h's gate is still closed.
			select {
			case got := <-staged:
				if got != next {
					t.Fatalf("%s staged ahead, want %s", got, next)
				}
			case <-time.After(testTimeout):
				t.Fatalf("%s did not stage while %s soaked", next, h)
			}
			if slices.Contains(e.lines("log"), next+" work after "+next+" stage") {
				t.Fatalf("%s worked before %s ended: %q", next, h, e.lines("log"))
			}
		}
		g.open()
	}
	r := <-done
	checkExit(t, r, 0)
	want := []string{
		"h1 stage", "h1 work after h1 stage", "h2 stage", "h1 gate",
		"h2 work after h2 stage", "h3 stage", "h2 gate",
		"h3 work after h3 stage", "h3 gate",
	}
	if got := e.lines("log"); !slices.Equal(got, want) {
		t.Errorf("log %q\nwant %q", got, want)
	}
	// The journal: h2's stage is h2's, marked ahead, before its batch and
	// while h1 was at its soak; h1's own stage did not run ahead.
	var order []string
	for _, ev := range r.events {
		switch {
		case ev.Kind == event.StepEnd && ev.Step == "stage":
			order = append(order, fmt.Sprintf("stage %s ahead=%v", ev.Host, ev.Ahead))
		case ev.Kind == event.StepEnd && ev.Step == "soak":
			order = append(order, "soak "+ev.Host)
		case ev.Kind == event.BatchStart:
			order = append(order, fmt.Sprintf("batch %d", ev.Batch))
		}
	}
	wantOrder := []string{"batch 1", "stage h1 ahead=false", "stage h2 ahead=true", "soak h1", "batch 2",
		"stage h3 ahead=true", "soak h2", "batch 3", "soak h3"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("journal order %q\nwant %q", order, wantOrder)
	}
	rec := r.st.Hosts["h2"].Steps.Done[0]
	if rec.Name != "stage" || !rec.Ahead || rec.Started.IsZero() || rec.Ended.Before(rec.Started) {
		t.Errorf("h2's journaled stage: %+v", rec)
	}
	// Begun once h1 was done with all but its soak, ended before h1 ended.
	work, soak := r.st.Hosts["h1"].Steps.Done[1], r.st.Hosts["h1"].Steps.Done[2]
	if rec.Started.Before(work.Ended) || !rec.Ended.Before(soak.Ended) {
		t.Errorf("h2 staged %v-%v, not after h1's work (ended %v) and within its soak (ended %v)", rec.Started, rec.Ended, work.Ended, soak.Ended)
	}
	starts := find(r.events, func(ev event.Event) bool { return ev.Kind == event.HostStart && ev.Host == "h2" })
	if len(starts) != 1 || !strings.Contains(fmt.Sprint(starts[0].Data["ran_ahead"]), `"stage"`) {
		t.Errorf("h2's host_start does not say what ran ahead: %v", starts)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		if o := r.out.Hosts[h]; o.Ok != 3 || o.Changed != 3 {
			t.Errorf("%s counts ok %d changed %d, want 3 and 3", h, o.Ok, o.Changed)
		}
	}
}

// TestAheadUndoneWhenBatchFails: the host before fails at its soak, the
// run aborts, and what the next host ran ahead is undone by the module's
// own undo (not the runbook's rollback steps) and journaled as such.
func TestAheadUndoneWhenBatchFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: web
serial: 1
steps:
  - name: stage
    mark: { path: '{{ dir }}/log', text: stage }
    ahead: true
  - name: work
    mark: { path: '{{ dir }}/log', text: work }
  - name: soak
    block:
      - gate: { key: '{{ key }}-{{ host.name }}' }
      - { name: unstable, fail: { msg: not stable }, when: 'host.name == "h1"' }
rollback:
  - name: the runbook's rollback
    mark: { path: '{{ dir }}/log', text: rollback }
`, "")
	done := make(chan result, 1)
	go func() { done <- e.run(runOpts{}) }()
	g := gateFor(e.gates + "-h1")
	g.await(t)
	e.waitLine("h2 stage")
	g.open()
	r := <-done
	checkExit(t, r, 1)
	want := []string{"h1 stage", "h1 work", "h2 stage", "h1 rollback", "undo h2 stage"}
	if got := e.lines("log"); !slices.Equal(got, want) {
		t.Errorf("log %q\nwant %q", got, want)
	}
	h2 := r.out.Hosts["h2"]
	if h2.Status != runner.StatusSkipped || !strings.Contains(h2.State, "not started: the run aborted") ||
		!strings.Contains(h2.State, `undid "stage"`) {
		t.Errorf("h2: %s (%s)", h2.Status, h2.State)
	}
	if s := r.st.Hosts["h2"].Status; s != journal.HostPending {
		t.Errorf("the journal has h2 %s, want pending: its ahead steps were undone", s)
	}
	rbs := find(r.events, func(ev event.Event) bool { return ev.Kind == event.RollbackStart && ev.Host == "h2" })
	if len(rbs) != 1 || rbs[0].Reason != journal.ReasonAhead || !rbs[0].Ahead {
		t.Errorf("h2's rollback_start: %+v", rbs)
	}
	if n := len(find(r.events, func(ev event.Event) bool { return ev.Host == "h3" })); n != 0 {
		t.Errorf("h3 has %d events; its batch is two away", n)
	}
}

// TestAheadWaitsForFailure: a host of the batch that fails before its last
// step keeps the next batch's ahead steps from starting at all.
func TestAheadWaitsForFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: web
serial: 1
steps:
  - { name: stage, mark: { path: '{{ dir }}/log', text: stage }, ahead: true }
  - { name: work, fail: { msg: broken }, when: 'host.name == "h1"' }
  - { name: soak, mark: { path: '{{ dir }}/log', text: soak } }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 1)
	if got, want := e.lines("log"), []string{"h1 stage", "undo h1 stage"}; !slices.Equal(got, want) {
		t.Errorf("log %q, want %q", got, want)
	}
}

// TestAheadCheck: in --check, ahead steps check ahead, and nothing is undone.
func TestAheadCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, aheadRunbook, "")
	for _, h := range []string{"h1", "h2", "h3"} {
		gateFor(e.gates + "-" + h).open()
	}
	r := e.run(runOpts{opts: func(o *runner.Options) { o.Check = true }})
	checkExit(t, r, 0)
	if got := e.lines("log"); len(got) != 0 {
		t.Errorf("--check wrote %q", got)
	}
}

// TestAheadResumeAfterEveryEvent cuts the journal of a run with ahead steps
// after each of its events and resumes it in a fresh world: a step the cut
// journal holds as done (ahead or not) does not run again, the hosts end as
// in the uncut run, and what ran ahead on a host whose batch never started
// is undone exactly once.
func TestAheadResumeAfterEveryEvent(t *testing.T) {
	t.Parallel()
	// In the uncut run h1 soaks until h2 has staged, so the journal has the
	// overlap; a resumed world has the file nowait and does not wait.
	const soak = `
  - name: soak
    block:
      - name: wait for the next stage
        shell: { cmd: 'for i in $(seq 1 2000); do [ -e {{ dir }}/nowait ] || grep -q "^h2 stage" {{ dir }}/log && exit 0; sleep 0.005; done' }
        when: 'host.name == "h1"'
        changed_when: false
      - { name: unstable, fail: { msg: not stable }, when: 'host.name == FAILING' }
`
	tests := []struct {
		name    string
		failing string
		exit    int
		final   map[string]runner.Status
	}{
		{"a run that succeeds", "none", 0,
			map[string]runner.Status{"h1": runner.StatusOK, "h2": runner.StatusOK, "h3": runner.StatusOK}},
		{"a run that aborts with h2 staged", "h1", 1,
			map[string]runner.Status{"h1": runner.StatusRolledBack, "h2": runner.StatusSkipped, "h3": runner.StatusSkipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rb := `
runbook: ahead
hosts: web
serial: 1
steps:
  - { name: stage, mark: { path: '{{ dir }}/log', text: stage }, ahead: true }
  - { name: work, mark: { path: '{{ dir }}/log', text: work } }` +
				strings.ReplaceAll(soak, "FAILING", `"`+tt.failing+`"`)
			full := newEnv(t, rb, "")
			whole := full.run(runOpts{})
			checkExit(t, whole, tt.exit)
			if got := statuses(whole.out); !mapsEqual(got, tt.final) {
				t.Fatalf("uncut run: %v%s", got, describe(whole.out))
			}
			if n := len(find(whole.events, func(ev event.Event) bool { return ev.Ahead && ev.Host == "h2" })); n == 0 {
				t.Fatalf("h2 did not stage ahead in the uncut run\n%s", whole.story())
			}
			lines := bytes.SplitAfter(whole.raw, []byte("\n"))
			lines = lines[:len(lines)-1]
			for k := 1; k < len(lines); k++ {
				cut := lines[:k]
				t.Run(fmt.Sprintf("after %d %s", k, kindOf(t, cut[k-1])), func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, rb, "")
					e.runID = full.runID
					if err := os.WriteFile(filepath.Join(e.dir, "nowait"), nil, 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.MkdirAll(filepath.Join(e.state, journal.RunsDir), 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(journal.Path(e.state, e.runID), bytes.Join(cut, nil), 0o600); err != nil {
						t.Fatal(err)
					}
					j, st, err := journal.OpenAppend(e.state, e.runID)
					if err != nil {
						t.Fatal(err)
					}
					r := e.run(runOpts{j: j, resume: st})
					if r.err != nil {
						t.Fatal(r.err)
					}
					checkExit(t, r, tt.exit)
					if got := statuses(r.out); !mapsEqual(got, tt.final) {
						t.Errorf("statuses %v, want %v%s\n%s", got, tt.final, describe(r.out), r.story())
					}
					checkAheadOnce(t, st, r, tt.failing != "none")
				})
			}
		})
	}
}

// checkAheadOnce checks the combined journal: each step completed once per
// host, and each undo once; nothing the cut journal holds as done ran again,
// unless it was undone since; aborted, h2 ends with its stage undone and
// h3 untouched.
func checkAheadOnce(t *testing.T, before *journal.State, r result, aborted bool) {
	t.Helper()
	ends := map[string]int{}
	for _, e := range r.events {
		if (e.Kind == event.StepEnd || e.Kind == event.RollbackStepEnd) && e.Host != "" &&
			(e.Status == event.OK || e.Status == event.Changed) && e.Step != "wait for the next stage" {
			ends[fmt.Sprintf("%s %s %s undo=%v", e.Kind, e.Host, e.Step, e.Undo)]++
		}
	}
	for k, n := range ends {
		if n != 1 {
			t.Errorf("%s recorded %d times\n%s", k, n, r.story())
		}
	}
	if aborted {
		if ends["rollback_step_end h2 stage undo=true"] != 1 && ends["step_end h2 stage undo=false"] == 1 {
			t.Errorf("h2 staged and was not undone\n%s", r.story())
		}
		if s := r.st.Hosts["h2"].Status; s != journal.HostPending {
			t.Errorf("h2 is %s in the journal, want pending\n%s", s, r.story())
		}
		for k := range ends {
			if strings.Contains(k, " h3 ") {
				t.Errorf("h3 was touched: %s", k)
			}
		}
	}
	doneBefore := map[string]bool{}
	for _, e := range before.Events {
		if e.Kind == event.StepEnd && e.Phase == event.Steps && (e.Status == event.Changed || e.Status == event.OK) {
			doneBefore[e.Host+" "+e.Step] = true
		}
	}
	for _, e := range r.events[len(before.Events):] {
		if e.Kind == event.StepStart && e.Phase == event.Steps && doneBefore[e.Host+" "+e.Step] {
			t.Errorf("%s %s ran again after the resume\n%s", e.Host, e.Step, r.story())
		}
	}
}

// TestAheadDrain: a Ctrl-C while the host before soaks lets the soak end,
// undoes what the next host ran ahead (its batch does not start), and a
// resume runs that host in its turn from its first step.
func TestAheadDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, aheadRunbook, "")
	drain := make(chan struct{})
	done := make(chan result, 1)
	go func() { done <- e.run(runOpts{opts: func(o *runner.Options) { o.Drain = drain }}) }()
	g := gateFor(e.gates + "-h1")
	g.await(t)
	e.waitLine("h2 stage")
	close(drain)
	g.open()
	r := <-done
	checkExit(t, r, 3)
	if got := statuses(r.out); got["h1"] != runner.StatusOK || got["h2"] != runner.StatusSkipped || got["h3"] != runner.StatusSkipped {
		t.Errorf("statuses %v%s", got, describe(r.out))
	}
	if got := hostLines(e.lines("log"), "h2"); !slices.Equal(got, []string{"stage", "undo stage"}) {
		t.Errorf("h2 wrote %q", got)
	}
	if s := r.st.Hosts["h2"].Status; s != journal.HostPending {
		t.Errorf("the journal has h2 %s, want pending", s)
	}

	for _, h := range []string{"h2", "h3"} {
		gateFor(e.gates + "-" + h).open()
	}
	j, st, err := journal.OpenAppend(e.state, e.runID)
	if err != nil {
		t.Fatal(err)
	}
	r = e.run(runOpts{j: j, resume: st})
	checkExit(t, r, 0)
	want := []string{"stage", "undo stage", "stage", "work after h2 stage", "gate"}
	if got := hostLines(e.lines("log"), "h2"); !slices.Equal(got, want) {
		t.Errorf("h2 wrote %q, want %q", got, want)
	}
	if got := hostLines(e.lines("log"), "h3"); !slices.Equal(got, []string{"stage", "work after h3 stage", "gate"}) {
		t.Errorf("h3 wrote %q", got)
	}
}

// TestAheadApartFromDelegated: a step another host delegates to a host
// and its ahead steps never run at once; here h1's soak runs on h2, so
// h2 stages before it or after it.
func TestAheadApartFromDelegated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: h1:h2
serial: 1
steps:
  - { name: stage, mark: { path: '{{ dir }}/log', text: stage }, ahead: true }
  - name: soak on the next host
    gate: { key: '{{ key }}-{{ host.name }}', path: '{{ dir }}/log' }
    delegate_to: '{{ host.name == "h1" ? "h2" : "controller" }}'
`, "")
	done := make(chan result, 1)
	go func() { done <- e.run(runOpts{}) }()
	g := gateFor(e.gates + "-h1")
	g.await(t)
	g.open()
	gateFor(e.gates + "-h2").open()
	r := <-done
	checkExit(t, r, 0)
	var order []string
	for _, ev := range r.events {
		if (ev.Kind == event.StepStart || ev.Kind == event.StepEnd) && ev.Step != "" && (ev.Host == "h2" && ev.Ahead || ev.Host == "h1" && ev.Step != "stage") {
			order = append(order, fmt.Sprintf("%s %s %s", ev.Kind, ev.Host, ev.Step))
		}
	}
	// One after the other, in either order (whichever took h2 first).
	soak := []string{"step_start h1 soak on the next host", "step_end h1 soak on the next host"}
	stage := []string{"step_start h2 stage", "step_end h2 stage"}
	if !slices.Equal(order, append(slices.Clone(soak), stage...)) && !slices.Equal(order, append(slices.Clone(stage), soak...)) {
		t.Errorf("h1's step on h2 and h2's ahead step overlap: %q", order)
	}
}

// TestAheadKeptWhenRunGoesOn: the host before fails at its soak after the
// next host staged, but max_fail tolerates it: the next host goes on with
// what it ran ahead, which does not run again.
func TestAheadKeptWhenRunGoesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: h1:h2
serial: 1
max_fail: 1
steps:
  - name: stage
    mark: { path: '{{ dir }}/log', text: stage }
    register: staged
    ahead: true
  - name: soak
    block:
      - gate: { key: '{{ key }}-{{ host.name }}' }
      - { name: unstable, fail: { msg: not stable }, when: 'host.name == "h1"' }
      - { name: work, mark: { path: '{{ dir }}/log', text: 'work after {{ staged.line }}' } }
`, "")
	gateFor(e.gates + "-h2").open()
	done := make(chan result, 1)
	go func() { done <- e.run(runOpts{}) }()
	g := gateFor(e.gates + "-h1")
	g.await(t)
	e.waitLine("h2 stage")
	g.open()
	r := <-done
	checkExit(t, r, 1)
	if got, want := hostLines(e.lines("log"), "h2"), []string{"stage", "work after h2 stage"}; !slices.Equal(got, want) {
		t.Errorf("h2 wrote %q, want %q", got, want)
	}
	if got := statuses(r.out); got["h1"] != runner.StatusRolledBack || got["h2"] != runner.StatusOK {
		t.Errorf("statuses %v%s", got, describe(r.out))
	}
}

// TestAheadAfterDelegatedLoop: a looped step that delegates to the hosts
// (here preflight, on every member) hands them back when it ends, so their
// ahead steps are not held off for ever.
func TestAheadAfterDelegatedLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: h1:h2
serial: 1
preflight:
  - name: on every host
    mark: { path: '{{ dir }}/log', text: 'preflight {{ item.name }}' }
    loop: '{{ group("web") }}'
    delegate_to: '{{ item.name }}'
steps:
  - { name: stage, mark: { path: '{{ dir }}/log', text: stage }, ahead: true }
  - { name: soak, mark: { path: '{{ dir }}/log', text: soak } }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 0)
	if got := hostLines(e.lines("log"), "h2"); !slices.Contains(got, "stage") || !slices.Contains(got, "soak") {
		t.Errorf("h2 wrote %q", got)
	}
}

// TestAheadFromNamedStep: with ahead: { from: soak }, the next host stages
// while the host before it soaks, although steps after the soak remain
// (here one that is skipped, as an analysis without a Prometheus is).
func TestAheadFromNamedStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: web
serial: 1
steps:
  - name: stage
    mark: { path: '{{ dir }}/log', text: stage }
    ahead: { from: soak }
  - name: work
    mark: { path: '{{ dir }}/log', text: work }
  - name: soak
    gate: { key: '{{ key }}-{{ host.name }}', path: '{{ dir }}/log' }
  - name: analysis
    mark: { path: '{{ dir }}/log', text: analysis }
    when: 'false'
  - name: after
    mark: { path: '{{ dir }}/log', text: after }
`, "")
	done := make(chan result, 1)
	go func() { done <- e.run(runOpts{}) }()
	for i, h := range []string{"h1", "h2", "h3"} {
		g := gateFor(e.gates + "-" + h)
		g.await(t)
		if i < 2 {
			// The gate is still closed: the next host stages during the soak.
			e.waitLine([]string{"h2", "h3"}[i] + " stage")
			if slices.Contains(e.lines("log"), h+" after") {
				t.Fatalf("%s went past its soak with its gate closed: %q", h, e.lines("log"))
			}
		}
		g.open()
	}
	r := <-done
	checkExit(t, r, 0)
	want := []string{
		"h1 stage", "h1 work", "h2 stage", "h1 gate", "h1 after",
		"h2 work", "h3 stage", "h2 gate", "h2 after",
		"h3 work", "h3 gate", "h3 after",
	}
	if got := e.lines("log"); !slices.Equal(got, want) {
		t.Errorf("log %q\nwant %q", got, want)
	}
}

// TestAheadLastStepSkipped: with ahead: true, a last step that is skipped
// still marks the last step, so the next host stages only after the soak:
// the reason for from:.
func TestAheadLastStepSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: ahead
hosts: web
serial: 1
steps:
  - { name: stage, mark: { path: '{{ dir }}/log', text: stage }, ahead: true }
  - { name: soak, mark: { path: '{{ dir }}/log', text: soak } }
  - { name: analysis, mark: { path: '{{ dir }}/log', text: analysis }, when: 'false' }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 0)
	want := []string{"h1 stage", "h1 soak", "h2 stage", "h2 soak", "h3 stage", "h3 soak"}
	if got := e.lines("log"); !slices.Equal(got, want) {
		t.Errorf("log %q\nwant %q", got, want)
	}
}
