package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// CorruptError is damage Replay refuses: it names the line (1-based) and what is
// wrong with it. File is empty when Replay read from a reader with no name.
type CorruptError struct {
	File string
	Line int
	Msg  string
	Err  error // the underlying decode error, if any
}

func (e *CorruptError) Error() string {
	where := fmt.Sprintf("line %d", e.Line)
	if e.File != "" {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return fmt.Sprintf("journal %s: %s", where, e.Msg)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Torn describes a last line cut short by a crash, which Replay dropped.
type Torn struct {
	Line   int   // its line number
	Offset int64 // where it starts: the size of the valid journal
	Bytes  int   // how long the torn piece is
}

// HostStatus is where a host stands in a run.
type HostStatus string

const (
	HostPending        HostStatus = "pending"     // not started
	HostRunning        HostStatus = "running"     // started, not ended: in flight at a crash, or live
	HostDone           HostStatus = "done"        // every step ok, changed or skipped
	HostFailed         HostStatus = "failed"      // a step failed (and rollback was off or not reached)
	HostRolledBack     HostStatus = "rolled_back" // failed, then rolled back
	HostRollbackFailed HostStatus = "rollback_failed"
	HostUnreachable    HostStatus = "unreachable"
	HostInterrupted    HostStatus = "interrupted" // stopped by an interrupt or an abort before its end
)

// BatchStatus is where a batch stands.
type BatchStatus string

const (
	BatchPending     BatchStatus = "pending"
	BatchRunning     BatchStatus = "running"
	BatchDone        BatchStatus = "done"
	BatchFailed      BatchStatus = "failed"
	BatchAborted     BatchStatus = "aborted"
	BatchInterrupted BatchStatus = "interrupted"
)

// StepRecord is one step as the journal saw it.
type StepRecord struct {
	Phase    event.Phase
	Index    int
	Name     string
	Host     string
	Undo     bool // an automatic undo of the steps-phase step at Index
	NoLog    bool
	Status   event.Status // empty while in flight
	Changed  bool
	Error    string
	Result   map[string]any // what Undo needs after a resume
	Ignored  bool           // failed under ignore_errors
	RanOn    string         // run_once: the host that ran it, when not this one
	Ahead    bool           // run before its host's batch started (ahead: true)
	Attempts int
	Started  time.Time // zero if the journal has no start for it
	Ended    time.Time
	Duration time.Duration
}

// Steps are the steps of one sequence (a host's steps, its rollback, a batch's
// gates, preflight, post) in the order they ended.
type Steps struct {
	Done []StepRecord
	// InFlight is the step that started and did not end: the one that was
	// running when the process stopped. Whether it acted is unknown.
	InFlight *StepRecord
}

// HostState is one host's part of a run.
type HostState struct {
	Name        string
	Batch       int
	Status      HostStatus
	Started     time.Time
	Ended       time.Time
	Steps       Steps
	Rollback    Steps
	RollingBack bool   // rollback_start seen and no rollback_end yet
	Error       string // from host_end, or the failed step's
	// Progress is where its steps stand, for a resume (progress.go).
	Progress Progress
}

// BatchState is one batch's part of a run.
type BatchState struct {
	Index   int // 1-based
	Hosts   []string
	Status  BatchStatus
	Started time.Time
	Ended   time.Time
	Gates   Steps
	// GateStatus is the status of gate_end, empty until the gates ended.
	GateStatus event.Status
}

// Resume is one `runbook resume` of the run.
type Resume struct {
	Time time.Time
	Info event.RunInfo
}

// State is what a journal says about a run.
type State struct {
	RunID   string
	Info    event.RunInfo // from run_start
	Started time.Time
	Resumes []Resume

	// These describe the last part of the run, since its last resume.
	Finished    bool         // run_end seen
	Ended       time.Time    // when, if Finished
	Status      event.Status // of run_end
	ExitCode    int          // of run_end
	Reason      string       // of run_end
	Aborted     bool
	AbortReason string
	Interrupted bool

	Preflight Steps
	Post      Steps
	Hosts     map[string]*HostState
	Batches   []*BatchState

	LastSeq int64
	Events  []event.Event
	// Torn is the last line Replay dropped, nil if the journal ended cleanly.
	Torn *Torn
	// Live and PID are set by Load and List: a process holds the run's lock.
	Live bool
	PID  int

	hostOrder []string
	size      int64
}

// HostList returns the hosts in plan order, then any the plan did not name.
func (s *State) HostList() []*HostState {
	out := make([]*HostState, 0, len(s.hostOrder))
	for _, h := range s.hostOrder {
		out = append(out, s.Hosts[h])
	}
	return out
}

// Replay reads a journal and returns the state of its run. A last line without
// its newline, torn by a crash in the middle of a write, is dropped and reported
// in State.Torn. Any other damage is refused with a *CorruptError naming the line:
// bad JSON, an empty line, a Seq that skips or goes back, another run's id, a
// journal that does not begin with run_start. A journal with no complete event
// is ErrEmpty.
func Replay(r io.Reader) (*State, error) {
	st, _, err := replay(r, "")
	return st, err
}

func replay(r io.Reader, name string) (*State, checker, error) {
	var chk checker
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, chk, fmt.Errorf("read journal %s: %w", name, err)
	}
	st := &State{Hosts: map[string]*HostState{}}
	var off int64
	line := 0
	for len(data) > 0 {
		line++
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			// Emit writes a line and its newline in one write, so a line
			// without one was being written when the process died.
			st.Torn = &Torn{Line: line, Offset: off, Bytes: len(data)}
			break
		}
		text := data[:nl]
		data = data[nl+1:]
		corrupt := func(msg string, err error) error {
			return &CorruptError{File: name, Line: line, Msg: msg, Err: err}
		}
		if len(bytes.TrimSpace(text)) == 0 {
			return nil, chk, corrupt("empty line", nil)
		}
		var e event.Event
		if err := json.Unmarshal(text, &e); err != nil {
			return nil, chk, corrupt("bad JSON: "+err.Error(), err)
		}
		if err := chk.check(e); err != nil {
			return nil, chk, corrupt(err.Error(), nil)
		}
		if err := st.apply(e); err != nil {
			return nil, chk, corrupt(err.Error(), err)
		}
		chk.accept(e)
		off += int64(nl + 1)
	}
	if chk.lastSeq == 0 {
		if name != "" {
			return nil, chk, fmt.Errorf("journal %s: %w", name, ErrEmpty)
		}
		return nil, chk, ErrEmpty
	}
	st.size = off
	return st, chk, nil
}

