package plan

import (
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/inventory"
)

// EvalInventory adapts an inventory to what group() and hostvars() need at run
// time, with each host's raw inventory vars.
func EvalInventory(inv *inventory.Inventory) eval.Inventory { return evalInv{inv: inv} }

// EvalInventory is the plan's inventory for expressions: hosts of the plan
// show their merged and rendered vars (runbook < inventory < -e), so that
// group("etcd") | map(#.vars.etcd_flags_file) sees the values steps see.
func (p *Plan) EvalInventory() eval.Inventory {
	vars := make(map[string]map[string]any, len(p.Hosts))
	for _, h := range p.Hosts {
		vars[h.Name] = h.Vars
	}
	return evalInv{inv: p.Inventory, vars: vars}
}

type evalInv struct {
	inv  *inventory.Inventory
	vars map[string]map[string]any // rendered vars by host, when known
}

func (e evalInv) Group(name string) []eval.Host {
	hosts, err := e.inv.Select(name)
	if err != nil {
		return nil
	}
	out := make([]eval.Host, len(hosts))
	for i, h := range hosts {
		v, ok := e.vars[h.Name]
		if !ok {
			v = h.Vars
		}
		out[i] = hostOf(h, v).Eval()
	}
	return out
}

// GroupNames lists the inventory's groups (eval.GroupNamer), for the
// groups and hostvars an Ansible template reads.
func (e evalInv) GroupNames() []string { return e.inv.Groups() }
