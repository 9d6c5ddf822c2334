package runner

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

// callModule runs the module (or its Check) over the target's connection. A
// panic in a module is a failure of the step, not of the run.
func (st *stepRun) callModule(ctx context.Context, mod modules.Module, target connTarget) (res modules.Result, err error) {
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

func (h *hostRun) moduleHost(c conn.Conn, target connTarget, inh inherited, s *spec.Step) *modules.Host {
	r := h.r
	log := zerolog.Nop()
	if !inh.noLog {
		log = r.log.With().Str("host", h.name).Str("step", s.Name).Logger()
	}
	become, user := inh.become || target.become, inh.becomeUser
	if user == "" {
		user = target.becomeUser
	}
	return &modules.Host{
		Name: h.name, Addr: h.addr, Vars: h.vars, Conn: c, Log: log,
		Become: become, BecomeUser: user,
		StateDir: r.opts.StateDir, RunbookDir: r.runbookDir, Yes: r.opts.Yes,
		Diff:       r.opts.Diff || r.opts.Check,
		Confirm:    r.confirmFunc(),
		Approve:    h.approveFunc(s, inh),
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
