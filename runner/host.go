package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// hostRun is the sequence of steps of one host, or of the controller in
// preflight, between_batches and post. It is used by one goroutine at a time.
type hostRun struct {
	r *runner
	// host is the host as the plan resolved it (the controller for the
	// once phases), which its own steps run over; vars starts as its vars
	// and takes what set_fact sets.
	host   *plan.Host
	isHost bool
	vars   map[string]any
	batch  int
	phase  event.Phase // of its main steps
	once   *batchOnce  // nil outside a batch
	out    *HostOutcome

	registered map[string]any
	done       []*doneStep  // steps that ended ok or changed, in order
	covered    map[int]bool // steps a block's own rollback dealt with
	ran        bool         // a step acted (started), so a drain rolls the host back
	notes      hostNotes
	rollback   rollbackState
	// progress is where the host stood when the run it resumes stopped;
	// nil on a fresh run.
	progress *journal.Progress
	// ahead: the host runs its ahead steps, before its batch (ahead.go).
	ahead bool
}

// doneStep is a completed step, with what its automatic undo needs.
type doneStep struct {
	step    *plan.CompiledStep
	index   int
	name    string
	changed bool
	noLog   bool
	result  modules.Result
	module  modules.Module // nil after a resume: rendered again for the undo
	target  *plan.Host     // nil after a resume: resolved again
	ranOn   string         // run_once: the host that ran it, when not this one
	// items are the completed items of a looped step, each undone on its own.
	// partial: the step failed after them, so it is not completed, but they
	// are undone all the same. lost: the journal does not hold them (no_log).
	items   []*doneItem
	partial bool
	lost    bool
}

// hostNotes are what happened to the host, in words, for HostOutcome.State.
type hostNotes struct {
	list []string
	// failSaid: why the host's steps stopped is noted, once, before what
	// its blocks' rollbacks then did.
	failSaid bool
}

type rollbackState struct {
	started     bool
	ended       bool
	failed      bool
	interrupted bool
	reason      string
	err         string
}

func (r *runner) newHostRun(ph *plan.Host, batch int, once *batchOnce) *hostRun {
	h := &hostRun{
		r: r, isHost: true, batch: batch, phase: event.Steps,
		host: ph, vars: ph.Vars, once: once, out: r.out.Hosts[ph.Name],
		registered: map[string]any{}, covered: map[int]bool{},
	}
	r.mu.Lock()
	maps.Copy(h.registered, r.shared)
	r.mu.Unlock()
	h.progress = r.progress(ph.Name)
	if h.out == nil {
		h.out = &HostOutcome{Name: ph.Name, Batch: batch}
	}
	return h
}

// newControllerRun is the controller as preflight, gates and post see it: host
// is {name: "controller"} with the plan's ControllerVars.
func (r *runner) newControllerRun(phase event.Phase, batch int) *hostRun {
	h := &hostRun{
		r: r, batch: batch, phase: phase,
		host: plan.ControllerHost(r.ctrlVars), vars: r.ctrlVars,
		registered: map[string]any{}, covered: map[int]bool{},
		out: &HostOutcome{Name: plan.Controller},
	}
	r.mu.Lock()
	maps.Copy(h.registered, r.shared)
	r.mu.Unlock()
	return h
}

// scope is what the host's expressions see.
func (h *hostRun) scope(m *seqMode) *eval.Scope {
	s := &eval.Scope{
		Vars: h.vars, Host: h.host.Eval(), Registered: h.registered, Inventory: h.r.inv,
		Run: eval.Run{ID: h.r.runID(), Batch: h.batch, Started: h.r.runStarted(), Resumed: h.r.resumed != nil, Done: h.r.doneHosts()},
		Now: h.r.opts.Now,
	}
	if m != nil && m.failed != nil {
		s.Failed, s.Completed = m.failed, m.completed
	}
	return s
}

// secretScope is s for a step that is no_log when noLog is set: every value its
// templates render (the {{ }} parts, not the runbook's text around them) is
// a secret from then on, wherever it turns up. The runbook's own words, such
// as the program a command runs, stay readable.
func (h *hostRun) secretScope(s *eval.Scope, noLog bool) *eval.Scope {
	if noLog {
		s.Rendered = h.r.markRendered
	}
	return s
}

