package runner

import "github.com/runbookhq/runbook/internal/plan"

// selected is plan.Selected, which the check before a run shares: both skip
// the same steps.
func selected(tags, only, skip []string) bool { return plan.Selected(tags, only, skip) }
