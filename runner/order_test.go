package runner_test

import (
	"slices"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/runner"
)

// TestBatchesAndOrder runs hosts one fork at a time, so the order of the lines
// they write is the order the engine ran them in.
func TestBatchesAndOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		header      string
		wantBatches [][]string
		wantLines   []string
	}{
		{
			name:        "inventory order, serial 1",
			header:      "hosts: web\nserial: 1",
			wantBatches: [][]string{{"h1"}, {"h2"}, {"h3"}},
			wantLines:   []string{"h1 a", "h1 b", "h2 a", "h2 b", "h3 a", "h3 b"},
		},
		{
			name:        "reverse, canary then the rest",
			header:      "hosts: all\norder: reverse\nserial: [1, \"100%\"]",
			wantBatches: [][]string{{"h4"}, {"h3", "h2", "h1"}},
			wantLines:   []string{"h4 a", "h4 b", "h3 a", "h3 b", "h2 a", "h2 b", "h1 a", "h1 b"},
		},
		{
			name:        "sorted by a var, 50% batches",
			header:      "hosts: all\norder: host.vars.weight\nserial: \"50%\"",
			wantBatches: [][]string{{"h2", "h3"}, {"h1", "h4"}},
			wantLines:   []string{"h2 a", "h2 b", "h3 a", "h3 b", "h1 a", "h1 b", "h4 a", "h4 b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "runbook: order\n"+tt.header+`
steps:
  - name: a
    mark: { path: '{{ dir }}/log', text: a }
  - name: b
    mark: { path: '{{ dir }}/log', text: b }
`, "")
			r := e.run(runOpts{opts: func(o *runner.Options) { o.Forks = 1 }})
			checkExit(t, r, 0)
			if got := e.lines("log"); !slices.Equal(got, tt.wantLines) {
				t.Errorf("lines %q, want %q", got, tt.wantLines)
			}
			var batches [][]string
			for _, ev := range find(r.events, func(e event.Event) bool { return e.Kind == event.BatchStart }) {
				batches = append(batches, ev.Hosts)
			}
			if !slices.EqualFunc(batches, tt.wantBatches, slices.Equal[[]string]) {
				t.Errorf("batches %q, want %q", batches, tt.wantBatches)
			}
			for n, h := range r.out.Hosts {
				if h.Status != runner.StatusOK || h.Ok != 2 || h.Changed != 2 {
					t.Errorf("%s: %+v", n, h)
				}
			}
		})
	}
}
