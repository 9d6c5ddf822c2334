package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/modules"
)

// blockRollback runs block s's own rollback after failure f inside it. Its
// steps then count as dealt with: the host's automatic undo leaves them out.
func (h *hostRun) blockRollback(ctx context.Context, s *plan.CompiledStep, inh inherited, f *failure, parent *seqMode) {
	rg := h.r.index.blockRange[s]
	cover := func() {
		for i := rg[0]; i < rg[1]; i++ {
			h.covered[i] = true
		}
	}
	switch {
	case s.Rollback.None:
		cover()
		h.note("block %q has rollback: none, so its steps were left as they are", s.Name)
		return
	case len(s.Rollback.Steps) == 0:
		return
	case h.rollback.failed || h.rollback.interrupted:
		// An inner block's rollback did not complete: stop rolling back.
		return
	}
	h.beginRollback(f)
	m := &seqMode{phase: parent.phase, rollback: true, failed: f.scopeValue(),
		completed: h.completedNames(rg[0], rg[1]), blockRollback: s.ID, done: h.rollbackDone(event.Steps)}
	switch {
	case parent.rollback:
		m.start, m.end = parent.start, parent.end
	case h.isHost:
		m.start, m.end = event.RollbackStepStart, event.RollbackStepEnd
	default:
		m.start, m.end = event.StepStart, event.StepEnd
	}
	ff := h.runList(ctx, s.Rollback.Steps, inh.forRollback(), m)
	cover()
	switch {
	case ff == nil:
		h.note("block %q rolled back", s.Name)
	case ff.kind == failInterrupted:
		h.rollback.interrupted = true
		h.note("the rollback of block %q was stopped at %q", s.Name, ff.name)
	default:
		h.rollback.failed = true
		h.rollback.err = fmt.Sprintf("rollback of block %q failed at %q: %s", s.Name, ff.name, ff.errText())
		h.note("%s; not run: %s", h.rollback.err, listOrNone(remaining(s.Rollback.Steps, ff.step, h)))
	}
}

// beginRollback records that the host's rollback begins, once.
func (h *hostRun) beginRollback(f *failure) {
	if h.rollback.started {
		return
	}
	h.rollback.started, h.rollback.reason = true, f.reason()
	if !h.isHost {
		return
	}
	g := event.Engine{Reason: f.reason(), RollbackError: new(f.errText())}
	if f.kind != failAbort {
		g.FailedStep, g.FailedIndex = f.name, event.IntPtr(f.index)
	}
	if h.progress != nil && h.progress.Rollback() != nil {
		g.Resumed.Why = "the rollback was in flight when the run stopped; it goes on"
	}
	h.r.emit(event.Event{Kind: event.RollbackStart, Batch: h.batch, Host: h.host.Name, Step: f.name,
		StepIndex: max(f.index, 0), Error: f.errText(), Engine: g})
}

// endRollback records how the rollback ended. A rollback stopped by the
// operator is left open in the journal, so that a resume finishes it.
func (h *hostRun) endRollback(ctx context.Context) {
	if !h.rollback.started || h.rollback.ended {
		return
	}
	h.rollback.ended = true
	if !h.isHost || h.rollback.interrupted && !h.rollback.failed {
		return
	}
	status := event.RolledBack
	if h.rollback.failed {
		status = event.RollbackFailed
	}
	h.r.emit(event.Event{Kind: event.RollbackEnd, Batch: h.batch, Host: h.host.Name, Status: status, Error: h.rollback.err})
}

// hostRollback runs the host's rollback after f: the runbook's rollback steps,
// or the automatic undo, or nothing for rollback: none.
func (h *hostRun) hostRollback(ctx context.Context, f *failure, reason string) {
	declared := h.r.p.Phase(plan.PhaseRollback)
	switch {
	case declared.Mode == plan.RollbackNone:
		h.note("rollback: none, so the host was left as it is")
	case len(declared.Compiled) > 0:
		h.beginRollback(f)
		m := &seqMode{phase: event.Rollback, start: event.RollbackStepStart, end: event.RollbackStepEnd, rollback: true,
			failed: f.scopeValue(), completed: h.completedNames(0, math.MaxInt)}
		m.done = h.rollbackDone(event.Rollback)
		ff := h.runList(ctx, declared.Compiled, inherited{}, m)
		switch {
		case ff == nil:
			h.note("rolled back by the runbook's rollback steps")
		case ff.kind == failInterrupted:
			h.rollback.interrupted = true
			h.note("the rollback was stopped at %q; not run: %s", ff.name, listOrNone(remaining(declared.Compiled, ff.step, h)))
		default:
			h.rollback.failed = true
			h.rollback.err = fmt.Sprintf("rollback step %q failed: %s", ff.name, ff.errText())
			h.note("%s; not run: %s", h.rollback.err, listOrNone(remaining(declared.Compiled, ff.step, h)))
		}
	default:
		h.beginRollback(f)
		h.undo(ctx)
	}
	h.endRollback(ctx)
}

