package runner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/runner"
)

func TestRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string // steps and rollback, for host h1 alone
		exit       int
		status     runner.Status
		lines      []string // what h1 wrote, in order
		stateHas   []string
		rollbackEv []string // rollback events of h1: "kind step status"
	}{
		{
			name: "automatic undo, newest first, skipping what did not change",
			body: `
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
  - { name: unchanged, mark: { path: '{{ dir }}/log', text: u }, changed_when: false }
  - { name: irreversible, command: { cmd: 'true' } }
  - { name: skipped, mark: { path: '{{ dir }}/log', text: s }, when: false }
  - { name: c, fail: { msg: disk on fire } }
  - { name: never, mark: { path: '{{ dir }}/log', text: never } }`,
			exit:     1,
			status:   runner.StatusRolledBack,
			lines:    []string{"a", "b", "u", "undo b", "undo a"},
			stateHas: []string{`failed at "c": disk on fire`, `undid "b", "a"`, `cannot be undone (no undo), left as they are: "irreversible"`},
			rollbackEv: []string{
				"rollback_start h1 c", "rollback_step_end h1 irreversible skipped",
				"rollback_step_start h1 b", "rollback_step_end h1 b ok",
				"rollback_step_start h1 a", "rollback_step_end h1 a ok", "rollback_end h1 rolled_back",
			},
		},
		{
			name: "explicit rollback sees failed and completed",
			body: `
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: skipped, mark: { path: '{{ dir }}/log', text: s }, when: false }
  - { name: c, fail: { msg: no quorum } }
rollback:
  - name: tell
    mark: { path: '{{ dir }}/log', text: '{{ failed.step }}|{{ failed.error }}|{{ failed.result.rc }}|{{ join(completed, ",") }}' }
  - name: only if a ran
    mark: { path: '{{ dir }}/log', text: 'undo a by hand' }
    when: '"a" in completed'`,
			exit:     1,
			status:   runner.StatusRolledBack,
			lines:    []string{"a", "c|no quorum|3|a", "undo a by hand"},
			stateHas: []string{"rolled back by the runbook's rollback steps"},
			rollbackEv: []string{
				"rollback_start h1 c", "rollback_step_start h1 tell", "rollback_step_end h1 tell changed",
				"rollback_step_start h1 only if a ran", "rollback_step_end h1 only if a ran changed", "rollback_end h1 rolled_back",
			},
		},
		{
			name: "rollback none leaves the host as it is",
			body: `
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: c, fail: { msg: nope } }
rollback: none`,
			exit:     1,
			status:   runner.StatusFailed,
			lines:    []string{"a"},
			stateHas: []string{"rollback: none"},
		},
		{
			name: "a block's rollback runs first, then the host's undo of the rest",
			body: `
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - name: swap
    block:
      - { name: b1, mark: { path: '{{ dir }}/log', text: b1 } }
      - { name: b2, fail: { msg: bad binary } }
    rollback:
      - { name: restore, mark: { path: '{{ dir }}/log', text: 'restore after {{ failed.step }}: {{ join(completed, ",") }}' } }`,
			exit:     1,
			status:   runner.StatusRolledBack,
			lines:    []string{"a", "b1", "restore after b2: b1", "undo a"},
			stateHas: []string{`block "swap" rolled back`, `undid "a"`},
			rollbackEv: []string{
				"rollback_start h1 b2", "rollback_step_start h1 restore", "rollback_step_end h1 restore changed",
				"rollback_step_start h1 a", "rollback_step_end h1 a ok", "rollback_end h1 rolled_back",
			},
		},
		{
			name: "nested blocks roll back inside out; rollback none covers its steps",
			body: `
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - name: outer
    block:
      - { name: o1, mark: { path: '{{ dir }}/log', text: o1 } }
      - name: inner
        block:
          - { name: i1, mark: { path: '{{ dir }}/log', text: i1 } }
          - { name: i2, fail: { msg: x } }
        rollback: none
    rollback:
      - { name: outer undo, mark: { path: '{{ dir }}/log', text: 'outer undo {{ join(completed, ",") }}' } }`,
			exit:   1,
			status: runner.StatusRolledBack,
			lines:  []string{"a", "o1", "i1", "outer undo o1,i1", "undo a"},
		},
		{
			name: "a failed undo stops the rollback and says what was left",
			body: `
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, undofail: { path: '{{ dir }}/log' } }
  - { name: c, fail: { msg: nope } }`,
			exit:     4,
			status:   runner.StatusRollbackFailed,
			lines:    []string{"a", "undofail"},
			stateHas: []string{`"b" not undone: disk full`, `left as they are: "a"`},
			rollbackEv: []string{
				"rollback_start h1 c", "rollback_step_start h1 b", "rollback_step_end h1 b failed", "rollback_end h1 rollback_failed",
			},
		},
		{
			name: "a failed rollback step stops the rollback",
			body: `
steps:
  - { name: c, fail: { msg: nope } }
rollback:
  - { name: r1, fail: { msg: cannot restore } }
  - { name: r2, mark: { path: '{{ dir }}/log', text: r2 } }`,
			exit:     4,
			status:   runner.StatusRollbackFailed,
			stateHas: []string{`rollback step "r1" failed: cannot restore; not run: "r2"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "runbook: rb\nhosts: h1\n"+tt.body+"\n", "")
			r := e.run(runOpts{})
			checkExit(t, r, tt.exit)
			h := r.out.Hosts["h1"]
			t.Logf("state: %s", h.State)
			if h.Status != tt.status {
				t.Errorf("status %s, want %s (%s)", h.Status, tt.status, h.State)
			}
			if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, tt.lines) && tt.lines != nil {
				t.Errorf("h1 wrote %q, want %q", got, tt.lines)
			}
			for _, s := range tt.stateHas {
				if !strings.Contains(h.State, s) {
					t.Errorf("state %q does not say %q", h.State, s)
				}
			}
			if tt.rollbackEv != nil {
				got := kinds(r.events, func(e event.Event) bool {
					return strings.HasPrefix(string(e.Kind), "rollback_")
				})
				if !slices.Equal(got, tt.rollbackEv) {
					t.Errorf("rollback events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.rollbackEv, "\n"))
				}
			}
			if ends := find(r.events, func(e event.Event) bool { return e.Kind == event.HostEnd }); len(ends) != 1 || ends[0].Status != hostStatus(tt.status) {
				t.Errorf("host_end events %+v", ends)
			}
		})
	}
}

func hostStatus(s runner.Status) event.Status {
	switch s {
	case runner.StatusOK:
		return event.OK
	case runner.StatusRolledBack:
		return event.RolledBack
	case runner.StatusRollbackFailed:
		return event.RollbackFailed
	}
	return event.Status(s)
}
