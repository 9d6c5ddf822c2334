package runner

import (
	"maps"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/plan"
)

// withOwnResult makes the name step s registers hold its result in rs, the
// scope of its until, failed_when and changed_when: Ansible's `register:
// out` with `failed_when: out.rc != 0` sees the attempt being judged, as
// `result` does.
func withOwnResult(rs *eval.Scope, s *plan.CompiledStep) {
	if s.Register == "" {
		return
	}
	reg := maps.Clone(rs.Registered)
	if reg == nil {
		reg = map[string]any{}
	}
	reg[s.Register] = rs.Result
	rs.Registered = reg
}
