package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// approveFunc is Options.Approve for step s on this host: the request names
// the host and step, and the wait ends when the run drains (Ctrl-C, a lost
// lock), which does not cancel the step's context: a step in flight would
// otherwise hold the drain until someone approved it.
func (h *hostRun) approveFunc(s *plan.CompiledStep, inh inherited) modules.Approve {
	r := h.r
	if r.opts.Approve == nil {
		return nil
	}
	name := h.stepName(s, inh.noLog)
	return func(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
		req.Host, req.Step, req.StepID = h.host.Name, name, s.ID
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-wctx.Done():
			}
		}()
		out, err := r.opts.Approve(wctx, req)
		if err != nil && ctx.Err() == nil && wctx.Err() != nil && !errors.Is(err, modules.ErrRejected) {
			err = fmt.Errorf("%w for approval of %q", modules.ErrStopWaiting, name)
		}
		return out, err
	}
}

// stoppedByPeople ends a step that people stopped: a rejection (or an
// approval that timed out) stops the whole run, as an interrupt does, and
// the host rolls back what it did; a wait that ended because the run drains
// is that drain. Neither is a failure of the host (exit 3, not 1).
func (h *hostRun) stoppedByPeople(o stepOutcome, err error, inh inherited) stepOutcome {
	o.err, o.fatal, o.halted = err, true, haltDrain
	msg := h.shownError(err, inh.noLog).Error()
	o.result = resultMap(o.data, false, true, msg)
	if errors.Is(err, modules.ErrRejected) {
		o.status = event.Failed
		h.r.stopRun(fmt.Sprintf("%s: %s", h.host.Name, msg))
		return o
	}
	o.status = event.Interrupted
	return o
}

// stopRun stops the run for why without a failure: no new step starts,
// steps in flight finish, hosts left mid-way roll back, exit 3. The first
// reason is the one the run ends with.
func (r *runner) stopRun(why string) {
	r.mu.Lock()
	if r.out.Stopped == "" {
		r.out.Stopped = why
	}
	r.out.Interrupted = true
	r.mu.Unlock()
	r.halt()
}
