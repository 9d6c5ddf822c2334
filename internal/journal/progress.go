package journal

import (
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// Progress is where one host's steps stand, as a resume goes on from them:
// what completed, what is unknown, a rollback under way and the commands
// that may still run. It follows the journal event by event, as the runner's
// own state followed the run, so that a resume is the runner started from it.
type Progress struct {
	// Completed are the steps-phase steps that completed, by index: ok,
	// changed, skipped, or failed under ignore_errors. A host rolled back
	// after an interrupt starts over: its steps count no more.
	Completed map[int]StepRecord
	// Rerun is the step whose outcome is unknown: started and never ended
	// (in flight at a crash), or stopped or cut off mid-way. It runs again.
	Rerun *StepRecord
	// StartedOver: rolled back after an interrupt, the host runs its steps
	// again from the first.
	StartedOver bool
	// Open is a host_start without its host_end.
	Open bool
	// EndSeq is the seq of the host's last host_end.
	EndSeq int64
	// Leftovers are the commands the host's last step started, while no end
	// of that step shows they ended: a resume checks them first.
	Leftovers []Process

	rollback *RollbackProgress
	failed   *StepRecord // a step failed and its rollback had not begun
}

// RollbackProgress is a host's rollback that began and did not end, or the
// failure that decided one before the run stopped.
type RollbackProgress struct {
	// Reason is rollback_start's: failed, interrupted (a drain), abort.
	Reason     string
	FailedStep string
	// FailedIndex is the failed step's index; -1 when no step failed (abort).
	FailedIndex int
	Error       string
	// Result is the failed step's, when the journal has it.
	Result map[string]any
	// Done are the rollback steps that completed.
	Done map[RollbackKey]StepRecord
}

// RollbackKey names a rollback step: its phase (steps for a block's own
// rollback, rollback for the runbook's), its index, and whether it is an
// automatic undo (then Index is the undone step's).
type RollbackKey struct {
	Phase event.Phase
	Index int
	Undo  bool
}

// Process is a command a step started (step_process), on connection On.
type Process struct {
	PGID       int
	Start      uint64
	Boot       string
	Become     bool
	BecomeUser string
	On         string // an inventory host, or controller
	At         time.Time
	Phase      event.Phase
	Index      int
	Undo       bool
	Step       string
}

// Rollback is the rollback a resume goes on with: one in flight when the
// run stopped, or the one a failure decided and that had not begun. Nil
// when there is none.
func (p *Progress) Rollback() *RollbackProgress {
	if p.rollback != nil {
		return p.rollback
	}
	if f := p.failed; f != nil {
		return &RollbackProgress{Reason: "failed", FailedStep: f.Name, FailedIndex: f.Index, Error: f.Error,
			Result: f.Result, Done: map[RollbackKey]StepRecord{}}
	}
	return nil
}

// ReasonAhead is the Reason of the rollback that undoes the steps a host
// ran ahead of its batch, when that batch did not start after all.
const ReasonAhead = "ahead"

// aheadUndone reports whether RollbackEnd e closes the undo of what host h
// ran ahead of its batch, undone completely.
func aheadUndone(h *HostState, e event.Event) bool {
	rb := h.Progress.rollback
	return rb != nil && rb.Reason == ReasonAhead && e.Status == event.RolledBack
}

// Finished reports whether the host ended, one way or another, so that a
// resume does not touch it again. A host that ended ok while its rollback
// was in flight was being rolled back because the run aborted: it is
// finished, and the abort's path finishes its rollback.
func (h *HostState) Finished() bool {
	switch h.Status {
	case HostDone:
		return true
	case HostFailed, HostRolledBack, HostRollbackFailed:
		return h.Progress.Rollback() == nil
	}
	return false
}

// Completed reports whether the step completed: ok, changed, skipped, or
// failed under ignore_errors.
func (r StepRecord) Completed() bool {
	switch r.Status {
	case event.OK, event.Changed, event.Skipped:
		return true
	case event.Failed:
		return r.Ignored
	}
	return false
}

// Completed are the steps of the sequence that completed, by index.
func (s Steps) Completed() map[int]StepRecord {
	out := map[int]StepRecord{}
	for _, r := range s.Done {
		if r.Completed() {
			out[r.Index] = r
		}
	}
	return out
}

// endedSurely reports whether a step's end shows that its commands ended: it
// was not stopped (its commands killed, perhaps not all) nor cut off from
// its host (its commands may run on).
func endedSurely(e event.Event) bool {
	return e.Status != event.Interrupted && e.Status != event.Unreachable
}

// record is a step as event e (its start or its end) shows it.
func record(e event.Event) StepRecord {
	return StepRecord{Phase: phaseOf(e), Index: e.StepIndex, Name: e.Step, Host: e.Host, Undo: e.Undo, NoLog: e.NoLog,
		Status: e.Status, Changed: e.Changed, Error: e.Error, Result: e.Result, Ignored: e.Ignored, RanOn: e.RanOn}
}

// progress follows e in the progress of the host it belongs to. Events of
// hosts the run does not have (the controller's processes) are passed over.
func (s *State) progress(e event.Event) {
	var p *Progress
	if h := s.Hosts[e.Host]; h != nil && e.Host != "" {
		p = &h.Progress
	}
	if p == nil {
		return
	}
	if p.Completed == nil {
		p.Completed = map[int]StepRecord{}
	}
	switch e.Kind {
	case event.HostStart:
		p.StartedOver, p.Open = false, true
	case event.StepStart:
		if e.Phase == event.Steps {
			rec := record(e)
			p.Rerun = &rec
			p.Leftovers = nil
		}
	case event.RollbackStepStart:
		p.Leftovers = nil
	case event.StepProcess:
		if e.PGID > 1 && e.On != "" {
			p.Leftovers = append(p.Leftovers, Process{PGID: e.PGID, Start: e.Start, Boot: e.Boot, Become: e.Become,
				BecomeUser: e.BecomeUser, On: e.On, At: e.Time, Phase: e.Phase, Index: e.StepIndex, Undo: e.Undo, Step: e.Step})
		}
	case event.StepEnd:
		if e.Phase != event.Steps {
			return
		}
		if endedSurely(e) {
			p.Leftovers = nil
		}
		if p.Rerun != nil && p.Rerun.Index == e.StepIndex {
			p.Rerun = nil
		}
		p.failed = nil
		rec := record(e)
		if rec.Completed() {
			p.Completed[e.StepIndex] = rec
			return
		}
		delete(p.Completed, e.StepIndex)
		switch e.Status {
		case event.Failed:
			p.failed = &rec
		case event.Interrupted, event.Unreachable:
			// Killed or cut off mid-way: whether it acted is unknown, as
			// for a step in flight at a crash.
			p.Rerun = &rec
		}
	case event.RollbackStart:
		failed := p.failed
		p.failed = nil
		if p.rollback != nil {
			return
		}
		rb := &RollbackProgress{Reason: e.Reason, FailedStep: e.FailedStep, FailedIndex: -1, Error: e.Error,
			Done: map[RollbackKey]StepRecord{}}
		if e.FailedIndex != nil {
			rb.FailedIndex = *e.FailedIndex
		}
		if failed != nil && failed.Index == rb.FailedIndex {
			rb.Result = failed.Result
		}
		p.rollback = rb
	case event.RollbackStepEnd:
		if endedSurely(e) {
			p.Leftovers = nil
		}
		if p.rollback != nil && (e.Status == event.OK || e.Status == event.Changed || e.Status == event.Skipped) {
			p.rollback.Done[RollbackKey{phaseOf(e), e.StepIndex, e.Undo}] = record(e)
		}
	case event.RollbackEnd:
		if p.rollback != nil && p.rollback.Reason == "interrupted" && e.Status == event.RolledBack {
			// Undone after an interrupt: the host starts over.
			p.Completed = map[int]StepRecord{}
			p.StartedOver = true
		}
		if p.rollback != nil && p.rollback.Reason == ReasonAhead && e.Status == event.RolledBack {
			// Its ahead steps undone, the host never started: none counts.
			p.Completed = map[int]StepRecord{}
			p.Rerun = nil
		}
		p.rollback = nil
	case event.HostEnd:
		p.EndSeq = e.Seq
		p.Open = false
		p.failed = nil
	}
}
