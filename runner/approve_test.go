package runner_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/runner"
)

const approveRunbook = `
runbook: approve
hosts: web
serial: 1
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - name: the point of no return
    pause: { prompt: 'go on?', approve: { required: 1 } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
`

// approver answers approval requests as a person would, recording them.
type approver struct {
	mu     sync.Mutex
	asked  []modules.ApprovalRequest
	answer func(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error)
}

func (a *approver) approve(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
	a.mu.Lock()
	a.asked = append(a.asked, req)
	a.mu.Unlock()
	return a.answer(ctx, req)
}

func TestApprovals(t *testing.T) {
	t.Parallel()
	rejected := func(host string) func(context.Context, modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
		return func(_ context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
			if req.Host == host {
				return modules.ApprovalOutcome{}, fmt.Errorf("%w by bob: not tonight", modules.ErrRejected)
			}
			return modules.ApprovalOutcome{Approvers: []string{"bob"}}, nil
		}
	}
	tests := []struct {
		name    string
		yes     bool
		answer  func(context.Context, modules.ApprovalRequest) (modules.ApprovalOutcome, error)
		noStore bool
		exit    int
		want    map[string]runner.Status
		log     []string
		stopped string
	}{
		{name: "approved on every host", answer: rejected("none"), exit: 0,
			want: map[string]runner.Status{"h1": runner.StatusOK, "h2": runner.StatusOK, "h3": runner.StatusOK},
			log:  []string{"h1 a", "h1 b", "h2 a", "h2 b", "h3 a", "h3 b"}},
		{name: "a rejection stops the run and rolls the host back", answer: rejected("h2"), exit: 3,
			want:    map[string]runner.Status{"h1": runner.StatusOK, "h2": runner.StatusInterrupted, "h3": runner.StatusSkipped},
			log:     []string{"h1 a", "h1 b", "h2 a", "undo h2 a"},
			stopped: "h2: rejected by bob: not tonight"},
		{name: "--yes does not pass an approval", yes: true, answer: rejected("h1"), exit: 3,
			want: map[string]runner.Status{"h1": runner.StatusInterrupted, "h2": runner.StatusSkipped, "h3": runner.StatusSkipped},
			log:  []string{"h1 a", "undo h1 a"}, stopped: "rejected by bob"},
		{name: "no approval store refuses", yes: true, noStore: true, exit: 1,
			want: map[string]runner.Status{"h1": runner.StatusRolledBack, "h2": runner.StatusSkipped, "h3": runner.StatusSkipped},
			log:  []string{"h1 a", "undo h1 a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, approveRunbook, "")
			a := &approver{answer: tt.answer}
			r := e.run(runOpts{opts: func(o *runner.Options) {
				o.Yes = tt.yes
				if !tt.noStore {
					o.Approve = a.approve
				}
			}})
			checkExit(t, r, tt.exit)
			if got := statuses(r.out); !mapsEqual(got, tt.want) {
				t.Errorf("hosts %v, want %v\n%s", got, tt.want, r.story())
			}
			if got := e.lines("log"); !slices.Equal(got, tt.log) {
				t.Errorf("log %v, want %v", got, tt.log)
			}
			if !strings.Contains(r.out.Stopped, tt.stopped) {
				t.Errorf("Stopped = %q, want %q", r.out.Stopped, tt.stopped)
			}
			for _, req := range a.asked {
				if req.Step != "the point of no return" || req.StepID != "steps[1]" || req.Prompt != "go on?" || req.Required != 1 {
					t.Errorf("request %+v does not name the step and its rules", req)
				}
			}
			if tt.stopped != "" {
				end := find(r.events, func(e event.Event) bool { return e.Kind == event.RunEnd })
				if len(end) != 1 || !strings.Contains(fmt.Sprint(end[0].Data["reason"]), tt.stopped) || end[0].Status != event.Interrupted {
					t.Errorf("run_end %+v, want interrupted with reason %q", end, tt.stopped)
				}
			}
		})
	}
}

// TestApprovalDrain: Ctrl-C while a step waits for approval ends the wait
// (nobody needs to answer) and drains: the host rolls back, exit 3.
func TestApprovalDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, approveRunbook, "")
	drain := make(chan struct{})
	waiting := make(chan struct{})
	a := &approver{answer: func(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
		close(waiting)
		<-ctx.Done()
		return modules.ApprovalOutcome{}, ctx.Err()
	}}
	go func() {
		<-waiting
		close(drain)
	}()
	r := e.run(runOpts{opts: func(o *runner.Options) {
		o.Approve, o.Drain = a.approve, drain
	}})
	checkExit(t, r, 3)
	want := map[string]runner.Status{"h1": runner.StatusInterrupted, "h2": runner.StatusSkipped, "h3": runner.StatusSkipped}
	if got := statuses(r.out); !mapsEqual(got, want) {
		t.Errorf("hosts %v, want %v\n%s", got, want, r.story())
	}
	if got := e.lines("log"); !slices.Equal(got, []string{"h1 a", "undo h1 a"}) {
		t.Errorf("log %v", got)
	}
	ends := find(r.events, func(e event.Event) bool { return e.Kind == event.StepEnd && e.Step == "the point of no return" })
	if len(ends) != 1 || ends[0].Status != event.Interrupted {
		t.Errorf("the wait ended %+v, want interrupted", ends)
	}
}
