package plan

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
)

// Host is a host as a run sees it, resolved once from the inventory (and -e):
// its merged variables (runbook < inventory < -e), how to reach it and how to
// become root there. The connection (Target), the expressions (Eval) and the
// modules (Module) each read their view of it from here.
type Host struct {
	Name       string         `json:"name"`
	Addr       string         `json:"addr"`
	Connection string         `json:"connection"`
	Groups     []string       `json:"groups"`
	Vars       map[string]any `json:"-"`
	Port       int            `json:"-"` // zero: the transport's default
	User       string         `json:"-"` // empty: the transport decides
	KeyFile    string         `json:"-"`
	// Become and BecomeUser are the inventory's ansible_become settings,
	// used when a step does not ask for become itself.
	Become     bool   `json:"-"`
	BecomeUser string `json:"-"`
	// Inventory is where the host was declared, for the positions of its
	// vars in diagnostics; nil for the controller.
	Inventory *inventory.Host `json:"-"`
}

// hostOf resolves an inventory host, with the vars the run gives it.
func hostOf(h *inventory.Host, vars map[string]any) *Host {
	return &Host{
		Name: h.Name, Addr: h.Addr(), Connection: h.Connection(), Groups: h.Groups, Vars: vars,
		Port: h.Port(), User: h.User(), KeyFile: h.KeyFile(),
		Become: h.Become(), BecomeUser: h.BecomeUser(),
		Inventory: h,
	}
}

// ControllerHost is the machine runbook runs on, as preflight, gates, post
// and delegate_to: controller see it, with the given vars.
func ControllerHost(vars map[string]any) *Host {
	return &Host{Name: spec.Controller, Addr: "localhost", Connection: "local", Vars: vars}
}

// Delegate is the inventory host a step delegates to (delegate_to: name),
// with its inventory vars: it need not be a host of the plan.
func (p *Plan) Delegate(name string) (*Host, error) {
	if p.Inventory == nil {
		return nil, fmt.Errorf("there is no inventory to find %q in", name)
	}
	ih, ok := p.Inventory.Host(name)
	if !ok {
		return nil, fmt.Errorf("no host %q in the inventory", name)
	}
	return hostOf(ih, ih.Vars), nil
}

// Target is what the connection dials.
func (h *Host) Target() conn.Target {
	return conn.Target{Name: h.Name, Addr: h.Addr, Port: h.Port, User: h.User,
		Connection: h.Connection, KeyFile: h.KeyFile, Vars: h.Vars}
}

// Eval is how the host looks to expressions: its name, address and groups,
// with its merged vars. The runner, the checks before a run and the order
// key all see it so.
func (h *Host) Eval() eval.Host {
	return eval.Host{Name: h.Name, Addr: h.Addr, Groups: h.Groups, Vars: h.Vars}
}

// Module is what a module sees of the host, over c: its name, address and
// vars, and a scope with them. Who adds the rest decides it: the runner sets
// become from the step and the host it runs over, its log, run folders,
// prompts and the step's scope.
func (h *Host) Module(c conn.Conn) *modules.Host {
	return &modules.Host{
		Name: h.Name, Addr: h.Addr, Vars: h.Vars, Conn: c, Log: zerolog.Nop(),
		Scope: &eval.Scope{Vars: h.Vars, Host: h.Eval()},
	}
}

// OrderByFacts is OrderBy with the facts the order key reads gathered over
// ctrl: facts for ordering are read from the controller, before any
// connection to the hosts is opened. stateDir is the run's folder for module
// files (modules.Host.StateDir).
func (p *Plan) OrderByFacts(ctx context.Context, ctrl conn.Conn, stateDir string) (*Plan, error) {
	if !p.OrderAtStart {
		return p, nil
	}
	inv := p.EvalInventory()
	reg := p.registry
	if reg == nil {
		reg = modules.Default
	}
	return p.OrderBy(func(h *Host) (map[string]any, error) {
		out := map[string]any{}
		for _, name := range p.OrderFacts {
			f, ok := reg.LookupFacts(name)
			if !ok {
				return nil, fmt.Errorf("no facts %q", name)
			}
			mh := h.Module(ctrl)
			mh.Controller, mh.StateDir, mh.Scope.Inventory = ctrl, stateDir, inv
			v, err := f.Gather(ctx, mh)
			if err != nil {
				return nil, err
			}
			out[name] = v
		}
		return out, nil
	})
}