// checker holds the rules every journal keeps, for Replay and for Journal.Emit,
// so that what is written can always be read back.
type checker struct {
	runID   string
	lastSeq int64
	ended   bool
}

func (c *checker) check(e event.Event) error {
	switch {
	case c.lastSeq == 0 && e.Seq != 1:
		return fmt.Errorf("the first event has seq %d; a journal begins at seq 1", e.Seq)
	case e.Seq <= c.lastSeq:
		return fmt.Errorf("seq %d does not follow seq %d: the sequence goes back", e.Seq, c.lastSeq)
	case e.Seq == c.lastSeq+2:
		return fmt.Errorf("seq %d follows seq %d: event %d is missing", e.Seq, c.lastSeq, c.lastSeq+1)
	case e.Seq > c.lastSeq+2:
		return fmt.Errorf("seq %d follows seq %d: events %d to %d are missing", e.Seq, c.lastSeq, c.lastSeq+1, e.Seq-1)
	case e.Kind == "":
		return fmt.Errorf("event %d has no kind", e.Seq)
	case e.RunID == "":
		return fmt.Errorf("event %d has no run_id", e.Seq)
	case c.lastSeq == 0 && e.Kind != event.RunStart:
		return fmt.Errorf("the first event is %s; a journal begins with %s", e.Kind, event.RunStart)
	case c.lastSeq > 0 && e.RunID != c.runID:
		return fmt.Errorf("event %d belongs to run %q, not %q", e.Seq, e.RunID, c.runID)
	case c.lastSeq > 0 && e.Kind == event.RunStart:
		return fmt.Errorf("event %d is a second %s", e.Seq, event.RunStart)
	case c.ended && e.Kind != event.RunResume && !event.AfterEnd(e.Kind):
		return fmt.Errorf("event %d (%s) comes after %s; only %s may", e.Seq, e.Kind, event.RunEnd, event.RunResume)
	case e.Host == "" && hostScoped(e):
		return fmt.Errorf("event %d (%s) names no host", e.Seq, e.Kind)
	case e.Batch < 1 && batchScoped(e):
		return fmt.Errorf("event %d (%s) names no batch", e.Seq, e.Kind)
	}
	return nil
}

