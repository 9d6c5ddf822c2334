package modules

import (
	"context"
	"errors"
	"time"
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
