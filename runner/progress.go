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
func (r *runner) doneHosts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.completed))
	for i, h := range r.completed {
		out[i] = h.host.Name
	}
	return out
}
