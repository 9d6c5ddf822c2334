// Package pause is the pause module: it stops the run until the operator says to
// go on, or for a set time, so a person can look before the change goes further.
package pause

import (
	"context"
	"errors"
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
			Summary: "wait for the operator to confirm, for a set time, or for other people's approval",
			Description: `Without for, shows prompt and waits until the operator answers yes; any
other answer fails the step, which stops the host as a failure would. --yes
answers for the operator, and a run without a terminal and without --yes
fails here rather than wait forever.

With for, shows prompt and waits that long without asking; --yes does not
shorten it.

With approve, the run stops here until other people approve it with
'runbook approve RUN_ID --step NAME' (from another shell, or another machine
that sees the run's store): required distinct users, by default none of them
the user who started the run (self: true lets that user count too). --yes
never passes it and no terminal answer does. 'runbook reject' ends the wait,
as does the timeout: the step fails as a rejection, the run stops, what the
host did is rolled back as the runbook says, and the exit code is 3. Every
approval and rejection is journaled with who, where, when and why. An
interrupted run stops waiting; its resume waits again, and the approvals
already given still count.

Add run_once: true to ask once per batch instead of once per host.
In --check, pause neither asks nor waits.`,
			Example: `- name: look at the canary before going on
  pause: { prompt: 'Canary upgraded; dashboards green?' }
  run_once: true
- pause: { for: 2m, prompt: 'soaking the new leader' }
- name: approve the point of no return
  pause:
    prompt: the cluster version moves to 3.7 next
    approve: { required: 1, self: false, timeout: 30m }`,
		},
	})
}

// Module holds the pause module's arguments.
type Module struct {
	Prompt string       `yaml:"prompt" default:"Continue?" doc:"text shown to the operator"`
	For    arg.Duration `yaml:"for" doc:"pause this long without asking"`
	// Approve is a section: nil when the step has no approve: key.
	Approve *Approve `yaml:"approve" doc:"wait for approvals by other people (runbook approve); --yes does not pass it"`
}

// Approve is pause's approve: section.
type Approve = modules.ApproveArgs

// DefaultApprovalTimeout is approve.timeout when it is not given.
const DefaultApprovalTimeout = modules.DefaultApprovalTimeout

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate refuses a prompt with nothing in it, which would ask a blank question.
func (m *Module) Validate() error {
	if m.Prompt != "" && strings.TrimSpace(m.Prompt) == "" {
		return &modules.FieldError{Field: "prompt", Msg: "is blank; write what the operator should check, or leave prompt out"}
	}
	if a := m.Approve; a != nil {
		switch {
		case m.For > 0:
			return &modules.FieldError{Field: "approve", Msg: "cannot go with for: a pause either waits a set time or waits for approvals; remove one"}
		}
		return a.Validate()
	}
	return nil
}

// awaitApproval waits for the approvals; --yes and the terminal play no part.
func (m *Module) awaitApproval(ctx context.Context, h *modules.Host, prompt string) (modules.Result, error) {
	req := m.Approve.Request(prompt)
	data := map[string]any{"prompt": prompt, "approved": false, "required": req.Required}
	if h.Approve == nil {
		return modules.Result{Data: data}, errors.New("pause needs approvals, and this run has no approval store to wait on; run it with runbook exec")
	}
	out, err := h.Approve(ctx, req)
	for k, v := range out.Data {
		data[k] = v
	}
	if err != nil {
		data["msg"] = err.Error()
		return modules.Result{Data: data}, err
	}
	data["approved"] = true
	data["approvers"] = out.Approvers
	data["msg"] = "approved by " + strings.Join(out.Approvers, ", ")
	return modules.Result{Data: data}, nil
}

// Run pauses for the set time, or until the operator confirms.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	if m.Approve != nil {
		return m.awaitApproval(ctx, h, d.Prompt)
	}
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
	if m.Approve != nil {
		req := m.Approve.Request(d.Prompt)
		msg = fmt.Sprintf("would wait for %d %s of %q", req.Required, plural(req.Required, "approval", "approvals"), d.Prompt)
	}
	if d.For > 0 {
		msg = "would pause " + probe.Dur(d.For.Std())
	}
	return modules.Result{Data: map[string]any{"prompt": d.Prompt, "msg": msg}}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