// hostScoped reports whether e belongs to one host: a replay files it there.
func hostScoped(e event.Event) bool {
	switch e.Kind {
	case event.HostStart, event.HostEnd, event.RollbackStart, event.RollbackEnd,
		event.RollbackStepStart, event.RollbackStepEnd:
		return true
	case event.StepStart, event.StepRetry, event.StepEnd:
		return e.Phase == "" || e.Phase == event.Steps || e.Phase == event.Rollback
	}
	return false
}

// batchScoped reports whether e belongs to one batch.
func batchScoped(e event.Event) bool {
	switch e.Kind {
	case event.BatchStart, event.BatchEnd, event.GateStart, event.GateEnd:
		return true
	case event.StepStart, event.StepRetry, event.StepEnd:
		return e.Phase == event.BetweenBatches
	}
	return false
}

func (c *checker) accept(e event.Event) {
	c.lastSeq = e.Seq
	c.runID = e.RunID
	switch e.Kind {
	case event.RunEnd:
		c.ended = true
	case event.RunResume:
		c.ended = false
	}
}

func (s *State) apply(e event.Event) error {
	s.LastSeq = e.Seq
	s.Events = append(s.Events, e)
	switch e.Kind {
	case event.RunStart:
		s.RunID = e.RunID
		s.Started = e.Time
		if err := event.DecodeData(e.Data, &s.Info); err != nil {
			return fmt.Errorf("run_start: %w", err)
		}
		for _, h := range s.Info.Hosts {
			s.host(h)
		}
		for i, hosts := range s.Info.Batches {
			b := s.batch(i + 1)
			b.Hosts = hosts
			for _, h := range hosts {
				s.host(h).Batch = i + 1
			}
		}
	case event.RunResume:
		var info event.RunInfo
		if err := event.DecodeData(e.Data, &info); err != nil {
			return fmt.Errorf("run_resume: %w", err)
		}
		s.Resumes = append(s.Resumes, Resume{Time: e.Time, Info: info})
		s.Finished, s.Ended, s.Status, s.ExitCode, s.Reason = false, time.Time{}, "", 0, ""
		s.Aborted, s.AbortReason, s.Interrupted = false, "", false
	case event.RunEnd:
		var end event.RunEndInfo
		if err := event.DecodeData(e.Data, &end); err != nil {
			return fmt.Errorf("run_end: %w", err)
		}
		s.Finished, s.Ended, s.Status, s.ExitCode, s.Reason = true, e.Time, e.Status, end.ExitCode, end.Reason
	case event.Abort:
		s.Aborted, s.AbortReason = true, e.Error
	case event.Interrupt:
		s.Interrupted = true

	case event.BatchStart:
		b := s.batch(e.Batch)
		b.Status, b.Started = BatchRunning, e.Time
		if e.Hosts != nil {
			b.Hosts = append(b.Hosts[:0:0], e.Hosts...)
		}
	case event.BatchEnd:
		b := s.batch(e.Batch)
		b.Ended = e.Time
		switch e.Status {
		case event.OK, event.Changed, event.Skipped:
			b.Status = BatchDone
		case event.Aborted:
			b.Status = BatchAborted
		case event.Interrupted:
			b.Status = BatchInterrupted
		default:
			b.Status = BatchFailed
		}
	case event.GateStart:
		s.batch(e.Batch).GateStatus = ""
	case event.GateEnd:
		s.batch(e.Batch).GateStatus = e.Status

	case event.HostStart:
		h := s.host(e.Host)
		h.Status = HostRunning
		if e.Batch > 0 {
			h.Batch = e.Batch
		}
		if h.Started.IsZero() {
			h.Started = e.Time
		}
	case event.HostEnd:
		h := s.host(e.Host)
		h.Ended = e.Time
		h.Status = hostStatus(e.Status)
		switch {
		case h.Status == HostDone:
			h.Error = "" // a failure it ignored (ignore_errors) is not the host's
		case e.Error != "":
			h.Error = e.Error
		}
	case event.RollbackStart:
		s.host(e.Host).RollingBack = true
	case event.RollbackEnd:
		h := s.host(e.Host)
		h.RollingBack = false
		switch {
		case aheadUndone(h, e):
			// What a host did ahead of its batch was undone: it is as if
			// it had never started, and a resume runs it in its turn.
			h.Status = HostPending
		case e.Status == event.RolledBack || e.Status == event.OK:
			h.Status = HostRolledBack
		default:
			h.Status = HostRollbackFailed
		}

	case event.StepStart, event.StepRetry, event.StepEnd,
		event.RollbackStepStart, event.RollbackStepEnd:
		steps := s.steps(e)
		switch e.Kind {
		case event.StepStart, event.RollbackStepStart:
			steps.start(e)
		case event.StepRetry:
			steps.retry(e)
		default:
			steps.end(e)
			if e.Kind == event.StepEnd && e.Status == event.Failed && hostScoped(e) && e.Phase != event.Rollback {
				s.host(e.Host).Error = e.Error
			}
		}
	}
	// Other kinds, from a newer runbook, are kept in Events and otherwise ignored.
	s.progress(e)
	return nil
}

