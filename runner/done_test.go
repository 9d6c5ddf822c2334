package runner_test

import (
	"slices"
	"testing"
)

// TestRunDone: between batches, run.done names the hosts changed so far,
// which a circuit breaker compares with the others.
func TestRunDone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `runbook: done
hosts: all
serial: 1
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
between_batches:
  - { name: fleet, mark: { path: '{{ dir }}/gates', text: '{{ join(run.done, ",") }}' } }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 0)
	want := []string{"controller h1", "controller h1,h2", "controller h1,h2,h3", "controller h1,h2,h3,h4"}
	if got := e.lines("gates"); !slices.Equal(got, want) {
		t.Errorf("run.done between batches: %q, want %q", got, want)
	}
}
