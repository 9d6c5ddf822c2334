package ui

import (
	"strings"

	"github.com/runbookhq/runbook/internal/event"
)

// shownLines are the lines of text a step's end carries for the operator,
// below its own line: a file module's unified diff (`diff`, with --diff and
// in --check runs) and a debug step's message (`debug`). The bus redacted
// them as every result; each line is cleaned as host text is, so a template
// cannot move the cursor, and indented under the step.
func shownLines(e event.Event) []string {
	if e.Kind != event.StepEnd && e.Kind != event.RollbackStepEnd {
		return nil
	}
	var out []string
	for _, key := range []string{"debug", "diff"} {
		s, _ := e.Result[key].(string)
		if strings.TrimSpace(s) == "" {
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			out = append(out, "    "+clean(line))
		}
	}
	return out
}
