package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// stepRun is one step running on one host (or on the controller): the step,
// its place, what its blocks hand down, how its events look and what its
// expressions see. Each item of a looped step runs as a copy of it with the
// item in scope. The step's outcome is what its functions hand each other.
type stepRun struct {
	h    *hostRun
	s    *plan.CompiledStep
	idx  int
	inh  inherited
	m    *seqMode
	name string      // as events show it
	base event.Event // what every event of the step carries
	// scope is what its expressions see: vars, registered results, facts,
	// and the item of a loop.
	scope *eval.Scope
	// judged are the facts read again after each attempt, for until,
	// failed_when and changed_when.
	judged  []string
	rerun   bool // in flight when the run being resumed stopped: it runs again
	started time.Time
	// held end what the step holds off on the hosts it delegates to
	// (ahead.go), once its end is recorded; shared with the copies its
	// loop items run as.
	held *[]func()
}

// runStep runs one step: tags, run_once, facts, then once or per item of its
// loop: when, delegate_to, arguments and its attempts. Every path emits the
// step's end event.
func (h *hostRun) runStep(ctx context.Context, s *plan.CompiledStep, inh inherited, idx int, m *seqMode) stepOutcome {
	name := h.stepName(s, inh.noLog)
	st := &stepRun{h: h, s: s, idx: idx, inh: inh, m: m, name: name, started: time.Now(), held: new([]func()),
		base: event.Event{Phase: m.phase, Batch: h.batch, Host: h.host.Name, Step: name, StepIndex: idx, NoLog: inh.noLog}}
	st.base.Ahead = h.ahead
	if pr := h.progress; pr != nil && !m.rollback && pr.Rerun != nil && pr.Rerun.Index == idx {
		st.rerun = true
	}
	return st.run(ctx)
}

func (st *stepRun) run(ctx context.Context) (o stepOutcome) {
	h, inh := st.h, st.inh
	o = stepOutcome{name: st.name, noLog: inh.noLog}
	if st.deselected() {
		o.status = event.Skipped
		o.data = map[string]any{"skipped": true, "msg": "not selected by --tags or --skip-tags"}
		// Ansible does not register a step that tags leave out.
		return st.finish(o, event.Engine{Reason: "tags"})
	}

	if inh.runOnce && h.once != nil && !st.m.rollback {
		shared, mine, k := h.once.await(h.host.Name, st.idx)
		if k != notHalted {
			return stepOutcome{name: st.name, halted: k}
		}
		if !mine {
			o = shared.o
			o.name, o.noLog = st.name, inh.noLog
			o.ranOn, o.module, o.target, o.items = shared.host, nil, nil, nil
			if o.status == event.Unreachable {
				// The host that ran it was unreachable, not this one.
				o.status, o.fatal = event.Failed, true
				o.err = fmt.Errorf("run_once step ran on %s, which was unreachable: %w", shared.host, o.err)
			}
			o.ignored = o.status == event.Failed && !o.fatal && inh.ignoreErrors
			return st.finish(o, event.Engine{RanOn: shared.host})
		}
		defer func() { h.once.publish(st.idx, h.host.Name, o) }()
	}

	st.scope = h.secretScope(h.scope(st.m), inh.noLog)
	var facts []string
	facts, st.judged = h.factsRead(st.s, inh)
	if err := st.gather(ctx, facts, st.scope); err != nil {
		o = st.failed(o, err)
		o.status = gatherStatus(ctx, err)
		return st.finish(o, event.Engine{})
	}
	var extra event.Engine
	if st.s.Loop != nil {
		o, extra = st.runLoop(ctx, o)
		return st.finish(o, extra)
	}
	begin := func(target *plan.Host) error {
		delegateTo := ""
		if target.Name != h.host.Name {
			delegateTo = target.Name
		}
		return st.emitStart(delegateTo, nil)
	}
	o, extra = st.execute(ctx, o, begin)
	return st.finish(o, extra)
}

