package plan

import (
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/inventory"
)

// EvalHost is how an inventory host looks to expressions, with its merged vars.
func EvalHost(h *inventory.Host, vars map[string]any) eval.Host {
	return eval.Host{Name: h.Name, Addr: h.Addr(), Groups: h.Groups, Vars: vars}
}

// EvalInventory adapts an inventory to what group() and hostvars() need at run time.
func EvalInventory(inv *inventory.Inventory) eval.Inventory { return evalInv{inv} }

type evalInv struct{ inv *inventory.Inventory }

func (e evalInv) Group(name string) []eval.Host {
	hosts, err := e.inv.Select(name)
	if err != nil {
		return nil
	}
	out := make([]eval.Host, len(hosts))
	for i, h := range hosts {
		out[i] = EvalHost(h, h.Vars)
	}
	return out
}
