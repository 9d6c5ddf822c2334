package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/internal/spec"
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
	delegate     *spec.Step // the step whose delegate_to applies
}

func (in inherited) with(s *spec.Step) inherited {
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
	data       map[string]any // added to every step event (a block's rollback names its block)
	failed     map[string]any
	completed  []string
	// done returns the record of a step that completed before a resume; it is
	// not run again.
	done func(idx int) (doneRecord, bool)
}

func (h *hostRun) mainMode() *seqMode {
	m := &seqMode{phase: h.phase, start: event.StepStart, end: event.StepEnd}
	if h.resume != nil {
		hr := h.resume
		m.done = func(idx int) (doneRecord, bool) { rec, ok := hr.steps[idx]; return rec, ok }
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
	step   *spec.Step
	name   string
	index  int
	err    error          // as shown: redacted, censored for no_log
	result map[string]any // as rollback steps see it in failed.result
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
	target   *connTarget
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
}

// runList runs steps in order and returns why it stopped early, or nil.
func (h *hostRun) runList(ctx context.Context, steps []*spec.Step, in inherited, m *seqMode) *failure {
	for _, s := range steps {
		eff := in.with(s)
		if s.IsBlock() {
			f := h.runList(ctx, s.Block, eff, m)
			if f == nil {
				continue
			}
			if s.Rollback != nil && (f.kind == failStep || f.kind == failStopped) && !h.r.opts.Check && h.blockTouched(s, f) {
				h.blockRollback(ctx, s, eff, f, m, nil)
			}
			return f
		}
		idx := h.r.index.steps[s].index
		if m.done != nil {
			if rec, ok := m.done(idx); ok {
				h.restore(s, idx, eff, rec, m)
				continue
			}
		}
		if m.rollback {
			if ctx.Err() != nil {
				return &failure{kind: failInterrupted, step: s, name: h.stepName(s, eff.noLog), index: idx, err: errors.New("stopped by the operator")}
			}
		} else if k := h.r.halted(ctx); k != notHalted {
			f := h.haltFailure(k, s, idx)
			h.noteFailure(f)
			return f
		}
		o := h.runStep(ctx, s, eff, idx, m)
		if f := h.record(s, idx, eff, o, m); f != nil {
			if !m.rollback {
				h.noteFailure(f)
			}
			return f
		}
	}
	return nil
}

func (h *hostRun) haltFailure(k haltKind, s *spec.Step, idx int) *failure {
	h.r.noteHalt(k)
	if k == haltStop {
		return &failure{kind: failInterrupted, step: s, name: h.stepName(s, h.effOf(s).noLog), index: idx, err: errors.New("stopped by the operator")}
	}
	err := errors.New("interrupted by the operator")
	if jerr := h.r.journalFailed(); jerr != nil {
		err = fmt.Errorf("not started: the journal failed: %w", jerr)
	}
	return &failure{kind: failStopped, step: s, name: h.stepName(s, h.effOf(s).noLog), index: idx, err: err}
}

// blockTouched reports whether any step of block s ran, so its rollback has
// something to undo.
func (h *hostRun) blockTouched(s *spec.Step, f *failure) bool {
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
func (h *hostRun) record(s *spec.Step, idx int, eff inherited, o stepOutcome, m *seqMode) *failure {
	main := !m.rollback && h.isHost
	if o.halted != notHalted {
		if !m.rollback {
			h.keepItems(s, idx, eff, o) // a loop stopped between its items
		}
		return h.haltFailure(o.halted, s, idx)
	}
	if s.Register != "" && o.status != event.Interrupted && o.result != nil {
		h.registered[s.Register] = o.result
		if eff.noLog {
			h.r.markOutput(o.result)
		}
	}
	if main {
		switch o.status {
		case event.OK, event.Changed:
			h.out.Ok++
			if o.changed {
				h.out.Changed++
			}
		case event.Skipped:
			h.out.Skipped++
		case event.Failed, event.Unreachable:
			h.out.Failed++
		}
	}
	switch o.status {
	case event.OK, event.Changed:
		if !m.rollback {
			h.done = append(h.done, &doneStep{step: s, index: idx, name: o.name, changed: o.changed, noLog: eff.noLog,
				result: o.modRes, module: o.module, target: o.target, ranOn: o.ranOn, items: o.items})
		}
		return nil
	case event.Skipped:
		return nil
	case event.Failed:
		if !m.rollback {
			h.keepItems(s, idx, eff, o)
		}
		if o.ignored {
			h.note("%q failed and was ignored (ignore_errors)", o.name)
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
	f.err = h.shownError(o.err, eff.noLog)
	var he *modules.HoldError
	f.held = f.kind == failStep && errors.As(o.err, &he)
	if eff.noLog {
		f.result = redact.Censored()
	}
	return f
}

// restore takes back a step that completed before a resume: its registered
// result, and its place in the undo list.
func (h *hostRun) restore(s *spec.Step, idx int, eff inherited, rec doneRecord, m *seqMode) {
	if eff.noLog {
		h.relearn(s)
	}
	if eff.runOnce && h.once != nil && !m.rollback {
		h.once.pass(h.name, idx)
	}
	failed := rec.status == event.Failed
	data := rec.result
	if s.Loop != nil {
		data = h.restoredLoop(data)
	}
	res := resultMap(data, rec.changed, failed, rec.err)
	if s.Register != "" {
		h.registered[s.Register] = res
	}
	if m.rollback {
		return
	}
	if h.isHost {
		switch rec.status {
		case event.OK, event.Changed:
			h.out.Ok++
			if rec.changed {
				h.out.Changed++
			}
		case event.Skipped:
			h.out.Skipped++
		case event.Failed:
			h.out.Failed++
		}
	}
	if rec.status == event.OK || rec.status == event.Changed {
		d := &doneStep{step: s, index: idx, name: rec.name, changed: rec.changed, noLog: eff.noLog,
			result: modules.Result{Changed: rec.changed, Data: rec.result}, ranOn: rec.ranOn}
		if s.Loop != nil {
			d.items, d.lost = h.restoredItems(rec.result)
		}
		h.done = append(h.done, d)
	} else if rec.status == event.Failed && s.Loop != nil {
		// Ignored: its completed items are undone like those of a step that
		// failed.
		items, lost := h.restoredItems(rec.result)
		h.keepItems(s, idx, eff, stepOutcome{name: rec.name, items: items, ranOn: rec.ranOn, lost: lost})
	}
}

// relearn renders again, only to learn its secrets, a no_log step that ran
// before the run was resumed: what its templates rendered died with the
// process that ran it, and a later step may still print it. Nothing is run; a
// template that cannot render now (it read facts) is passed over.
func (h *hostRun) relearn(s *spec.Step) {
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
func (h *hostRun) stepName(s *spec.Step, noLog bool) string {
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

// runStep runs one step: tags, run_once, facts, then once or per item of its
// loop: when, delegate_to, arguments and its attempts. Every path emits the
// step's end event.
func (h *hostRun) runStep(ctx context.Context, s *spec.Step, eff inherited, idx int, m *seqMode) (o stepOutcome) {
	r := h.r
	name := h.stepName(s, eff.noLog)
	o = stepOutcome{name: name, noLog: eff.noLog}
	base := event.Event{Phase: m.phase, Batch: h.batch, Host: h.name, Step: name, StepIndex: idx, NoLog: eff.noLog}
	var rerun bool
	if hr := h.resume; hr != nil && !m.rollback && hr.inFlight != nil && hr.inFlight.index == idx {
		rerun = true
	}
	started := time.Now()
	finish := func(o stepOutcome, extra map[string]any, g event.Engine) stepOutcome {
		e := base
		e.Kind = m.end
		e.Status, e.Changed, e.Duration = o.status, o.changed, time.Since(started)
		if s.Retries > 0 && o.attempts > 0 {
			e.Attempt = o.attempts
		}
		if o.err != nil && (o.status == event.Failed || o.status == event.Unreachable || o.status == event.Interrupted) {
			e.Error = h.shownError(o.err, eff.noLog).Error()
		}
		e.Result = o.data
		e.Data = mergeData(m.data, extra)
		e.Engine = g
		e.Ignored = o.ignored
		r.emit(e)
		h.logStep(o, eff)
		return o
	}

	if !m.rollback && !selected(eff.tags, r.opts.Tags, r.opts.SkipTags) {
		o.status = event.Skipped
		o.data = map[string]any{"skipped": true, "msg": "not selected by --tags or --skip-tags"}
		// Ansible does not register a step that tags leave out.
		return finish(o, nil, event.Engine{Reason: "tags"})
	}

	if eff.runOnce && h.once != nil && !m.rollback {
		shared, mine, k := h.once.await(h.name, idx)
		if k != notHalted {
			return stepOutcome{name: name, halted: k}
		}
		if !mine {
			o = shared.o
			o.name, o.noLog = name, eff.noLog
			o.ranOn, o.module, o.target, o.items = shared.host, nil, nil, nil
			if o.status == event.Unreachable {
				// The host that ran it was unreachable, not this one.
				o.status, o.fatal = event.Failed, true
				o.err = fmt.Errorf("run_once step ran on %s, which was unreachable: %w", shared.host, o.err)
			}
			o.ignored = o.status == event.Failed && !o.fatal && eff.ignoreErrors
			return finish(o, nil, event.Engine{RanOn: shared.host})
		}
		defer func() { h.once.publish(idx, h.name, o) }()
	}

	scope := h.secretScope(h.scope(m), eff.noLog)
	facts, judged := h.factsRead(s, eff)
	if err := h.gather(ctx, facts, scope, s, eff); err != nil {
		o.status, o.fatal, o.err = event.Failed, true, err
		switch {
		case ctx.Err() != nil:
			o.status = event.Interrupted
		case conn.IsTransport(err):
			o.status = event.Unreachable
		}
		o.result = resultMap(nil, false, true, h.shownError(err, eff.noLog).Error())
		return finish(o, nil, event.Engine{})
	}
	var extra map[string]any
	if s.Loop != nil {
		o, extra = h.runLoop(ctx, s, eff, scope, judged, base, m, o, rerun)
		return finish(o, extra, event.Engine{})
	}
	begin := func(target connTarget) error {
		var data map[string]any
		if target.key != h.own.key {
			data = map[string]any{"delegate_to": target.key}
		}
		return h.emitStart(s, base, m, rerun, data, nil)
	}
	o, extra = h.one(ctx, s, eff, scope, judged, base, m, o, begin)
	return finish(o, extra, event.Engine{})
}

// emitStart emits the start of step s: its id and module, what data adds
// (where it runs, how many items), and after a resume that it runs again. An
// error means the journal did not record it, and the step must not act.
func (h *hostRun) emitStart(s *spec.Step, base event.Event, m *seqMode, rerun bool, data map[string]any, items *int) error {
	start := base
	start.Kind = m.start
	if s.Retries > 0 {
		start.Attempt = 1
	}
	d := map[string]any{"id": s.ID, "module": s.Module}
	for k, v := range data {
		d[k] = v
	}
	if rerun {
		d["rerun"] = "it was in flight when the run stopped, so whether it acted is unknown: it runs again"
	}
	start.Data = mergeData(m.data, d)
	start.Items = items
	if err := h.r.emit(start); err != nil {
		return err
	}
	h.ran = true
	return nil
}

// notRecorded is a step whose start the journal could not record. It does not
// act: an action the journal misses could be neither audited nor resumed. A
// step stops the host as a drain does (what it changed is rolled back, if the
// journal can record that); a rollback step fails, so the host is left for a
// person to look at.
func (h *hostRun) notRecorded(o stepOutcome, m *seqMode, err error) stepOutcome {
	o.err = fmt.Errorf("not run: the journal could not record its start: %w", err)
	o.status, o.fatal = event.Failed, true
	o.result = resultMap(nil, false, true, h.shownError(o.err, false).Error())
	if !m.rollback {
		o.status, o.halted = event.Interrupted, haltDrain
	}
	return o
}

// one runs the step once in scope (the step, or one item of its loop): when,
// delegate_to, arguments, --check, then its attempts. begin is called before
// the first attempt, with where it runs. extra goes into the step's end event.
func (h *hostRun) one(ctx context.Context, s *spec.Step, eff inherited, scope *eval.Scope, judged []string,
	base event.Event, m *seqMode, o stepOutcome, begin func(connTarget) error) (stepOutcome, map[string]any) {
	r := h.r
	for _, w := range eff.when {
		ok, err := w.Bool(scope)
		if err != nil {
			o.status, o.fatal, o.err = event.Failed, true, fmt.Errorf("when: %w", err)
			o.result = resultMap(nil, false, true, h.shownError(o.err, eff.noLog).Error())
			return o, nil
		}
		if !ok {
			o.status = event.Skipped
			msg := fmt.Sprintf("skipped: when `%s` is false", w.Src)
			o.data = map[string]any{"skipped": true, "msg": msg}
			o.result = resultMap(o.data, false, false, "")
			return o, nil
		}
	}

	target, err := h.delegate(eff, scope)
	if err != nil {
		o.status, o.fatal, o.err = event.Failed, true, err
		o.result = resultMap(nil, false, true, h.shownError(err, eff.noLog).Error())
		return o, nil
	}
	o.target = &target

	mod, err := s.NewArgs(r.reg, scope)
	if err != nil {
		o.status, o.fatal, o.err = event.Failed, true, argsError(s, err)
		o.result = resultMap(nil, false, true, h.shownError(o.err, eff.noLog).Error())
		return o, nil
	}
	o.module = mod

	if r.opts.Check {
		if _, ok := mod.(modules.Checker); !ok {
			o.status = event.Skipped
			o.data = map[string]any{"skipped": true, "msg": "would run; effect unknown (" + s.Module + " cannot tell without running)"}
			o.result = resultMap(o.data, false, false, "")
			return o, map[string]any{"check": true}
		}
	}

	if err := begin(target); err != nil {
		return h.notRecorded(o, m, err), nil
	}
	ctx = h.watchProcs(ctx, base, m.data, target)
	return h.attempts(ctx, s, eff, mod, target, scope, judged, base, m, o), nil
}

// attempts runs the module until it succeeds, until holds, or the retries run out.
func (h *hostRun) attempts(ctx context.Context, s *spec.Step, eff inherited, mod modules.Module, target connTarget,
	scope *eval.Scope, judged []string, base event.Event, m *seqMode, o stepOutcome) stepOutcome {
	r := h.r
	tries := 1 + s.Retries
	delay := s.Delay.Std()
	if delay == 0 {
		delay = DefaultDelay
	}
	ctx = withProgress(ctx, r, base)
	for a := 1; ; a++ {
		next := h.attempt(ctx, s, eff, mod, target, scope, judged)
		next.name, next.noLog, next.module, next.target, next.attempts = o.name, o.noLog, o.module, o.target, a
		o = next
		if o.status == event.Interrupted || o.status == event.Unreachable || o.fatal {
			return o
		}
		success := o.status != event.Failed
		if s.Until != nil {
			success = o.untilOK
		}
		if success {
			return o
		}
		if a >= tries {
			if s.Until != nil && o.status != event.Failed {
				o.status, o.changed = event.Failed, false
				o.err = fmt.Errorf("until `%s` still false after %d %s", s.Until.Src, a, plural(a, "attempt", "attempts"))
				if o.untilWhy != "" {
					o.err = fmt.Errorf("%w: %s", o.err, o.untilWhy)
				}
				o.result["failed"], o.result["error"], o.result["msg"] = true, h.shownError(o.err, eff.noLog).Error(), h.shownError(o.err, eff.noLog).Error()
			}
			o.ignored = eff.ignoreErrors
			return o
		}
		if k := r.halted(ctx); k != notHalted {
			return h.stopRetrying(o, k, a, tries, eff)
		}
		retry := base
		retry.Kind = event.StepRetry
		retry.Attempt = a
		retry.Data = m.data
		if o.err != nil {
			retry.Error = h.shownError(o.err, eff.noLog).Error()
		} else if s.Until != nil {
			retry.Error = fmt.Sprintf("until `%s` is false", s.Until.Src)
		}
		r.emit(retry)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return h.stopRetrying(o, haltStop, a, tries, eff)
		case <-r.stop:
			t.Stop()
			return h.stopRetrying(o, haltDrain, a, tries, eff)
		}
	}
}

// stopRetrying ends a retried step when the run stops between attempts: it
// failed (a drain rolls the host back), or was interrupted (a stop).
func (h *hostRun) stopRetrying(o stepOutcome, k haltKind, a, tries int, eff inherited) stepOutcome {
	h.r.noteHalt(k)
	cause := "interrupted by the operator"
	if o.err != nil {
		cause += "; last error: " + o.err.Error()
	}
	o.err = fmt.Errorf("attempt %d of %d: %s", a, tries, cause)
	if k == haltStop {
		o.status = event.Interrupted
		return o
	}
	o.status, o.changed, o.ignored = event.Failed, false, false
	o.fatal = true // the operator stopped it; it is not the module's failure to ignore
	return o
}

// attempt runs the module once and judges the result.
func (h *hostRun) attempt(ctx context.Context, s *spec.Step, eff inherited, mod modules.Module, target connTarget, scope *eval.Scope, judged []string) stepOutcome {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, s.Timeout.Std())
	}
	res, err := h.call(actx, s, eff, mod, target, scope)
	timedOut := actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	o := stepOutcome{modRes: res, data: cloneMap(res.Data)}
	switch {
	case ctx.Err() != nil:
		o.status, o.err = event.Interrupted, fmt.Errorf("stopped by the operator: %w", errOr(err, ctx.Err()))
		return o
	case err != nil && conn.IsTransport(err):
		o.status, o.err = event.Unreachable, err
		o.result = resultMap(o.data, false, true, h.shownError(err, eff.noLog).Error())
		return o
	case timedOut:
		err = fmt.Errorf("timed out after %s: %w", s.Timeout, errOr(err, context.DeadlineExceeded))
	}
	failed, changed := err != nil, res.Changed
	msg := ""
	if err != nil {
		msg = h.shownError(err, eff.noLog).Error()
	}
	o.result = resultMap(o.data, changed, failed, msg)
	rs := *scope
	rs.Result = o.result
	// until, failed_when and changed_when judge the world after the attempt.
	if err := h.gather(ctx, judged, &rs, s, eff); err != nil {
		o.status, o.fatal, o.err = event.Failed, true, err
		switch {
		case ctx.Err() != nil:
			o.status = event.Interrupted
		case conn.IsTransport(err):
			o.status = event.Unreachable
		}
		o.result["failed"], o.result["error"] = true, h.shownError(err, eff.noLog).Error()
		return o
	}
	judge := func(p *eval.Program) (bool, bool) {
		v, jerr := p.Bool(&rs)
		if jerr != nil {
			o.status, o.fatal, o.err = event.Failed, true, fmt.Errorf("%s: %w", p.Name, jerr)
			o.result["failed"], o.result["error"] = true, h.shownError(o.err, eff.noLog).Error()
			return false, false
		}
		return v, true
	}
	if s.ChangedWhen != nil {
		v, ok := judge(s.ChangedWhen)
		if !ok {
			return o
		}
		changed = v
		o.result["changed"] = v
	}
	if s.FailedWhen != nil {
		v, ok := judge(s.FailedWhen)
		if !ok {
			return o
		}
		failed = v
		o.result["failed"] = v
		if v && err == nil {
			err = fmt.Errorf("failed_when `%s` is true", s.FailedWhen.Src)
			o.result["error"], o.result["msg"] = h.shownError(err, eff.noLog).Error(), h.shownError(err, eff.noLog).Error()
		}
	}
	if s.Until != nil {
		v, ok := judge(s.Until)
		if !ok {
			return o
		}
		o.untilOK = v
		if !v {
			o.untilWhy = s.Until.Why(&rs)
		}
	}
	o.changed = changed && !failed
	switch {
	case failed:
		o.status, o.err = event.Failed, err
		o.ignored = eff.ignoreErrors
	case o.changed:
		o.status = event.Changed
	default:
		o.status = event.OK
	}
	return o
}

// call runs the module (or its Check) over the target's connection. A panic in
// a module is a failure of the step, not of the run.
func (h *hostRun) call(ctx context.Context, s *spec.Step, eff inherited, mod modules.Module, target connTarget, scope *eval.Scope) (res modules.Result, err error) {
	c, release, err := h.r.pool.acquire(ctx, target)
	if err != nil {
		return modules.Result{}, err
	}
	defer release()
	mh := h.moduleHost(c, target, eff, s)
	mh.Progress = progressOf(ctx)
	// The module's own expressions (check's expect) see what the step's guards
	// see: vars, registered results, facts.
	mh.Scope = scope
	defer func() {
		if p := recover(); p != nil {
			res, err = modules.Result{}, fmt.Errorf("module %s panicked: %v", s.Module, p)
		}
	}()
	if h.r.opts.Check {
		return mod.(modules.Checker).Check(ctx, mh)
	}
	return mod.Run(ctx, mh)
}

func (h *hostRun) moduleHost(c conn.Conn, target connTarget, eff inherited, s *spec.Step) *modules.Host {
	r := h.r
	log := zerolog.Nop()
	if !eff.noLog {
		log = r.log.With().Str("host", h.name).Str("step", s.Name).Logger()
	}
	become, user := eff.become || target.become, eff.becomeUser
	if user == "" {
		user = target.becomeUser
	}
	return &modules.Host{
		Name: h.name, Addr: h.addr, Vars: h.vars, Conn: c, Log: log,
		Become: become, BecomeUser: user,
		StateDir: r.opts.StateDir, RunbookDir: r.runbookDir, Yes: r.opts.Yes,
		Confirm:    r.confirmFunc(),
		Controller: &lazyConn{pool: r.pool, t: controllerTarget()},
	}
}

func (r *runner) confirmFunc() func(context.Context, string) (bool, error) {
	if r.opts.Confirm == nil {
		return nil
	}
	return func(ctx context.Context, prompt string) (bool, error) {
		// One question at a time: parallel hosts share one terminal.
		r.confirmMu.Lock()
		defer r.confirmMu.Unlock()
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return r.opts.Confirm(ctx, prompt)
	}
}

// delegate resolves where the step runs: the host itself, the controller, or
// another inventory host (with the original host's vars).
func (h *hostRun) delegate(eff inherited, scope *eval.Scope) (connTarget, error) {
	s := eff.delegate
	if s == nil {
		return h.own, nil
	}
	name := s.DelegateTo
	if s.DelegateTemplate != nil {
		// Where a step runs names an inventory host, which no_log does not
		// make a secret: events name their hosts.
		plain := *scope
		plain.Rendered = nil
		v, err := s.DelegateTemplate.Render(&plain)
		if err != nil {
			return connTarget{}, fmt.Errorf("%s: delegate_to: %w", s.DelegatePos, err)
		}
		if name, err = eval.Format(v); err != nil {
			return connTarget{}, fmt.Errorf("%s: delegate_to: %w", s.DelegatePos, err)
		}
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return connTarget{}, fmt.Errorf("%s: delegate_to is empty; name an inventory host, or controller", s.DelegatePos)
	case name == spec.Controller:
		return controllerTarget(), nil
	case name == h.own.key:
		return h.own, nil
	}
	if h.r.p.Inventory == nil {
		return connTarget{}, fmt.Errorf("%s: delegate_to %q: there is no inventory to find it in", s.DelegatePos, name)
	}
	ih, ok := h.r.p.Inventory.Host(name)
	if !ok {
		return connTarget{}, fmt.Errorf("%s: delegate_to %q: no such host in the inventory", s.DelegatePos, name)
	}
	return inventoryTarget(ih, ih.Vars, ""), nil
}

// argsError is a failure to render or validate a step's arguments. Its text
// keeps the diagnostics' positions but does not wrap them: a step failure must
// not look like invalid input (exit 2) to the CLI.
func argsError(s *spec.Step, err error) error {
	if ds, ok := diag.As(err); ok {
		return fmt.Errorf("%s: arguments of %s: %s", s.Pos, s.Module, (&diag.DiagsError{Diags: ds}).Error())
	}
	return fmt.Errorf("%s: arguments of %s: %w", s.Pos, s.Module, err)
}

func (h *hostRun) logStep(o stepOutcome, eff inherited) {
	lg := h.r.log.Debug()
	if o.status == event.Failed || o.status == event.Unreachable {
		lg = h.r.log.Warn()
	}
	lg = lg.Str("host", h.name).Str("step", h.r.secrets.Redact(o.name)).Str("status", string(o.status))
	if o.err != nil {
		lg = lg.Str("error", h.shownError(o.err, eff.noLog).Error())
	}
	lg.Msg("step")
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

func mergeData(a, b map[string]any) map[string]any {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
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
