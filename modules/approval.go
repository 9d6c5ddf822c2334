package modules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/modules/arg"
)

// ApprovalRequest is what a step asks of the people who may let the run go
// on (the pause module's approve:). The module fills the rules; the engine
// fills which run, step and host are waiting.
type ApprovalRequest struct {
	// Host, Step and StepID say who waits: the inventory host, the step's
	// name as shown, and its stable position in the runbook (spec.Step.ID).
	Host, Step, StepID string
	// Prompt is what the approvers are asked.
	Prompt string
	// Required is how many distinct people must approve.
	Required int
	// Self lets the user who started the run count as one of them.
	Self bool
	// Timeout ends the wait as a rejection.
	Timeout time.Duration
}

// ApprovalOutcome says who let the run go on.
type ApprovalOutcome struct {
	// Approvers are the users whose approvals counted, in the order given.
	Approvers []string
	// Data is journaled with the step's result (who, where, when, why).
	Data map[string]any
}

// ErrRejected is wrapped by the error of a step that people refused to let
// go on: `runbook reject`, or an approval that timed out. It is not a failure
// of the host: the run stops as when the operator interrupts it, rolls back
// what was mid-way and ends with exit 3.
var ErrRejected = errors.New("rejected")

// ErrStopWaiting is wrapped by the error of a step that stopped waiting for
// people because the run is draining (Ctrl-C, a lost run lock): it did not
// act, and the host is left as a drain leaves it.
var ErrStopWaiting = errors.New("stopped waiting: the run is stopping")

// Approve is how a module waits for approvals; see Host.Approve.
type Approve func(ctx context.Context, req ApprovalRequest) (ApprovalOutcome, error)

// ApproveArgs is a step's approve: section (pause, and analysis with
// on_inconclusive: pause): who may let the run go on, and for how long the
// run waits for them.
type ApproveArgs struct {
	Required int          `yaml:"required" default:"1" doc:"how many distinct users must approve"`
	Self     bool         `yaml:"self" doc:"the user who started the run may approve too"`
	Timeout  arg.Duration `yaml:"timeout" default:"1h" doc:"waiting longer is a rejection"`
}

// MaxApprovers bounds required: more people than that is a typo.
const MaxApprovers = 10

// DefaultApprovalTimeout is approve.timeout when it is not given: a run
// waits with its hosts locked, so it does not wait forever.
const DefaultApprovalTimeout = time.Hour

// Validate checks the section's own fields; how it goes with the module's
// other arguments is the module's to check.
func (a *ApproveArgs) Validate() error {
	switch {
	case a.Required < 0 || a.Required > MaxApprovers:
		return &FieldError{Field: "approve.required", Msg: fmt.Sprintf("must be from 1 to %d people, got %d", MaxApprovers, a.Required)}
	case a.Timeout < 0:
		return &FieldError{Field: "approve.timeout", Msg: "must be a positive duration like \"30m\""}
	}
	return nil
}

// Request is the approval the step asks for with prompt, the defaults filled.
func (a *ApproveArgs) Request(prompt string) ApprovalRequest {
	req := ApprovalRequest{Prompt: prompt, Required: a.Required, Self: a.Self, Timeout: a.Timeout.Std()}
	if req.Required == 0 {
		req.Required = 1
	}
	if req.Timeout == 0 {
		req.Timeout = DefaultApprovalTimeout
	}
	return req
}
