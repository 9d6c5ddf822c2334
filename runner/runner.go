// Package runner is the engine: it runs a plan's phases in order and its batches
// host by host, with guards, retries, rollback, abort, drain and resume, journaling every step.
package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// DefaultForks is how many hosts of a batch run at once when Options.Forks is 0.
const DefaultForks = 5

// DefaultDelay is the wait between attempts of a step with retries and no
// delay, as in Ansible: retrying at once rarely gives a service time to change.
const DefaultDelay = 5 * time.Second

// Options are how a run is made. Dialer is required.
type Options struct {
	// Forks is how many hosts of a batch run at once (DefaultForks when 0).
	Forks int
	// Check runs modules' Check instead of Run (--check): nothing is changed,
	// a module without Check is reported as "would run; effect unknown", and
	// nothing is rolled back.
	Check bool
	// Diff has file modules (template, copy, file, lineinfile) put the
	// unified diff of what they change in their result (--diff); --check
	// shows it too.
	Diff bool
	// Yes lets pause gates pass without asking (--yes).
	Yes bool
	// Tags and SkipTags select steps as Ansible's --tags and --skip-tags do,
	// with its special tags always, never, all, tagged and untagged. They apply
	// to preflight, steps, gates and post, never to a rollback.
	Tags, SkipTags []string
	// Dialer reaches the hosts; local.Dialer for connection: local.
	Dialer conn.Dialer
	// Events receives every event; the journal is a required sink of it. When
	// a required sink fails, no new step starts (as on a drain) and Run
	// returns the error. Nil records nothing.
	Events *event.Bus
	// RunID is run.id in expressions; it should be the Bus's run id.
	RunID string
	// Info is recorded in run_start (or run_resume): the command line, user,
	// version. The runner fills in what the plan knows (name, digests, hosts,
	// batches, check).
	Info event.RunInfo
	// Resume continues the run this journal state describes (nil: a fresh
	// run): the run starts from where its Progress says each host stood.
	// Run refuses a state that CheckResume refuses; the plan should be the
	// one ResumePlan returns, which checks the -e values too.
	Resume *journal.State
	// Drain is closed on the first Ctrl-C: no new step starts, steps in flight
	// finish, hosts left mid-way are rolled back, and the run ends interrupted.
	// Cancelling Run's ctx (the second Ctrl-C) stops at once: commands are
	// killed, hosts are left as they are and marked interrupted.
	Drain <-chan struct{}
	// Confirm asks the operator a question for a pause gate; nil when there is
	// no terminal, and the gate then refuses unless Yes. Calls are serialised.
	Confirm func(ctx context.Context, prompt string) (bool, error)
	// Approve waits for approvals (modules.Host.Approve); the runner fills
	// in the host and step of each request. Nil: a step that needs
	// approvals refuses.
	Approve modules.Approve
	// Now is the clock change windows are judged by; time.Now when nil.
	Now func() time.Time
	// IgnoreWindow, when set, is why this run ignores its change windows
	// (--ignore-window --reason); it is journaled.
	IgnoreWindow string
	// StateDir is a folder on the controller for this run's files (modules.Host.StateDir).
	StateDir string
	// Log receives what the run does, redacted; the zero Logger discards.
	Log zerolog.Logger
}

// Status is how a host ended.
type Status string

const (
	StatusOK             Status = "ok"              // every step done (failures it ignored included)
	StatusFailed         Status = "failed"          // a step failed and nothing was rolled back (rollback: none, --check)
	StatusRolledBack     Status = "rolled_back"     // a step failed, or the run aborted, and the rollback completed
	StatusRollbackFailed Status = "rollback_failed" // the rollback itself failed: see State
	StatusUnreachable    Status = "unreachable"     // the connection failed: whether the step acted is unknown
	StatusSkipped        Status = "skipped"         // never started: the run stopped or aborted before it
	StatusInterrupted    Status = "interrupted"     // stopped by the operator (rolled back on a drain: see State)
)

// Outcome is what a run did.
type Outcome struct {
	// Hosts has every host of the plan; the plan's HostNames give the order.
	Hosts map[string]*HostOutcome
	// Aborted: max_fail was exceeded or a between_batches gate failed, so no new batch started.
	Aborted     bool
	AbortReason string
	// Interrupted: the operator stopped the run (or the journal failed, which stops it the same way).
	Interrupted bool
	// PreflightFailed: a preflight step failed and no host was touched.
	PreflightFailed bool
	// PostFailed: a post step failed after every batch.
	PostFailed bool
	// RollbackFailed: at least one host's rollback failed.
	RollbackFailed bool
	// Stopped says why people or the calendar stopped the run without a
	// failure: an approval was rejected or timed out, a change window
	// closed. The run ends as an interrupted one (exit 3).
	Stopped string
	// OutsideWindow: the run did not start, being outside its change
	// window; nothing was touched.
	OutsideWindow bool
	// HeldAbort: the run aborted only because of hosts that were held
	// (HostOutcome.Held), which is not a failure.
	HeldAbort bool
	Duration  time.Duration
}

