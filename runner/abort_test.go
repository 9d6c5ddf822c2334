package runner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/runner"
)

func TestAbortAndPhases(t *testing.T) {
	t.Parallel()
	const mark = `
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }`
	tests := []struct {
		name     string
		runbook  string
		forks    int
		exit     int
		statuses map[string]runner.Status
		lines    []string // the whole log, in order (forks 1)
		aborted  string   // part of the abort reason, "" when the run must not abort
		check    func(t *testing.T, r result)
	}{
		{
			name: "max_fail as a count",
			runbook: `
hosts: all
serial: 1
max_fail: 1
steps:` + mark + `
  - { name: b, fail: { msg: nope }, when: 'host.name in ["h1", "h2"]' }`,
			exit:     1,
			statuses: map[string]runner.Status{"h1": "rolled_back", "h2": "rolled_back", "h3": "skipped", "h4": "skipped"},
			lines:    []string{"h1 a", "undo h1 a", "h2 a", "undo h2 a"},
			aborted:  "2 failed hosts exceed max_fail 1",
		},
		{
			name: "max_fail as a percent",
			runbook: `
hosts: all
serial: 1
max_fail: "25%"
steps:` + mark + `
  - { name: b, fail: { msg: nope }, when: 'host.name in ["h2", "h3"]' }`,
			exit:     1,
			statuses: map[string]runner.Status{"h1": "ok", "h2": "rolled_back", "h3": "rolled_back", "h4": "skipped"},
			aborted:  "2 failed hosts exceed max_fail 1",
		},
		{
			name: "within max_fail the run goes on",
			runbook: `
hosts: all
serial: 2
max_fail: "50%"
steps:` + mark + `
  - { name: b, fail: { msg: nope }, when: 'host.name in ["h2", "h3"]' }`,
			exit:     1,
			statuses: map[string]runner.Status{"h1": "ok", "h2": "rolled_back", "h3": "rolled_back", "h4": "ok"},
		},
		{
			name: "once over max_fail no new host starts, even in the batch",
			runbook: `
hosts: all
steps:` + mark + `
  - { name: b, fail: { msg: nope }, when: 'host.name == "h1"' }`,
			exit:     1,
			statuses: map[string]runner.Status{"h1": "rolled_back", "h2": "skipped", "h3": "skipped", "h4": "skipped"},
			lines:    []string{"h1 a", "undo h1 a"},
			aborted:  "1 failed host exceeds max_fail 0",
		},
		{
			name: "a failed gate aborts before the next batch",
			runbook: `
hosts: all
serial: 1
steps:` + mark + `
between_batches:
  - name: healthy
    command: { cmd: 'test ! -e {{ dir }}/log' }
post:
  - name: never
    mark: { path: '{{ dir }}/log', text: post }`,
			exit:     1,
			statuses: map[string]runner.Status{"h1": "ok", "h2": "skipped", "h3": "skipped", "h4": "skipped"},
			lines:    []string{"h1 a"},
			aborted:  `between_batches gate "healthy" failed after batch 1`,
			check: func(t *testing.T, r result) {
				got := kinds(r.events, func(e event.Event) bool {
					return e.Kind == event.GateStart || e.Kind == event.GateEnd || e.Kind == event.Abort
				})
				want := []string{"gate_start", "gate_end healthy failed", "abort aborted"}
				if !slices.Equal(got, want) {
					t.Errorf("gate events %q, want %q", got, want)
				}
			},
		},
		{
			name: "on_abort rollback_completed undoes finished hosts, newest first",
			runbook: `
hosts: all
serial: 1
on_abort: rollback_completed
steps:` + mark + `
  - { name: b, fail: { msg: nope }, when: 'host.name == "h3"' }`,
			exit:     1,
			statuses: map[string]runner.Status{"h1": "rolled_back", "h2": "rolled_back", "h3": "rolled_back", "h4": "skipped"},
			lines:    []string{"h1 a", "h2 a", "h3 a", "undo h3 a", "undo h2 a", "undo h1 a"},
			aborted:  "exceeds max_fail 0",
			check: func(t *testing.T, r result) {
				got := kinds(r.events, func(e event.Event) bool { return e.Kind == event.RollbackEnd || e.Kind == event.Abort })
				want := []string{"rollback_end h3 rolled_back", "abort aborted", "rollback_end h2 rolled_back", "rollback_end h1 rolled_back"}
				if !slices.Equal(got, want) {
					t.Errorf("events %q, want %q", got, want)
				}
			},
		},
		{
			name: "a failed preflight touches nothing",
			runbook: `
hosts: all
preflight:
  - name: cluster healthy
    command: { cmd: 'false' }
steps:` + mark,
			exit:     3, // refused: nothing was touched, unlike a host that failed (1)
			statuses: map[string]runner.Status{"h1": "skipped", "h2": "skipped", "h3": "skipped", "h4": "skipped"},
			check: func(t *testing.T, r result) {
				if !r.out.PreflightFailed {
					t.Error("PreflightFailed is not set")
				}
				if hs := find(r.events, func(e event.Event) bool { return e.Kind == event.HostStart || e.Kind == event.BatchStart }); hs != nil {
					t.Errorf("hosts were started: %+v", hs)
				}
				pf := find(r.events, func(e event.Event) bool { return e.Phase == event.Preflight && e.Kind == event.StepEnd })
				if len(pf) != 1 || pf[0].Status != event.Failed || pf[0].Host != "controller" {
					t.Errorf("preflight events %+v", pf)
				}
			},
		},
		{
			name: "preflight registers for every host, post runs once at the end",
			runbook: `
hosts: all
serial: 2
preflight:
  - name: version
    command: { cmd: 'echo 3.7' }
    register: want
steps:
  - mark: { path: '{{ dir }}/log', text: '{{ want.stdout }} {{ run.batch }} {{ host.name }}' }
post:
  - name: done
    mark: { path: '{{ dir }}/log', text: 'post {{ want.stdout }} {{ host.name }}' }`,
			exit:     0,
			statuses: map[string]runner.Status{"h1": "ok", "h2": "ok", "h3": "ok", "h4": "ok"},
			lines:    []string{"h1 3.7 1 h1", "h2 3.7 1 h2", "h3 3.7 2 h3", "h4 3.7 2 h4", "controller post 3.7 controller"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "runbook: abort\n"+strings.TrimPrefix(tt.runbook, "\n")+"\n", "")
			r := e.run(runOpts{opts: func(o *runner.Options) { o.Forks = 1 }})
			checkExit(t, r, tt.exit)
			if got := statuses(r.out); !mapsEqual(got, tt.statuses) {
				t.Errorf("statuses %v, want %v%s", got, tt.statuses, describe(r.out))
			}
			if tt.lines != nil {
				if got := e.lines("log"); !slices.Equal(got, tt.lines) {
					t.Errorf("lines %q, want %q", got, tt.lines)
				}
			}
			aborts := find(r.events, func(e event.Event) bool { return e.Kind == event.Abort })
			switch {
			case tt.aborted == "" && (r.out.Aborted || aborts != nil):
				t.Errorf("the run aborted: %s", r.out.AbortReason)
			case tt.aborted != "" && (!r.out.Aborted || len(aborts) != 1 || !strings.Contains(aborts[0].Error, tt.aborted)):
				t.Errorf("abort %v %q, events %+v; want one saying %q", r.out.Aborted, r.out.AbortReason, aborts, tt.aborted)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