// undo is the automatic rollback: the completed steps that changed something,
// newest first, through their module's Undo. It stops at the first undo that
// fails, since undoing older steps on top of a half-undone one could make
// things worse; a step whose module cannot undo is listed and passed over.
func (h *hostRun) undo(ctx context.Context) {
	var list []*doneStep
	var already []string
	for i := len(h.done) - 1; i >= 0; i-- {
		d := h.done[i]
		if !d.changed || h.covered[d.index] || d.ranOn != "" {
			continue
		}
		if h.undoneBefore(d.index) {
			already = append(already, d.name)
			continue
		}
		list = append(list, d)
	}
	if len(already) > 0 {
		h.note("undone before the resume: %s", quoteList(already))
	}
	if len(list) == 0 {
		if len(already) == 0 {
			h.note("nothing to undo: no completed step changed anything")
		}
		return
	}
	var undone, irreversible []string
	for i, d := range list {
		if ctx.Err() != nil {
			h.rollback.interrupted = true
			h.note("the rollback was stopped; not undone: %s", quoteList(names(list[i:])))
			return
		}
		status, err := h.undoOne(ctx, d)
		switch status {
		case event.OK:
			undone = append(undone, d.name)
		case event.Skipped:
			irreversible = append(irreversible, d.name)
		case event.Interrupted:
			h.rollback.interrupted = true
			h.notes.list = append(h.notes.list, undoReport(undone, irreversible,
				fmt.Sprintf("the rollback was stopped at %q; not undone: %s", d.name, quoteList(names(list[i:])))))
			return
		default:
			h.rollback.failed = true
			h.rollback.err = fmt.Sprintf("%q not undone: %s", d.name, err)
			msg := h.rollback.err
			if rest := names(list[i+1:]); len(rest) > 0 {
				msg += "; left as they are: " + quoteList(rest)
			}
			h.notes.list = append(h.notes.list, undoReport(undone, irreversible, msg))
			return
		}
	}
	h.notes.list = append(h.notes.list, "rolled back: "+undoReport(undone, irreversible, ""))
}

// undoReport says what an automatic rollback undid, what it could not, and
// how it ended.
func undoReport(undone, irreversible []string, ending string) string {
	var parts []string
	if len(undone) > 0 {
		parts = append(parts, "undid "+quoteList(undone))
	}
	if len(irreversible) > 0 {
		parts = append(parts, "cannot be undone (no undo), left as they are: "+quoteList(irreversible))
	}
	if ending != "" {
		parts = append(parts, ending)
	}
	if len(parts) == 0 {
		return "nothing needed undoing"
	}
	return strings.Join(parts, "; ")
}

// undoOne undoes one completed step and journals it.
func (h *hostRun) undoOne(ctx context.Context, d *doneStep) (event.Status, error) {
	r := h.r
	started := time.Now()
	base := event.Event{Phase: event.Rollback, Batch: h.batch, Host: h.host.Name, Step: d.name, StepIndex: d.index, Undo: true, NoLog: d.noLog}
	end := func(status event.Status, err error) (event.Status, error) {
		e := base
		e.Kind, e.Status, e.Duration = event.RollbackStepEnd, status, time.Since(started)
		if err != nil {
			err = h.shownError(err, d.noLog)
			e.Error = err.Error()
		}
		r.emit(e)
		return status, err
	}
	begin := func(items *int) error {
		start := base
		start.Kind = event.RollbackStepStart
		start.ID, start.Module = d.step.ID, d.step.Module
		start.Items = items
		if err := r.emit(start); err != nil {
			return fmt.Errorf("not run: the journal could not record its start: %w", err)
		}
		return nil
	}
	inh := h.inheritedOf(d.step)
	if d.step.Loop != nil {
		return h.undoItems(ctx, d, inh, begin, end)
	}
	scope := h.secretScope(h.scope(nil), d.noLog)
	mod, err := h.undoModule(d.step, scope, d.module)
	if err != nil {
		return end(event.Failed, err)
	}
	u, ok := mod.(modules.Undoer)
	if !ok {
		st, _ := end(event.Skipped, fmt.Errorf("%s has no undo: not undone", d.step.Module))
		return st, nil
	}
	target, err := h.undoTarget(inh, scope, d.target)
	if err != nil {
		return end(event.Failed, err)
	}
	if err := begin(nil); err != nil {
		return end(event.Failed, err)
	}
	err = h.runUndo(h.watchProcs(ctx, base, "", target), d.step, inh, u, target, d.result)
	switch {
	case err == nil:
		return end(event.OK, nil)
	case ctx.Err() != nil:
		return end(event.Interrupted, fmt.Errorf("stopped by the operator: %w", err))
	}
	return end(event.Failed, err)
}

// undoModule is the module of a completed run of s: the one that ran, or
// after a resume (nil) its arguments rendered again in scope.
func (h *hostRun) undoModule(s *plan.CompiledStep, scope *eval.Scope, ran modules.Module) (modules.Module, error) {
	if ran != nil {
		return ran, nil
	}
	m, err := s.NewArgs(h.r.reg, scope)
	if err != nil {
		return nil, argsError(s, err)
	}
	return m, nil
}

