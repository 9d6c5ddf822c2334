package runner

import (
	"maps"

	"github.com/runbookhq/runbook/modules"
)

// learnFacts sets the variables a set_fact step returned (modules.FactsKey
// of its result data) for the host's later steps: over the runbook's and
// the inventory's vars, under -e, as in Ansible. The same data read back
// from the journal sets them again on a resume. The host's vars map may be
// shared with the plan, so it is copied, never changed in place.
func (h *hostRun) learnFacts(data map[string]any) {
	facts, ok := data[modules.FactsKey].(map[string]any)
	if !ok || len(facts) == 0 {
		return
	}
	vars := maps.Clone(h.vars)
	if vars == nil {
		vars = map[string]any{}
	}
	for k, v := range facts {
		if _, extra := h.r.p.ExtraVars[k]; extra {
			continue
		}
		vars[k] = v
	}
	h.vars = vars
}
