package runner

import (
	"context"

	"github.com/runbookhq/runbook/internal/event"
)

type progressKey struct{}

// withProgress carries to the module's call how to report its progress as
// events of the step that base describes, without widening every
// signature between the step and the call.
func withProgress(ctx context.Context, r *runner, base event.Event) context.Context {
	return context.WithValue(ctx, progressKey{}, func(data map[string]any) {
		ev := base
		ev.Kind = event.StepProgress
		ev.Data = data
		r.emit(ev)
	})
}

func progressOf(ctx context.Context) func(map[string]any) {
	f, _ := ctx.Value(progressKey{}).(func(map[string]any))
	return f
}

// doneHosts names the hosts that completed every step so far (run.done).
// Every step's scope asks, so a fresh copy each time cost a run over N hosts
// N names per step; completed only grows, so its names are kept and each
// caller gets a view capped at their number then: appending past it later
// never writes into what a caller holds.
func (r *runner) doneHosts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.doneNames == nil {
		r.doneNames = []string{} // empty, not nil, as before
	}
	for _, h := range r.completed[len(r.doneNames):] {
		r.doneNames = append(r.doneNames, h.host.Name)
	}
	n := len(r.doneNames)
	return r.doneNames[:n:n]
}
