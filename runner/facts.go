package runner

import (
	"context"
	"fmt"
	"slices"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
)

// factsRead returns the registered facts that the step's guards and templates
// read before it runs (when, also a block's, delegate_to, arguments, loop),
// sorted, and judged, those read after an attempt: until, failed_when and
// changed_when. judged are gathered after each attempt, so a fact only they
// read is not gathered before the first: that reading would be thrown away
// (and, for a check that a restarted member caught up, it would lengthen
// the outage by a reading of the whole cluster).
func (h *hostRun) factsRead(s *plan.CompiledStep, inh inherited) (before, judged []string) {
	add := func(list *[]string, names []string) {
		for _, n := range names {
			if _, ok := h.r.reg.LookupFacts(n); ok && !slices.Contains(*list, n) {
				*list = append(*list, n)
			}
		}
	}
	for _, p := range []*eval.Program{s.Until, s.FailedWhen, s.ChangedWhen} {
		if p != nil {
			add(&judged, p.Names())
		}
	}
	for _, w := range inh.when {
		add(&before, w.Names())
	}
	if d := inh.delegate; d != nil && d.DelegateTemplate != nil {
		add(&before, d.DelegateTemplate.Names())
	}
	for _, t := range s.Templates {
		add(&before, t.Names())
	}
	if s.Loop != nil {
		add(&before, s.Loop.Names())
	}
	slices.Sort(before)
	slices.Sort(judged)
	return before, judged
}

// gather reads the named facts afresh for this host, over its own connection,
// into scope.Extra.
func (st *stepRun) gather(ctx context.Context, names []string, scope *eval.Scope) error {
	h := st.h
	if len(names) == 0 {
		return nil
	}
	extra := make(map[string]any, len(scope.Extra)+len(names))
	for k, v := range scope.Extra {
		extra[k] = v
	}
	for _, n := range names {
		f, _ := h.r.reg.LookupFacts(n)
		v, err := func() (any, error) {
			c, release, err := h.r.pool.acquire(ctx, h.host)
			if err != nil {
				return nil, err
			}
			defer release()
			mh := h.moduleHost(c, h.host, st.inh, st.s)
			// Facts read the inventory too (the etcd facts find the members
			// through group etcd), as a module does through its scope.
			mh.Scope = scope
			return f.Gather(ctx, mh)
		}()
		if err != nil {
			return fmt.Errorf("gathering the %s facts: %w", n, err)
		}
		extra[n] = v
	}
	scope.Extra = extra
	return nil
}

// gatherStatus is how a step ends when its facts could not be read: stopped
// by the operator, cut off from its host, or failed.
func gatherStatus(ctx context.Context, err error) event.Status {
	switch {
	case ctx.Err() != nil:
		return event.Interrupted
	case conn.IsTransport(err):
		return event.Unreachable
	}
	return event.Failed
}
