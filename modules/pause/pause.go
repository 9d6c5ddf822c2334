// Package pause is the pause module: it stops the run until the operator says to
// go on, or for a set time, so a person can look before the change goes further.
package pause

import (
	"context"
	"errors"
	"strings"

	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

func init() {
	modules.Register(modules.Info{
		Name: "pause",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "wait for the operator to confirm, or for a set time",
			Description: `Without for, shows prompt and waits until the operator answers yes; any
other answer fails the step, which stops the host as a failure would. --yes
answers for the operator, and a run without a terminal and without --yes
fails here rather than wait forever.

With for, shows prompt and waits that long without asking; --yes does not
shorten it.

Add run_once: true to ask once per batch instead of once per host.`,
			Example: `- name: look at the canary before going on
  pause: { prompt: 'Canary upgraded; dashboards green?' }
  run_once: true
- pause: { for: 2m, prompt: 'soaking the new leader' }`,
		},
	})
}

// Module holds the pause module's arguments.
type Module struct {
	Prompt string        `yaml:"prompt" default:"Continue?" doc:"text shown to the operator"`
	For    spec.Duration `yaml:"for" doc:"pause this long without asking"`
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate refuses a prompt with nothing in it, which would ask a blank question.
func (m *Module) Validate() error {
	if m.Prompt != "" && strings.TrimSpace(m.Prompt) == "" {
		return &modules.FieldError{Field: "prompt", Msg: "is blank; write what the operator should check, or leave prompt out"}
	}
	return nil
}

// Run is not implemented yet; the engine issue brings it, with the terminal.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return modules.Result{}, errors.New("the pause module runs in a later release")
}

var _ modules.Validator = (*Module)(nil)