// HostOutcome is what happened to one host.
type HostOutcome struct {
	Name   string
	Batch  int
	Status Status
	// Step counts, as Ansible's recap: Ok counts every step that succeeded,
	// Changed the ones among them that changed something.
	Ok, Changed, Skipped, Failed int
	// Err is why the host did not end ok (redacted); a *StepError when a step failed.
	Err      error
	Duration time.Duration
	// State says plainly what state the host was left in: what failed, what
	// was rolled back and what was not.
	State string
	// Held: a step stopped the host without a verdict of failure (an
	// inconclusive analysis with no one to ask); it was rolled back, and
	// unless something else failed the run exits 3, not 1.
	Held bool
}

// count adds a step's end to the host's counts.
func (o *HostOutcome) count(status event.Status, changed bool) {
	switch status {
	case event.OK, event.Changed:
		o.Ok++
		if changed {
			o.Changed++
		}
	case event.Skipped:
		o.Skipped++
	case event.Failed, event.Unreachable:
		o.Failed++
	}
}

// StepError is a step that failed on a host.
type StepError struct {
	Host string
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: step %q: %v", e.Host, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for the outcome: 4 when a rollback failed;
// else 1 when a host failed, the run aborted, or post failed; else 3 when
// preflight refused (nothing was touched, which a script must be able to
// tell from a host that failed and was rolled back), a host was held (an
// inconclusive analysis: rolled back, but not proven bad), or the run was
// interrupted; else 0.
func (o *Outcome) ExitCode() int {
	switch {
	case o.RollbackFailed:
		return exitcode.RollbackFailed
	case o.failed():
		return exitcode.Failed
	case o.PreflightFailed:
		return exitcode.Stopped
	case o.held():
		return exitcode.Stopped
	case o.Interrupted, o.OutsideWindow:
		return exitcode.Stopped
	}
	return exitcode.OK
}

func (o *Outcome) held() bool {
	for _, h := range o.Hosts {
		if h.Held {
			return true
		}
	}
	return false
}

func (o *Outcome) failed() bool {
	if (o.Aborted && !o.HeldAbort) || o.PostFailed {
		return true
	}
	for _, h := range o.Hosts {
		if h.Held && h.Status == StatusRolledBack {
			continue
		}
		switch h.Status {
		case StatusFailed, StatusRolledBack, StatusRollbackFailed, StatusUnreachable:
			return true
		}
	}
	return false
}

// runStatus is the run_end status for the outcome.
func (o *Outcome) runStatus() event.Status {
	switch {
	case o.RollbackFailed:
		return event.RollbackFailed
	case o.Aborted:
		return event.Aborted
	case o.failed():
		return event.Failed
	case o.PreflightFailed, o.OutsideWindow:
		return event.Refused
	case o.Interrupted:
		return event.Interrupted
	}
	return event.OK
}

// Run runs the plan. The Outcome says what happened to every host; the error
// is set when the run could not be recorded (a required event sink failed) or
// could not start at all (then the Outcome is nil and nothing was touched).
//
// Phases: preflight once on the controller (a failure touches nothing); then
// the batches, hosts of a batch in parallel up to Forks, each running its steps
// in order, with the between_batches gates after each batch (the last one too:
// a gate is a health check of what was just changed); then post, unless the
// run aborted. Once failed hosts exceed max_fail no new host starts, in the
// batch or after it, and the run aborts.
//
// Steps: a block hands its when, tags, become, become_user, no_log,
// ignore_errors, run_once and delegate_to down to its steps. A run_once step
// runs on the first host of the batch still running; the others wait and take
// its result (and its failure) as theirs. Facts a step's expressions read are
// gathered fresh before it, and again after each attempt for until,
// failed_when and changed_when. Retries wait DefaultDelay unless delay says
// otherwise. ignore_errors covers what the module reports, not arguments that
// do not render nor a host that cannot be reached.
//
// Rollback: a failed step's enclosing blocks run their own rollback, innermost
// first, then the host's: the runbook's rollback steps, or the automatic undo
// of the completed steps that changed something and no block's rollback
// covered, newest first. A rollback stops at its first failure and the host
// is left as it is, with HostOutcome.State saying what was and was not done.
// An unreachable host is not rolled back: whether its step acted is unknown.
// Tags never apply to a rollback.
//
// Resume: hosts that ended are not touched again; the others go on from their
// first step that did not complete (a step in flight, killed or cut off runs
// again, and its step_start says so), with their registered results restored
// from the journal; a decided failure or a rollback in flight goes on with the
// rollback; a host rolled back after a drain starts over. Preflight runs
// again; finished batches and passed gates do not. An aborted run stays
// aborted: its resume only finishes the abort's rollbacks.
func Run(ctx context.Context, p *plan.Plan, reg *modules.Registry, opts Options) (*Outcome, error) {
	switch {
	case p == nil || len(p.Phases) == 0:
		return nil, errors.New("runner: the plan has no runbook")
	case opts.Dialer == nil:
		return nil, errors.New("runner: no Dialer to reach the hosts")
	}
	if reg == nil {
		reg = modules.Default
	}
	if opts.Forks <= 0 {
		opts.Forks = DefaultForks
	}
	r, err := newRun(p, reg, opts)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}
