package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/modules"
)

// inherited are the common fields a block hands down to its steps, merged with
// the step's own: all the whens must hold, tags add up, the innermost
// delegate_to and become_user win, and a flag set anywhere holds.
type inherited struct {
	when         []*eval.Program
	tags         []string
	become       bool
	becomeUser   string
	noLog        bool
	ignoreErrors bool
	runOnce      bool
	delegate     *plan.CompiledStep // the step whose delegate_to applies
}

func (in inherited) with(s *plan.CompiledStep) inherited {
	out := in
	out.when = append(slices.Clip(in.when), s.When...)
	out.tags = append(slices.Clip(in.tags), s.Tags...)
	out.become = in.become || s.Become
	if s.BecomeUser != "" {
		out.becomeUser = s.BecomeUser
	}
	out.noLog = in.noLog || s.NoLog
	out.ignoreErrors = in.ignoreErrors || s.IgnoreErrors
	out.runOnce = in.runOnce || s.RunOnce
	if s.DelegateTo != "" || s.DelegateTemplate != nil {
		out.delegate = s
	}
	return out
}

// forRollback is what a block hands to its own rollback steps: privileges and
// secrecy, not its guards or tags (the block ran, so its steps must be undone).
func (in inherited) forRollback() inherited {
	return inherited{become: in.become, becomeUser: in.becomeUser, noLog: in.noLog, delegate: in.delegate}
}

// seqMode is how a list of steps runs: which events it emits, whether it is a
// rollback (no tags, no stop on a drain, no run_once), what a rollback sees.
type seqMode struct {
	phase      event.Phase
	start, end event.Kind
	rollback   bool
	// blockRollback is the id of the block whose own rollback this is, on
	// every step event of it.
	blockRollback string
	failed        map[string]any
	completed     []string
	// done are the steps that completed before a resume, by index: their
	// journaled outcome stands, and they do not run again.
	done map[int]journal.StepRecord
	// failedBefore is the failure whose rollback was under way when the run
	// being resumed stopped: the list stops at its step, which does not run
	// again, and rolls back from there.
	failedBefore *failure
}

// mainMode is how the host's steps run: after a resume, from where the
// journal says it stood.
func (h *hostRun) mainMode() *seqMode {
	m := &seqMode{phase: h.phase, start: event.StepStart, end: event.StepEnd}
	if h.progress != nil {
		m.done = h.progress.Completed
		m.failedBefore = h.resumedFailure()
	}
	return m
}

type failKind int

const (
	failStep        failKind = iota + 1 // a step failed
	failUnreachable                     // the transport failed
	failInterrupted                     // ctx cancelled: stop now
	failStopped                         // drained (or the journal failed) before a step
	failAbort                           // the run aborted: a completed host is rolled back
)

// failure is why a list of steps stopped.
type failure struct {
	kind   failKind
	step   *plan.CompiledStep
	name   string
	index  int
	err    error          // as shown: redacted, censored for no_log
	result map[string]any // as rollback steps see it in failed.result
	// rejected: people stopped the run here (an approval rejected or timed
	// out, a change window closed); a failStopped that is no interrupt.
	rejected bool
	// held: the module stopped the host without a verdict of failure
	// (modules.HoldError): rolled back all the same, but the run exits 3.
	held bool
}

func (f *failure) errText() string {
	if f == nil || f.err == nil {
		return ""
	}
	return f.err.Error()
}

func (f *failure) reason() string {
	switch f.kind {
	case failStopped:
		return "interrupted"
	case failAbort:
		return "abort"
	}
	return "failed"
}

// scopeValue is `failed` for rollback steps.
func (f *failure) scopeValue() map[string]any {
	res := f.result
	if res == nil {
		res = map[string]any{}
	}
	return map[string]any{"step": f.name, "error": f.errText(), "result": res}
}

