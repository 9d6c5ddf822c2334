package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// attempts runs the module until it succeeds, until holds, or the retries run out.
func (st *stepRun) attempts(ctx context.Context, mod modules.Module, target *plan.Host, o stepOutcome) stepOutcome {
	h, r, s := st.h, st.h.r, st.s
	tries := 1 + s.Retries
	delay := s.Delay.Std()
	if delay == 0 {
		delay = DefaultDelay
	}
	ctx = withProgress(ctx, r, st.base)
	for a := 1; ; a++ {
		next := st.attempt(ctx, mod, target)
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
				o.result["failed"], o.result["error"], o.result["msg"] = true, st.shown(o.err), st.shown(o.err)
			}
			o.ignored = st.inh.ignoreErrors
			return o
		}
		if k := r.halted(ctx); k != notHalted {
			return h.stopRetrying(o, k, a, tries)
		}
		retry := st.base
		retry.Kind = event.StepRetry
		retry.Attempt = a
		retry.Data, retry.BlockRollback = nil, st.m.blockRollback
		if o.err != nil {
			retry.Error = st.shown(o.err)
		} else if s.Until != nil {
			retry.Error = fmt.Sprintf("until `%s` is false", s.Until.Src)
		}
		r.emit(retry)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return h.stopRetrying(o, haltStop, a, tries)
		case <-r.stop:
			t.Stop()
			return h.stopRetrying(o, haltDrain, a, tries)
		}
	}
}

// stopRetrying ends a retried step when the run stops between attempts: it
// failed (a drain rolls the host back), or was interrupted (a stop).
func (h *hostRun) stopRetrying(o stepOutcome, k haltKind, a, tries int) stepOutcome {
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
func (st *stepRun) attempt(ctx context.Context, mod modules.Module, target *plan.Host) stepOutcome {
	s := st.s
	actx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, s.Timeout.Std())
	}
	res, err := st.callModule(actx, mod, target)
	timedOut := actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	o := stepOutcome{modRes: res, data: cloneMap(res.Data)}
	switch {
	case ctx.Err() != nil:
		o.status, o.err = event.Interrupted, fmt.Errorf("stopped by the operator: %w", errOr(err, ctx.Err()))
		return o
	case errors.Is(err, modules.ErrStopWaiting), errors.Is(err, modules.ErrRejected):
		return st.h.stoppedByPeople(o, err, st.inh)
	case err != nil && conn.IsTransport(err):
		o.status, o.err = event.Unreachable, err
		o.result = resultMap(o.data, false, true, st.shown(err))
		return o
	case timedOut:
		err = fmt.Errorf("timed out after %s: %w", s.Timeout, errOr(err, context.DeadlineExceeded))
	}
	failed, changed := err != nil, res.Changed
	msg := ""
	if err != nil {
		msg = st.shown(err)
	}
	o.result = resultMap(o.data, changed, failed, msg)
	rs := *st.scope
	rs.Result = o.result
	withOwnResult(&rs, st.s)
	// until, failed_when and changed_when judge the world after the attempt.
	if err := st.gather(ctx, st.judged, &rs); err != nil {
		o.status, o.fatal, o.err = gatherStatus(ctx, err), true, err
		o.result["failed"], o.result["error"] = true, st.shown(err)
		return o
	}
	judge := func(p *eval.Program) (bool, bool) {
		v, jerr := p.Bool(&rs)
		if jerr != nil {
			o.status, o.fatal, o.err = event.Failed, true, fmt.Errorf("%s: %w", p.Name, jerr)
			o.result["failed"], o.result["error"] = true, st.shown(o.err)
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
			o.result["error"], o.result["msg"] = st.shown(err), st.shown(err)
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
		o.ignored = st.inh.ignoreErrors
	case o.changed:
		o.status = event.Changed
	default:
		o.status = event.OK
	}
	return o
}
