package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
)

func (r *runner) now() time.Time {
	if r.opts.Now != nil {
		return r.opts.Now()
	}
	return time.Now()
}

// outside says why t is outside w, and when it opens next.
func outside(w *eval.Window, t time.Time) string {
	next := w.Next(t)
	return fmt.Sprintf("outside the change window %q (now %s); it opens next at %s",
		w.String(), t.In(next.Location()).Format("Mon 2006-01-02 15:04 MST"), next.Format("Mon 2006-01-02 15:04 MST"))
}

// ignored reports whether the run ignores its windows, journaling it once.
func (r *runner) ignored(w *eval.Window, t time.Time) bool {
	if r.opts.IgnoreWindow == "" {
		return false
	}
	r.windowIgnored.Do(func() {
		data := map[string]any{"window": w.String()}
		if !w.Contains(t) {
			data["outside"] = outside(w, t)
		}
		// data.ignored and data.reason, as the engine writes them.
		r.emit(event.Event{Kind: event.Window, Status: event.OK, Data: data, Engine: event.Engine{Ignored: true, Reason: r.opts.IgnoreWindow}})
	})
	return true
}

// windowOpen checks the runbook's window before preflight (batch nil) or
// before batch *batch. Outside it, the run does not start (exit 3, nothing
// touched) or starts no new batch: the hosts of the batch before it have
// all ended, so none is left mid-way.
func (r *runner) windowOpen(ctx context.Context, batch *int) bool {
	w := r.p.Window
	if w == nil {
		return true
	}
	t := r.now()
	if r.ignored(w, t) || w.Contains(t) {
		return true
	}
	why := outside(w, t)
	e := event.Event{Kind: event.Window, Status: event.Refused, Data: map[string]any{"window": w.String(), "next": w.Next(t).UTC().Format(time.RFC3339)}}
	if batch == nil {
		e.Error = why + "; nothing was touched"
		r.emit(e)
		r.mu.Lock()
		r.out.OutsideWindow, r.out.Stopped = true, e.Error
		for _, h := range r.out.Hosts {
			h.State = "not started: " + why
		}
		r.mu.Unlock()
		return false
	}
	e.Batch = *batch
	e.Error = fmt.Sprintf("batch %d does not start: %s", *batch, why)
	r.emit(e)
	r.stopRun(e.Error)
	return false
}

// stepWindow checks step s's own window before it starts on this host.
// Outside it the step does not start: the run stops as on an interrupt (the
// host rolls back what it did), exit 3. Rollback steps have none: an undo
// must not wait for the calendar.
func (h *hostRun) stepWindow(ctx context.Context, s *plan.CompiledStep, m *seqMode) *failure {
	r := h.r
	if s.Window == nil || m.rollback {
		return nil
	}
	t := r.now()
	if r.ignored(s.Window, t) || s.Window.Contains(t) {
		return nil
	}
	idx := r.index.steps[s].index
	if s.IsBlock() {
		idx = r.index.blockRange[s][0]
	}
	name := h.stepName(s, h.inheritedOf(s).noLog)
	why := fmt.Sprintf("%s: step %q does not start: %s", h.host.Name, name, outside(s.Window, t))
	r.emit(event.Event{Kind: event.Window, Status: event.Refused, Phase: m.phase, Batch: h.batch, Host: h.host.Name, Step: name,
		StepIndex: idx, Error: why, Data: map[string]any{"window": s.Window.String(), "next": s.Window.Next(t).UTC().Format(time.RFC3339)}})
	r.stopRun(why)
	f := h.haltFailure(haltDrain, s, idx)
	f.err, f.rejected = fmt.Errorf("%s", outside(s.Window, t)), true
	return f
}
