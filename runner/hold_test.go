package runner_test

import (
	"strings"
	"testing"

	"github.com/runbookhq/runbook/runner"
)

// TestHold: a step that holds the host (an inconclusive analysis with no
// one to ask) rolls it back and stops the rollout as a failure does, but
// the run exits 3, unless another host really failed.
func TestHold(t *testing.T) {
	t.Parallel()
	const mark = `
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }`
	tests := []struct {
		name     string
		runbook  string
		exit     int
		forks    int
		statuses map[string]runner.Status
	}{
		{
			name: "held canary: rolled back, nothing else touched, exit 3",
			runbook: `
hosts: all
serial: 1
steps:` + mark + `
  - { name: b, fail: { msg: inconclusive, hold: true }, when: 'host.name == "h1"' }`,
			exit:     3,
			statuses: map[string]runner.Status{"h1": "rolled_back", "h2": "skipped", "h3": "skipped", "h4": "skipped"},
		},
		{
			name: "a held host and a failed one: exit 1",
			runbook: `
hosts: all
serial: 2
steps:` + mark + `
  - { name: b, fail: { msg: inconclusive, hold: true }, when: 'host.name == "h1"' }
  - { name: c, fail: { msg: bad }, when: 'host.name == "h2"' }`,
			exit:     1,
			forks:    2,
			statuses: map[string]runner.Status{"h1": "rolled_back", "h2": "rolled_back", "h3": "skipped", "h4": "skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "runbook: hold\n"+strings.TrimPrefix(tt.runbook, "\n")+"\n", "")
			r := e.run(runOpts{opts: func(o *runner.Options) { o.Forks = max(tt.forks, 1) }})
			checkExit(t, r, tt.exit)
			if got := statuses(r.out); !mapsEqual(got, tt.statuses) {
				t.Errorf("statuses %v, want %v%s", got, tt.statuses, describe(r.out))
			}
			if !r.out.Hosts["h1"].Held {
				t.Error("h1 is not marked held")
			}
		})
	}
}
