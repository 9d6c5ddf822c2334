package runner_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/runner"
)

// TestResumeAfterEveryEvent cuts the journal of a finished run after each of
// its events, as a crash would, resumes from there in a fresh world, and
// checks that the combined journal tells each host's story exactly once: no
// completed step runs again, the one in flight does, and every host ends as
// it did in the uncut run.
func TestResumeAfterEveryEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		runbook string
		exit    int
		final   map[string]runner.Status
	}{
		{
			name: "a run that succeeds",
			runbook: `
runbook: resume
hosts: h1:h2
serial: 1
preflight:
  - { name: ready, command: { cmd: 'true' } }
steps:
  - name: a
    mark: { path: '{{ dir }}/log', text: a }
    register: got_a
  - name: b
    mark: { path: '{{ dir }}/log', text: 'b after {{ got_a.line }}' }
    when: got_a.changed
between_batches:
  - { name: gate, command: { cmd: 'true' } }
post:
  - { name: done, command: { cmd: 'true' } }
`,
			final: map[string]runner.Status{"h1": runner.StatusOK, "h2": runner.StatusOK},
		},
		{
			name: "a run whose second host rolls back",
			runbook: `
runbook: resume
hosts: h1:h2
serial: 1
max_fail: 1
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - name: blk
    block:
      - { name: b, mark: { path: '{{ dir }}/log', text: b } }
      - { name: c, fail: { msg: nope }, when: 'host.name == "h2"' }
    rollback:
      - { name: fix b, mark: { path: '{{ dir }}/log', text: 'fix b after {{ failed.step }}' } }
`,
			exit:  1,
			final: map[string]runner.Status{"h1": runner.StatusOK, "h2": runner.StatusRolledBack},
		},
		{
			name: "a looped step, undone item by item on the host that fails",
			runbook: `
runbook: resume
hosts: h1:h2
serial: 1
max_fail: 1
steps:
  - name: each
    mark: { path: '{{ dir }}/log', text: '{{ item.name }}' }
    loop: '{{ group("web") }}'
    delegate_to: '{{ item.name }}'
    register: each
  - { name: colors, mark: { path: '{{ dir }}/log', text: '{{ join(map(each.results, #.item.vars.color), ",") }}' } }
  - { name: c, fail: { msg: nope }, when: 'host.name == "h2"' }
`,
			exit:  1,
			final: map[string]runner.Status{"h1": runner.StatusOK, "h2": runner.StatusRolledBack},
		},
		{
			name: "a run that aborts and rolls back the finished host",
			runbook: `
runbook: resume
hosts: h1:h2:h3
serial: 1
on_abort: rollback_completed
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: c, fail: { msg: nope }, when: 'host.name == "h2"' }
  - { name: d, mark: { path: '{{ dir }}/log', text: d } }
`,
			exit:  1,
			final: map[string]runner.Status{"h1": runner.StatusRolledBack, "h2": runner.StatusRolledBack, "h3": runner.StatusSkipped},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			full := newEnv(t, tt.runbook, "")
			whole := full.run(runOpts{})
			checkExit(t, whole, tt.exit)
			if got := statuses(whole.out); !mapsEqual(got, tt.final) {
				t.Fatalf("uncut run: %v%s", got, describe(whole.out))
			}
			lines := bytes.SplitAfter(whole.raw, []byte("\n"))
			lines = lines[:len(lines)-1] // the empty piece after the last newline
			for k := 1; k < len(lines); k++ {
				cut := lines[:k]
				last := cut[k-1]
				t.Run(fmt.Sprintf("after %d %s", k, kindOf(t, last)), func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, tt.runbook, "")
					e.runID = full.runID
					runs := filepath.Join(e.state, journal.RunsDir)
					if err := os.MkdirAll(runs, 0o700); err != nil {
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
					checkOnce(t, st, r)
				})
			}
		})
	}
}

func kindOf(t *testing.T, line []byte) string {
	var st struct{ Kind, Host, Step string }
	if err := jsonUnmarshal(line, &st); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(st.Kind + " " + st.Host + " " + st.Step)
}

// checkOnce checks the combined journal: one host_end per host, one completed
// end per step and per undo, and that the resumed part did again only what the
// cut journal had not recorded as done.
func checkOnce(t *testing.T, before *journal.State, r result) {
	t.Helper()
	hostEnds := map[string]int{}
	stepEnds := map[string]int{}
	for _, e := range r.events {
		switch {
		case e.Kind == event.HostEnd:
			hostEnds[e.Host]++
		case (e.Kind == event.StepEnd || e.Kind == event.RollbackStepEnd) && e.Host != "controller" &&
			(e.Status == event.OK || e.Status == event.Changed):
			stepEnds[fmt.Sprintf("%s %s %s undo=%v", e.Kind, e.Host, e.Step, e.Undo)]++
		}
	}
	for h, n := range hostEnds {
		if n != 1 {
			t.Errorf("%s ended %d times\n%s", h, n, r.story())
		}
	}
	if len(hostEnds) != 2 {
		t.Errorf("hosts that ended: %v\n%s", hostEnds, r.story())
	}
	for k, n := range stepEnds {
		if n != 1 {
			t.Errorf("%s recorded %d times\n%s", k, n, r.story())
		}
	}
	// A step whose end the cut journal holds did not run again in the new world.
	doneBefore := map[string]bool{}
	for _, e := range before.Events {
		if e.Kind == event.StepEnd && e.Phase == event.Steps && (e.Status == event.Changed || e.Status == event.OK) {
			doneBefore[e.Host+" "+e.Step] = true
		}
	}
	for _, e := range r.events[len(before.Events):] {
		if e.Kind == event.StepStart && e.Phase == event.Steps && doneBefore[e.Host+" "+e.Step] {
			t.Errorf("%s %s ran again after the resume", e.Host, e.Step)
		}
	}
}
