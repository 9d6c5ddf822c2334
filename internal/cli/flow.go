package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
)

// maxFlow bounds the plan flow a report reads back.
const maxFlow = 4 << 20

// planFlowPath is where a run keeps its plan as a Mermaid flowchart, beside
// its journal: a report shows the flow that ran without reading the runbook
// again (whose -e values are never kept). It is not in the journal, whose
// events stay small and say what happened rather than what was planned.
func planFlowPath(stateDir, runID string) string {
	return filepath.Join(stateDir, journal.RunsDir, runID+".plan.mmd")
}

// savePlanFlow writes the plan as `plan --format mermaid` does, secrets
// hidden, mode 0600 as the journal. A resume keeps the first one (resume
// refuses a changed runbook). It is only for reports: a failure to write it
// is not the run's.
func savePlanFlow(stateDir, runID string, p *plan.Plan, secrets *redact.Set) {
	var b bytes.Buffer
	if err := p.WriteMermaid(&b); err != nil {
		return
	}
	f, err := os.OpenFile(planFlowPath(stateDir, runID), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return
	}
	_, werr := io.WriteString(f, secrets.Redact(b.String()))
	if cerr := f.Close(); werr != nil || cerr != nil {
		os.Remove(f.Name())
	}
}

// readPlanFlow reads what savePlanFlow wrote; "" when there is none.
func readPlanFlow(stateDir, runID string) string {
	f, err := os.Open(planFlowPath(stateDir, runID))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxFlow))
	return string(b)
}