// stepOutcome is how one step ended on one host.
type stepOutcome struct {
	name     string
	status   event.Status // ok, changed, skipped, failed, unreachable, interrupted
	changed  bool
	err      error          // the failure, raw (may hold secrets)
	result   map[string]any // what expressions see
	data     map[string]any // the module's Data (or skip reason), as journaled
	modRes   modules.Result
	module   modules.Module
	target   *plan.Host
	ignored  bool // failed under ignore_errors
	fatal    bool // not a module failure (bad arguments, a guard that errs): ignore_errors does not apply
	untilOK  bool
	untilWhy string // the clause of until that was false, with its values
	attempts int
	ranOn    string
	noLog    bool
	halted   haltKind    // the run stopped before the step started, or between the items of its loop
	items    []*doneItem // a looped step: the items that completed, for the undo
	lost     bool        // a looped step restored from a journal that does not hold its items
	replayed bool        // taken from the journal of the run being resumed: it did not run now
}

// runList runs steps in order and returns why it stopped early, or nil.
func (h *hostRun) runList(ctx context.Context, steps []*plan.CompiledStep, in inherited, m *seqMode) *failure {
	for _, s := range steps {
		inh := in.with(s)
		if s.IsBlock() {
			if f := h.stepWindow(ctx, s, m); f != nil {
				h.noteFailure(f)
				return f
			}
			f := h.runList(ctx, s.Block, inh, m)
			if f == nil {
				continue
			}
			if s.Rollback != nil && (f.kind == failStep || f.kind == failStopped) && !h.r.opts.Check && h.blockTouched(s, f) {
				h.blockRollback(ctx, s, inh, f, m)
			}
			return f
		}
		idx := h.r.index.steps[s].index
		h.r.ahead.reach(h, idx, m)
		if rec, ok := m.done[idx]; ok {
			h.replay(s, idx, inh, rec, m)
			continue
		}
		if f := m.failedBefore; f != nil {
			// Nothing runs again before the rollback goes on.
			if f.index == idx {
				return h.resumeRollback(f, inh)
			}
			continue
		}
		if m.rollback {
			if ctx.Err() != nil {
				return &failure{kind: failInterrupted, step: s, name: h.stepName(s, inh.noLog), index: idx, err: errors.New("stopped by the operator")}
			}
		} else if k := h.r.halted(ctx); k != notHalted {
			f := h.haltFailure(k, s, idx)
			h.noteFailure(f)
			return f
		} else if f := h.stepWindow(ctx, s, m); f != nil {
			h.noteFailure(f)
			return f
		}
		o := h.runStep(ctx, s, inh, idx, m)
		if f := h.record(s, idx, inh, o, m); f != nil {
			if !m.rollback {
				h.noteFailure(f)
			}
			return f
		}
	}
	return nil
}

func (h *hostRun) haltFailure(k haltKind, s *plan.CompiledStep, idx int) *failure {
	h.r.noteHalt(k)
	if k == haltStop {
		return &failure{kind: failInterrupted, step: s, name: h.stepName(s, h.inheritedOf(s).noLog), index: idx, err: errors.New("stopped by the operator")}
	}
	err := errors.New("interrupted by the operator")
	if jerr := h.r.journalFailed(); jerr != nil {
		err = fmt.Errorf("not started: the journal failed: %w", jerr)
	}
	return &failure{kind: failStopped, step: s, name: h.stepName(s, h.inheritedOf(s).noLog), index: idx, err: err}
}

// blockTouched reports whether any step of block s ran, so its rollback has
// something to undo.
func (h *hostRun) blockTouched(s *plan.CompiledStep, f *failure) bool {
	rg := h.r.index.blockRange[s]
	if f.kind == failStep && f.index >= rg[0] && f.index < rg[1] {
		return true
	}
	for _, d := range h.done {
		if d.index >= rg[0] && d.index < rg[1] {
			return true
		}
	}
	return false
}

