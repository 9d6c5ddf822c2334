package runner_test

import (
	"context"
	"sync"
	"testing"

	"github.com/runbookhq/runbook/runner"
)

// confirmer answers pause gates and checks that no two questions are asked at once.
type confirmer struct {
	mu      sync.Mutex
	answer  bool
	asked   int
	asking  int
	overlap bool
}

func (c *confirmer) confirm(ctx context.Context, prompt string) (bool, error) {
	c.mu.Lock()
	c.asked++
	c.asking++
	if c.asking > 1 {
		c.overlap = true
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.asking--
		c.mu.Unlock()
	}()
	return c.answer, nil
}

func TestPauseGates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		runOnce  bool
		yes      bool
		answer   *bool // nil: no terminal
		exit     int
		asked    int
		statuses runner.Status
	}{
		{name: "run_once asks once per batch", runOnce: true, answer: ptr(true), asked: 1, statuses: runner.StatusOK},
		{name: "each host asks, one at a time", answer: ptr(true), asked: 3, statuses: runner.StatusOK},
		{name: "a refusal rolls the batch back", runOnce: true, answer: ptr(false), asked: 1, exit: 1, statuses: runner.StatusRolledBack},
		{name: "--yes answers", runOnce: true, yes: true, statuses: runner.StatusOK},
		{name: "no terminal and no --yes refuses", runOnce: true, exit: 1, statuses: runner.StatusRolledBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, `
runbook: pause
hosts: web
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - name: look
    pause: { prompt: 'dashboards green?' }
    run_once: `+map[bool]string{true: "true", false: "false"}[tt.runOnce]+`
`, "")
			c := &confirmer{}
			r := e.run(runOpts{opts: func(o *runner.Options) {
				o.Yes = tt.yes
				if tt.answer != nil {
					c.answer = *tt.answer
					o.Confirm = c.confirm
				}
			}})
			checkExit(t, r, tt.exit)
			if c.asked != tt.asked || c.overlap {
				t.Errorf("asked %d times (overlapping: %v), want %d", c.asked, c.overlap, tt.asked)
			}
			for _, h := range []string{"h1", "h2", "h3"} {
				if st := r.out.Hosts[h].Status; st != tt.statuses {
					t.Errorf("%s %s, want %s", h, st, tt.statuses)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