// markRendered records what a part of a no_log step's template rendered: its
// strings and numbers, inside lists and maps too. A host or the run rendered
// whole ({{ group("etcd") }} for a loop, {{ run }}) is left out: its name,
// groups and id are the inventory's and the engine's words, and whatever the
// step takes from it (item.vars.token) is rendered by a part of its own and
// recorded then.
func (r *runner) markRendered(v any) {
	r.secrets.AddValue(plainData(reflect.ValueOf(v), 0))
}

// outputFields are the fields of a result that hold what a step read or
// printed, rather than the module's own words about it (state, msg, path).
var outputFields = []string{"stdout", "stderr", "stdout_lines", "stderr_lines", "body", "json"}

// markOutput records the output of a no_log step that registers its result
// (and of each of its loop items): a later step that quotes it in a
// template ('{{ token.stdout }}') is not no_log, and would show it.
func (r *runner) markOutput(result map[string]any) {
	for _, k := range outputFields {
		if v, ok := result[k]; ok {
			r.secrets.AddValue(plainData(reflect.ValueOf(v), 0))
		}
	}
	if items, ok := result["results"].([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				r.markOutput(m)
			}
		}
	}
}

func plainData(v reflect.Value, depth int) any {
	if !v.IsValid() || depth > 32 {
		return nil
	}
	switch v.Kind() {
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return v.Interface()
	case reflect.Interface:
		return plainData(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return string(v.Bytes())
		}
		out := make([]any, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			out = append(out, plainData(v.Index(i), depth+1))
		}
		return out
	case reflect.Map:
		out := make([]any, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			out = append(out, plainData(it.Value(), depth+1))
		}
		return out
	}
	return nil // structs (hosts, the run), pointers, bools
}

func (r *runner) runID() string {
	if r.opts.RunID != "" {
		return r.opts.RunID
	}
	if r.resumed != nil {
		return r.resumed.RunID
	}
	return ""
}

func (r *runner) runStarted() time.Time {
	if r.resumed != nil && !r.resumed.Started.IsZero() {
		return r.resumed.Started
	}
	return r.started
}

func (h *hostRun) note(format string, args ...any) {
	h.notes.list = append(h.notes.list, fmt.Sprintf(format, args...))
}

// completedNames are the names of the steps that completed, for `completed`.
func (h *hostRun) completedNames(from, to int) []string {
	out := []string{}
	for _, d := range h.done {
		if d.index >= from && d.index < to && !d.partial {
			out = append(out, d.name)
		}
	}
	return out
}

// runHost runs one host of batch bn: its steps, then its rollback if one failed.
func (r *runner) runHost(ctx context.Context, bn int, ph *plan.Host, once *batchOnce) {
	h, steps, ahead, aheadFailed := r.hostFor(ph, bn, once)
	defer once.end(ph.Name)
	start := time.Now()
	var g event.Engine
	var data map[string]any
	if ahead {
		data = aheadNote(nil, h, r.ahead.steps)
	}
	pr := h.progress
	if pr != nil {
		g.Resumed.Yes = true
		if pr.Rerun != nil {
			g.InFlight = pr.Rerun.Name
		}
		if pr.StartedOver {
			g.Restart = "rolled back after an interrupt: runs from its first step again"
		}
	}
	r.emit(event.Event{Kind: event.HostStart, Batch: bn, Host: h.host.Name, Data: data, Engine: g})

	var f *failure
	if pr != nil && !ahead {
		// Before anything runs again: the stopped run's command may still run.
		f = h.leftovers(ctx)
	}
	if f != nil {
		h.note("nothing was run again or rolled back")
	} else if f = aheadFailed; f != nil {
		h.afterFailure(ctx, f)
	} else {
		m := h.mainMode()
		f = h.runList(ctx, steps, inherited{}, m)
		if f == nil && m.failedBefore != nil {
			// A rollback under way with no step of the list to fail at (an
			// abort's) goes on all the same.
			f = h.resumeRollback(m.failedBefore, inherited{})
		}
		if f != nil {
			h.afterFailure(ctx, f)
		}
	}
	h.end(f, time.Since(start))
	r.ahead.ended(h, f)
}