// undoTarget is where a completed run went: the target it ran on, or after a
// resume (nil) its delegate_to resolved again in scope.
func (h *hostRun) undoTarget(inh inherited, scope *eval.Scope, ran *plan.Host) (*plan.Host, error) {
	if ran != nil {
		return ran, nil
	}
	return h.delegate(inh, scope)
}

// runUndo runs u's Undo of done over target's connection, within the step's
// timeout. A panic in the module is the undo's failure.
func (h *hostRun) runUndo(ctx context.Context, s *plan.CompiledStep, inh inherited, u modules.Undoer, target *plan.Host, done modules.Result) error {
	uctx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		uctx, cancel = context.WithTimeout(ctx, s.Timeout.Std())
	}
	defer cancel()
	err := func() (err error) {
		c, release, err := h.r.pool.acquire(uctx, target)
		if err != nil {
			return err
		}
		defer release()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("undo of module %s panicked: %v", s.Module, p)
			}
		}()
		return u.Undo(uctx, h.moduleHost(c, target, inh, s), done)
	}()
	if err != nil && ctx.Err() == nil && uctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %s: %w", s.Timeout, err)
	}
	return err
}

// inheritedOf is the inherited fields of a steps-phase step, from its enclosing blocks.
func (h *hostRun) inheritedOf(s *plan.CompiledStep) inherited {
	in := inherited{}
	for _, b := range h.r.index.steps[s].blocks {
		in = in.with(b)
	}
	return in.with(s)
}

// abortRollback rolls back, newest first, the hosts that had finished when the
// run aborted, if the runbook says on_abort: rollback_completed.
func (r *runner) abortRollback(ctx context.Context) {
	if r.p.OnAbort != plan.OnAbortRollbackCompleted || r.opts.Check {
		return
	}
	if err := r.journalFailed(); err != nil {
		// Their rollback could not be recorded, so it could not run: the
		// hosts that finished stay finished, rather than be reported as
		// rollbacks that failed.
		r.log.Error().Err(err).Msg("on_abort: rollback_completed not done: the journal failed; the hosts that finished are left as they are")
		return
	}
	r.mu.Lock()
	hosts := slices.Clone(r.completed)
	r.mu.Unlock()
	for i := len(hosts) - 1; i >= 0; i-- {
		h := hosts[i]
		if ctx.Err() != nil {
			r.noteHalt(haltStop)
			return
		}
		h.rollbackCompleted(ctx)
	}
}

// rollbackCompleted rolls back a host that had finished ok, because the run aborted.
func (h *hostRun) rollbackCompleted(ctx context.Context) {
	r := h.r
	f := &failure{kind: failAbort, index: -1, err: errors.New("the run aborted: " + r.out.AbortReason)}
	h.notes.list = []string{"finished ok, then rolled back because the run aborted (on_abort: rollback_completed)"}
	h.rollback = rollbackState{}
	h.hostRollback(ctx, f, "abort")
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case h.rollback.failed:
		h.out.Status = StatusRollbackFailed
		r.out.RollbackFailed = true
	case h.rollback.interrupted:
		h.out.Status = StatusInterrupted
		r.out.Interrupted = true
	case h.rollback.started:
		h.out.Status = StatusRolledBack
	}
	h.out.State = strings.Join(h.notes.list, "; ")
}

// resumeRollback is where a resumed host meets, at its step, the failure whose
// rollback was under way when the run stopped: the step does not run again,
// and the rollback goes on from there as it would have.
func (h *hostRun) resumeRollback(f *failure, inh inherited) *failure {
	if f.kind == failStep && f.step != nil {
		if f.step.Loop != nil {
			items, lost := h.journaledItems(f.result)
			h.keepItems(f.step, f.index, inh, stepOutcome{name: f.name, items: items, lost: lost})
		}
		if inh.noLog {
			f.result = redact.Censored()
		}
	}
	h.noteFailure(f)
	if !h.r.opts.Check {
		h.note("the rollback was in flight when the run stopped; it went on after the resume")
		h.ran = true
	}
	return f
}

// remaining names the steps of list after the one that failed, for the state.
func remaining(list []*plan.CompiledStep, failed *plan.CompiledStep, h *hostRun) []string {
	var out []string
	seen := false
	for _, s := range list {
		if seen {
			out = append(out, h.stepName(s, h.inheritedOf(s).noLog))
		}
		if s == failed || contains(s, failed) {
			seen = true
		}
	}
	return out
}

// contains reports whether s is inside block, at any depth.
func contains(block, s *plan.CompiledStep) bool {
	for _, c := range block.Block {
		if c == s || contains(c, s) {
			return true
		}
	}
	return false
}

func names(ds []*doneStep) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.name
	}
	return out
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// listOrNone quotes the names, or says "nothing".
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return quoteList(names)
}