// record counts o, registers it, keeps completed steps for the undo, and turns
// a failure that is not ignored into the list's failure.
func (h *hostRun) record(s *plan.CompiledStep, idx int, inh inherited, o stepOutcome, m *seqMode) *failure {
	main := !m.rollback && h.isHost
	if o.halted != notHalted {
		if !m.rollback {
			h.keepItems(s, idx, inh, o) // a loop stopped between its items
		}
		f := h.haltFailure(o.halted, s, idx)
		if errors.Is(o.err, modules.ErrRejected) {
			f.err, f.rejected = h.shownError(o.err, inh.noLog), true
		}
		return f
	}
	if s.Register != "" && o.status != event.Interrupted && o.result != nil {
		h.registered[s.Register] = o.result
		if inh.noLog {
			h.r.markOutput(o.result)
		}
	}
	if main {
		h.out.count(o.status, o.changed)
	}
	switch o.status {
	case event.OK, event.Changed:
		h.learnFacts(o.modRes.Data)
		if !m.rollback {
			h.done = append(h.done, &doneStep{step: s, index: idx, name: o.name, changed: o.changed, noLog: inh.noLog,
				result: o.modRes, module: o.module, target: o.target, ranOn: o.ranOn, items: o.items, lost: o.lost})
		}
		return nil
	case event.Skipped:
		return nil
	case event.Failed:
		if !m.rollback {
			h.keepItems(s, idx, inh, o)
		}
		if o.ignored {
			if !o.replayed {
				h.note("%q failed and was ignored (ignore_errors)", o.name)
			}
			return nil
		}
	}
	f := &failure{kind: failStep, step: s, name: o.name, index: idx, result: o.result}
	switch o.status {
	case event.Unreachable:
		f.kind = failUnreachable
	case event.Interrupted:
		f.kind = failInterrupted
		h.r.noteHalt(haltStop)
	}
	f.err = h.shownError(o.err, inh.noLog)
	var he *modules.HoldError
	f.held = f.kind == failStep && errors.As(o.err, &he)
	if inh.noLog {
		f.result = redact.Censored()
	}
	return f
}

// relearn renders again, only to learn its secrets, a no_log step that ran
// before the run was resumed: what its templates rendered died with the
// process that ran it, and a later step may still print it. Nothing is run; a
// template that cannot render now (it read facts) is passed over.
func (h *hostRun) relearn(s *plan.CompiledStep) {
	scope := h.secretScope(h.scope(nil), true)
	h.stepName(s, true)
	if s.Loop == nil {
		_, _ = s.NewArgs(h.r.reg, scope)
		return
	}
	items, err := s.Loop.Items(scope)
	if err != nil {
		return
	}
	for i, item := range items {
		is := *scope
		is.Loop = &eval.Loop{Item: item, Index: i}
		_, _ = s.NewArgs(h.r.reg, &is)
	}
}

// shownError is err as it may be shown: secrets replaced, and hidden whole
// for a no_log step.
func (h *hostRun) shownError(err error, noLog bool) error {
	if err == nil {
		return nil
	}
	if noLog {
		return errors.New(redact.CensoredError)
	}
	return h.r.secrets.Error(err)
}

// stepName is the step's name as events show it. What the name of a no_log
// step renders is secret like what its arguments render, so events show
// those parts redacted.
func (h *hostRun) stepName(s *plan.CompiledStep, noLog bool) string {
	// A looped step has one name for all its items: one that reads item
	// stays as written, as Ansible shows it.
	if s.NameTemplate != nil && !(s.Loop != nil && readsLoop(s.NameTemplate.Names())) {
		if v, err := s.NameTemplate.Render(h.secretScope(h.scope(nil), noLog)); err == nil {
			if str, err := eval.Format(v); err == nil && strings.TrimSpace(str) != "" {
				return str
			}
		}
	}
	return s.Name
}

// resultMap is a step's result as expressions see it: the module's Data plus
// changed, failed, skipped, msg and error.
func resultMap(data map[string]any, changed, failed bool, errMsg string) map[string]any {
	m := make(map[string]any, len(data)+5)
	for k, v := range data {
		m[k] = v
	}
	m["changed"] = changed
	m["failed"] = failed
	if _, ok := m["skipped"]; !ok {
		m["skipped"] = false
	}
	m["error"] = errMsg
	if msg, ok := m["msg"]; !ok || msg == "" && errMsg != "" {
		m["msg"] = errMsg
	}
	return m
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
