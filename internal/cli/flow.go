package cli

import (
	"bytes"

	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
)

// planFlow is the plan as `plan --format mermaid` writes it, with secrets
// hidden, for the journal to keep: a report of the run shows the flow that
// ran without reading the runbook again (whose -e values are not kept).
func planFlow(p *plan.Plan, secrets *redact.Set) string {
	var b bytes.Buffer
	if err := p.WriteMermaid(&b); err != nil {
		return ""
	}
	return secrets.Redact(b.String())
}
