package runner

import (
	"fmt"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// arguments renders the step's arguments in its scope into the module value
// that runs.
func (st *stepRun) arguments() (modules.Module, error) {
	mod, err := st.s.NewArgs(st.h.r.reg, st.scope)
	if err != nil {
		return nil, argsError(st.s, err)
	}
	return mod, nil
}

// delegate resolves where the step runs: the host itself, the controller, or
// another inventory host (with the original host's vars).
func (h *hostRun) delegate(inh inherited, scope *eval.Scope) (*plan.Host, error) {
	s := inh.delegate
	if s == nil {
		return h.host, nil
	}
	name := s.DelegateTo
	if s.DelegateTemplate != nil {
		// Where a step runs names an inventory host, which no_log does not
		// make a secret: events name their hosts.
		plain := *scope
		plain.Rendered = nil
		v, err := s.DelegateTemplate.Render(&plain)
		if err != nil {
			return nil, fmt.Errorf("%s: delegate_to: %w", s.DelegatePos, err)
		}
		if name, err = eval.Format(v); err != nil {
			return nil, fmt.Errorf("%s: delegate_to: %w", s.DelegatePos, err)
		}
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, fmt.Errorf("%s: delegate_to is empty; name an inventory host, or controller", s.DelegatePos)
	case name == plan.Controller:
		return controllerTarget(), nil
	case name == h.host.Name:
		return h.host, nil
	}
	if h.r.p.Inventory == nil {
		return nil, fmt.Errorf("%s: delegate_to %q: there is no inventory to find it in", s.DelegatePos, name)
	}
	d, err := h.r.p.Delegate(name)
	if err != nil {
		return nil, fmt.Errorf("%s: delegate_to %q: no such host in the inventory", s.DelegatePos, name)
	}
	return d, nil
}

// argsError is a failure to render or validate a step's arguments. Its text
// keeps the diagnostics' positions but does not wrap them: a step failure must
// not look like invalid input (exit 2) to the CLI.
func argsError(s *plan.CompiledStep, err error) error {
	if ds, ok := diag.As(err); ok {
		return fmt.Errorf("%s: arguments of %s: %s", s.Pos, s.Module, (&diag.DiagsError{Diags: ds}).Error())
	}
	return fmt.Errorf("%s: arguments of %s: %w", s.Pos, s.Module, err)
}