// afterFailure decides what the host's failure leads to: its rollback, or
// nothing when the host cannot be reached or the operator stopped the run.
func (h *hostRun) afterFailure(ctx context.Context, f *failure) {
	switch f.kind {
	case failUnreachable:
		h.note("nothing was rolled back")
		if h.rollback.started {
			h.endRollback(ctx)
		}
	case failInterrupted:
		h.note("left as it is")
		if h.rollback.started {
			h.rollback.interrupted = true
			h.endRollback(ctx)
		}
	case failStep, failStopped, failAbort:
		switch {
		case h.r.opts.Check:
			h.note("--check: nothing to roll back")
		case f.kind == failStopped && !h.ran:
			h.note("no step had run, nothing to roll back")
		case h.rollback.failed || h.rollback.interrupted:
			h.note("the host's rollback was not run")
			h.endRollback(ctx)
		default:
			h.hostRollback(ctx, f, f.reason())
		}
	}
}

// noteFailure says, once, why the host's steps stopped, before what its
// blocks' rollbacks then did.
func (h *hostRun) noteFailure(f *failure) {
	if h.notes.failSaid {
		return
	}
	h.notes.failSaid = true
	switch f.kind {
	case failStep:
		h.note("failed at %q: %s", f.name, f.errText())
	case failUnreachable:
		h.note("unreachable at %q: %s; whether it acted is unknown", f.name, f.errText())
	case failInterrupted:
		h.note("stopped at %q", f.name)
	case failStopped:
		if f.rejected {
			h.note("stopped at %q: %s", f.name, f.errText())
			break
		}
		h.note("interrupted before %q", f.name)
	}
}

// end records how the host ended.
func (h *hostRun) end(f *failure, d time.Duration) {
	r := h.r
	out := h.out
	out.Duration = d
	countsFailed := false
	switch {
	case f == nil:
		out.Status = StatusOK
		if len(h.notes.list) == 0 {
			h.note("every step done")
		}
	case f.kind == failUnreachable:
		out.Status, countsFailed = StatusUnreachable, true
	case h.rollback.failed:
		out.Status, countsFailed = StatusRollbackFailed, true
	case f.kind == failInterrupted || h.rollback.interrupted:
		out.Status = StatusInterrupted
		countsFailed = f.kind == failStep
	case f.kind == failStopped:
		out.Status = StatusInterrupted
	case h.rollback.started:
		out.Status, countsFailed = StatusRolledBack, true
	default:
		out.Status, countsFailed = StatusFailed, true
	}
	if f != nil {
		out.Err = &StepError{Host: h.host.Name, Step: f.name, Err: errors.New(f.errText())}
	}
	out.State = strings.Join(h.notes.list, "; ")

	r.mu.Lock()
	if countsFailed {
		r.failedHosts++
		if f.held {
			r.heldHosts++
			out.Held = true
		}
	}
	if h.rollback.failed {
		r.out.RollbackFailed = true
	}
	if f == nil {
		r.completed = append(r.completed, h)
	}
	if f != nil && (f.kind == failInterrupted || f.kind == failStopped) {
		r.out.Interrupted = true
	}
	r.mu.Unlock()

	ev := event.Event{Kind: event.HostEnd, Batch: h.batch, Host: h.host.Name, Status: hostEventStatus(out.Status), Duration: d,
		Engine: event.Engine{State: new(out.State), Counts: &event.Counts{OK: out.Ok, Changed: out.Changed, Skipped: out.Skipped, Failed: out.Failed}}}
	if out.Err != nil {
		ev.Error = out.Err.Error()
	}
	r.emit(ev)
	lg := r.log.Info()
	if out.Status != StatusOK {
		lg = r.log.Warn()
	}
	lg.Str("host", h.host.Name).Str("status", string(out.Status)).Str("state", r.secrets.Redact(out.State)).Msg("host ended")
}

func hostEventStatus(s Status) event.Status {
	switch s {
	case StatusOK:
		return event.OK
	case StatusRolledBack:
		return event.RolledBack
	case StatusRollbackFailed:
		return event.RollbackFailed
	case StatusUnreachable:
		return event.Unreachable
	case StatusInterrupted:
		return event.Interrupted
	case StatusSkipped:
		return event.Skipped
	}
	return event.Failed
}
