package runner

import (
	"context"
	"fmt"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// callModule runs the module (or its Check) over the target's connection. A
// panic in a module is a failure of the step, not of the run.
func (st *stepRun) callModule(ctx context.Context, mod modules.Module, target *plan.Host) (res modules.Result, err error) {
	h, s := st.h, st.s
	c, release, err := h.r.pool.acquire(ctx, target)
	if err != nil {
		return modules.Result{}, err
	}
	defer release()
	mh := h.moduleHost(c, target, st.inh, s)
	mh.Progress = progressOf(ctx)
	// The module's own expressions (check's expect) see what the step's guards
	// see: vars, registered results, facts.
	mh.Scope = st.scope
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

// moduleHost is what the module of step s sees: this host (with the vars
// set_fact set so far) over c, the connection to target, as which it
// becomes (the step's settings, else target's inventory ones), and the run.
func (h *hostRun) moduleHost(c conn.Conn, target *plan.Host, inh inherited, s *plan.CompiledStep) *modules.Host {
	r := h.r
	mh := h.host.Module(c)
	mh.Vars = h.vars
	if !inh.noLog {
		mh.Log = r.log.With().Str("host", h.host.Name).Str("step", s.Name).Logger()
	}
	mh.Become, mh.BecomeUser = inh.become || target.Become, inh.becomeUser
	if mh.BecomeUser == "" {
		mh.BecomeUser = target.BecomeUser
	}
	mh.StateDir, mh.RunbookDir, mh.Yes = r.opts.StateDir, r.runbookDir, r.opts.Yes
	mh.Diff = r.opts.Diff || r.opts.Check
	mh.Confirm = r.confirmFunc()
	mh.Approve = h.approveFunc(s, inh)
	mh.Controller = &lazyConn{pool: r.pool, t: controllerTarget()}
	return mh
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