func hostStatus(st event.Status) HostStatus {
	switch st {
	case event.OK, event.Changed, event.Skipped:
		return HostDone
	case event.Unreachable:
		return HostUnreachable
	case event.RolledBack:
		return HostRolledBack
	case event.RollbackFailed:
		return HostRollbackFailed
	case event.Interrupted, event.Aborted:
		return HostInterrupted
	}
	return HostFailed
}

func (s *State) host(name string) *HostState {
	h := s.Hosts[name]
	if h == nil {
		h = &HostState{Name: name, Status: HostPending}
		s.Hosts[name] = h
		s.hostOrder = append(s.hostOrder, name)
	}
	return h
}

// batch returns batch i (1-based), adding pending batches up to it.
func (s *State) batch(i int) *BatchState {
	if i < 1 {
		i = 1
	}
	for len(s.Batches) < i {
		s.Batches = append(s.Batches, &BatchState{Index: len(s.Batches) + 1, Status: BatchPending})
	}
	return s.Batches[i-1]
}

// steps picks the sequence a step event belongs to, by its phase.
func (s *State) steps(e event.Event) *Steps {
	if e.Kind == event.RollbackStepStart || e.Kind == event.RollbackStepEnd || e.Phase == event.Rollback {
		return &s.host(e.Host).Rollback
	}
	switch e.Phase {
	case event.Preflight:
		return &s.Preflight
	case event.Post:
		return &s.Post
	case event.BetweenBatches:
		return &s.batch(e.Batch).Gates
	}
	return &s.host(e.Host).Steps
}

func (s *Steps) start(e event.Event) {
	s.InFlight = &StepRecord{
		Phase: phaseOf(e), Index: e.StepIndex, Name: e.Step, Host: e.Host, Undo: e.Undo,
		NoLog: e.NoLog, Attempts: max(e.Attempt, 1), Started: e.Time, Ahead: e.Ahead,
	}
}

func (s *Steps) retry(e event.Event) {
	if f := s.InFlight; f != nil && f.Index == e.StepIndex && f.Undo == e.Undo {
		f.Attempts = max(e.Attempt, f.Attempts)
		f.Error = e.Error
	}
}

func (s *Steps) end(e event.Event) {
	var r StepRecord
	if f := s.InFlight; f != nil && f.Index == e.StepIndex && f.Undo == e.Undo {
		r = *f
		s.InFlight = nil
	} else {
		// An end without its start (a skipped step may have none): the event
		// alone says what happened.
		r = StepRecord{Phase: phaseOf(e), Index: e.StepIndex, Name: e.Step, Host: e.Host, Undo: e.Undo, NoLog: e.NoLog, Attempts: 1}
	}
	r.Name = e.Step
	r.Status, r.Changed, r.Error, r.Result, r.Ended = e.Status, e.Changed, e.Error, e.Result, e.Time
	r.Ignored, r.RanOn = e.Ignored, e.RanOn
	r.Ahead = r.Ahead || e.Ahead
	if e.Attempt > 0 {
		r.Attempts = e.Attempt
	}
	r.Duration = e.Duration
	if r.Duration == 0 && !r.Started.IsZero() {
		r.Duration = e.Time.Sub(r.Started)
	}
	s.Done = append(s.Done, r)
}

func phaseOf(e event.Event) event.Phase {
	switch {
	case e.Phase != "":
		return e.Phase
	case e.Kind == event.RollbackStepStart || e.Kind == event.RollbackStepEnd:
		return event.Rollback
	}
	return event.Steps
}