// execute runs the step once in its scope (the step, or one item of its
// loop): its guards, where it runs, its arguments, --check, then its
// attempts. begin is called before the first attempt, with where it runs.
// extra goes into the step's end event.
func (st *stepRun) execute(ctx context.Context, o stepOutcome, begin func(*plan.Host) error) (_ stepOutcome, extra event.Engine) {
	if o, done := st.guards(o); done {
		return o, extra
	}
	target, err := st.h.delegate(st.inh, st.scope)
	if err != nil {
		return st.failed(o, err), extra
	}
	o.target = target
	*st.held = append(*st.held, st.h.r.ahead.enter(ctx, st.h, target))
	mod, err := st.arguments()
	if err != nil {
		return st.failed(o, err), extra
	}
	o.module = mod
	if st.h.r.opts.Check {
		if _, ok := mod.(modules.Checker); !ok {
			return skipped(o, "would run; effect unknown ("+st.s.Module+" cannot tell without running)"), event.Engine{Check: true}
		}
	}
	if err := begin(target); err != nil {
		return st.notRecorded(o, err), extra
	}
	ctx = st.h.watchProcs(ctx, st.base, st.m.blockRollback, target)
	return st.attempts(ctx, mod, target, o), extra
}

// finish emits the step's end and logs it.
func (st *stepRun) finish(o stepOutcome, g event.Engine) stepOutcome {
	e := st.base
	e.Kind = st.m.end
	e.Status, e.Changed, e.Duration = o.status, o.changed, time.Since(st.started)
	if st.s.Retries > 0 && o.attempts > 0 {
		e.Attempt = o.attempts
	}
	if o.err != nil && (o.status == event.Failed || o.status == event.Unreachable || o.status == event.Interrupted) {
		e.Error = st.shown(o.err)
	}
	e.Result = o.data
	e.Data = nil
	e.Engine = g
	e.Ahead = st.base.Ahead
	e.Ignored, e.BlockRollback = o.ignored, st.m.blockRollback
	st.h.r.emit(e)
	for _, release := range *st.held {
		release()
	}
	*st.held = nil
	st.h.logStep(o, st.inh)
	return o
}

// emitStart emits the start of the step: its id and module, where it runs
// when not on its host, how many items, and after a resume that it runs
// again. An error means the journal did not record it, and the step must not
// act.
func (st *stepRun) emitStart(delegateTo string, items *int) error {
	start := st.base
	start.Kind = st.m.start
	if st.s.Retries > 0 {
		start.Attempt = 1
	}
	start.Data = nil
	if st.rerun {
		start.Rerun = "it was in flight when the run stopped, so whether it acted is unknown: it runs again"
	}
	start.BlockRollback = st.m.blockRollback
	start.ID, start.Module, start.DelegateTo = st.s.ID, st.s.Module, delegateTo
	start.Items = items
	if err := st.h.r.emit(start); err != nil {
		return err
	}
	st.h.ran = true
	return nil
}

// notRecorded is a step whose start the journal could not record. It does not
// act: an action the journal misses could be neither audited nor resumed. A
// step stops the host as a drain does (what it changed is rolled back, if the
// journal can record that); a rollback step fails, so the host is left for a
// person to look at.
func (st *stepRun) notRecorded(o stepOutcome, err error) stepOutcome {
	o.err = fmt.Errorf("not run: the journal could not record its start: %w", err)
	o.status, o.fatal = event.Failed, true
	o.result = resultMap(nil, false, true, st.h.shownError(o.err, false).Error())
	if !st.m.rollback {
		o.status, o.halted = event.Interrupted, haltDrain
	}
	return o
}

// failed is o failed by err before its module ran (a guard, where it runs,
// its arguments, its facts, its loop): ignore_errors does not cover that.
func (st *stepRun) failed(o stepOutcome, err error) stepOutcome {
	o.status, o.fatal, o.err = event.Failed, true, err
	o.result = resultMap(nil, false, true, st.shown(err))
	return o
}

// skipped is o skipped for the reason msg says.
func skipped(o stepOutcome, msg string) stepOutcome {
	o.status = event.Skipped
	o.data = map[string]any{"skipped": true, "msg": msg}
	o.result = resultMap(o.data, false, false, "")
	return o
}

// shown is err as the step may show it (see shownError).
func (st *stepRun) shown(err error) string {
	return st.h.shownError(err, st.inh.noLog).Error()
}

func (h *hostRun) logStep(o stepOutcome, inh inherited) {
	lg := h.r.log.Debug()
	if o.status == event.Failed || o.status == event.Unreachable {
		lg = h.r.log.Warn()
	}
	lg = lg.Str("host", h.host.Name).Str("step", h.r.secrets.Redact(o.name)).Str("status", string(o.status))
	if o.err != nil {
		lg = lg.Str("error", h.shownError(o.err, inh.noLog).Error())
	}
	lg.Msg("step")
}
