// Package pause is the pause module: it stops the run until the operator says to
// go on, or for a set time, so a person can look before the change goes further.
package pause

import (
	"context"
	"fmt"
	"strings"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/probe"
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

Add run_once: true to ask once per batch instead of once per host.
In --check, pause neither asks nor waits.`,
			Example: `- name: look at the canary before going on
  pause: { prompt: 'Canary upgraded; dashboards green?' }
  run_once: true
- pause: { for: 2m, prompt: 'soaking the new leader' }`,
		},
	})
}

// Module holds the pause module's arguments.
type Module struct {
	Prompt string       `yaml:"prompt" default:"Continue?" doc:"text shown to the operator"`
	For    arg.Duration `yaml:"for" doc:"pause this long without asking"`
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

// Run pauses for the set time, or until the operator confirms.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	if d.For > 0 {
		h.Log.Info().Str("for", probe.Dur(d.For.Std())).Msg(d.Prompt)
		if err := probe.Sleep(ctx, d.For.Std()); err != nil {
			return modules.Result{}, fmt.Errorf("pause of %s: %w", probe.Dur(d.For.Std()), err)
		}
		return modules.Result{Data: map[string]any{"prompt": d.Prompt, "paused": probe.Dur(d.For.Std()), "msg": "paused " + probe.Dur(d.For.Std())}}, nil
	}
	switch {
	case h.Yes:
		h.Log.Info().Str("prompt", d.Prompt).Msg("confirmed by --yes")
		return modules.Result{Data: map[string]any{"prompt": d.Prompt, "confirmed": true, "msg": "confirmed by --yes"}}, nil
	case h.Confirm == nil:
		return modules.Result{}, fmt.Errorf("pause needs confirmation: run on a terminal or pass --yes (it asks %q)", d.Prompt)
	}
	ok, err := h.Confirm(ctx, d.Prompt)
	if err != nil {
		return modules.Result{}, fmt.Errorf("pause: asking %q: %w", d.Prompt, err)
	}
	if !ok {
		return modules.Result{Data: map[string]any{"prompt": d.Prompt, "confirmed": false, "msg": "refused by the operator"}},
			fmt.Errorf("the operator did not confirm %q", d.Prompt)
	}
	return modules.Result{Data: map[string]any{"prompt": d.Prompt, "confirmed": true, "msg": "confirmed by the operator"}}, nil
}

// Check passes without waiting or asking: --check changes nothing, so there
// is nothing for the operator to look at yet.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	msg := fmt.Sprintf("would ask %q", d.Prompt)
	if d.For > 0 {
		msg = "would pause " + probe.Dur(d.For.Std())
	}
	return modules.Result{Data: map[string]any{"prompt": d.Prompt, "msg": msg}}, nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
