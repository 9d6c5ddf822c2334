package runner

import (
	"fmt"
	"slices"
	"sort"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
)

// doneRecord is a step as the journal recorded its end.
type doneRecord struct {
	index   int
	name    string
	status  event.Status
	changed bool
	err     string
	result  map[string]any
	ranOn   string
}

// rbKey names a rollback step in the journal: its phase (steps for a block's
// own rollback, rollback for the runbook's), its index, and whether it is an
// automatic undo (then index is the undone step's).
type rbKey struct {
	phase event.Phase
	index int
	undo  bool
}

// hostResume is what the journal says about one host.
type hostResume struct {
	name     string
	status   journal.HostStatus
	finished bool                 // ended one way or another: not touched again
	steps    map[int]doneRecord   // steps that completed, by index
	inFlight *doneRecord          // started, never ended: run again
	rollback *rollbackResume      // a rollback that began and did not end
	rbDone   map[rbKey]doneRecord // rollback steps of that rollback that completed
	restart  bool                 // rolled back after an interrupt: its steps run again from the first
	failedAt *doneRecord          // a step failed and its rollback had not begun
	endSeq   int64
	open     bool // a host_start without its host_end
	errText  string
	// procs are the commands the host's last step started, while no end
	// of that step shows they ended: a resume checks them first.
	procs []procRecord
}

type rollbackResume struct {
	reason      string
	kind        failKind
	failedName  string
	failedIndex int
	err         string
	result      map[string]any // of the failed step, when the journal has it
}

// resumeState is the journal of the run being resumed, read for the runner.
type resumeState struct {
	st    *journal.State
	hosts map[string]*hostResume
	post  map[int]doneRecord
}

func newResume(r *runner, st *journal.State) (*resumeState, error) {
	if !slices.Equal(st.Info.Hosts, r.p.HostNames) {
		return nil, fmt.Errorf("cannot resume run %s: its hosts %v differ from the plan's %v; the inventory or --limit changed", st.RunID, st.Info.Hosts, r.p.HostNames)
	}
	if !slices.EqualFunc(st.Info.Batches, r.p.Batches, slices.Equal[[]string]) {
		return nil, fmt.Errorf("cannot resume run %s: its batches %v differ from the plan's %v; serial or order changed", st.RunID, st.Info.Batches, r.p.Batches)
	}
	res := &resumeState{st: st, hosts: map[string]*hostResume{}, post: map[int]doneRecord{}}
	for _, n := range r.p.HostNames {
		res.host(n)
	}
	for _, e := range st.Events {
		res.apply(e)
	}
	for name, hr := range res.hosts {
		hs := st.Hosts[name]
		if hs == nil {
			continue
		}
		hr.status = hs.Status
		hr.errText = hs.Error
		if f := hr.failedAt; f != nil && hr.rollback == nil {
			// The failure was decided before the run stopped: its rollback goes
			// on, rather than the failed step running again.
			hr.rollback = &rollbackResume{reason: "failed", kind: failStep, failedName: f.name, failedIndex: f.index, err: f.err, result: f.result}
		}
		switch hs.Status {
		case journal.HostDone:
			// A done host in the middle of a rollback was being rolled back
			// because the run aborted; the abort path finishes it.
			hr.finished = true
		case journal.HostFailed, journal.HostRolledBack, journal.HostRollbackFailed:
			hr.finished = hr.rollback == nil
		}
	}
	return res, nil
}

func (res *resumeState) host(name string) *hostResume {
	hr := res.hosts[name]
	if hr == nil {
		hr = &hostResume{name: name, steps: map[int]doneRecord{}, rbDone: map[rbKey]doneRecord{}}
		res.hosts[name] = hr
	}
	return hr
}

func (res *resumeState) finished(name string) bool {
	hr := res.hosts[name]
	return hr != nil && hr.finished
}

// batchDone says whether batch bn's hosts all ended and the batch was closed,
// and whether its gates passed: a finished batch is not run again, nor are
// gates that passed.
func (res *resumeState) batchDone(bn int) (hosts, gates bool) {
	if bn > len(res.st.Batches) {
		return false, false
	}
	b := res.st.Batches[bn-1]
	hosts = b.Status == journal.BatchDone || b.Status == journal.BatchFailed
	for _, n := range b.Hosts {
		if !res.finished(n) {
			hosts = false
		}
	}
	switch b.GateStatus {
	case event.OK, event.Changed, event.Skipped:
		gates = true
	}
	return hosts, gates
}

func completedEvent(e event.Event) bool {
	switch e.Status {
	case event.OK, event.Changed, event.Skipped:
		return true
	case event.Failed:
		return e.Ignored
	}
	return false
}

func recordOf(e event.Event) doneRecord {
	rec := doneRecord{index: e.StepIndex, name: e.Step, status: e.Status, changed: e.Changed, err: e.Error, result: e.Result}
	rec.ranOn = e.RanOn
	return rec
}

func (res *resumeState) apply(e event.Event) {
	switch e.Kind {
	case event.HostStart:
		hr := res.host(e.Host)
		hr.restart, hr.open = false, true
	case event.StepStart:
		if e.Phase == event.Steps && e.Host != "" {
			rec := recordOf(e)
			hr := res.host(e.Host)
			hr.inFlight = &rec
			hr.procs = nil
		}
	case event.RollbackStepStart:
		if hr := res.hosts[e.Host]; hr != nil {
			hr.procs = nil
		}
	case event.StepProcess:
		if hr := res.hosts[e.Host]; hr != nil {
			if p, ok := procOf(e); ok {
				hr.procs = append(hr.procs, p)
			}
		}
	case event.StepEnd:
		if hr := res.hosts[e.Host]; hr != nil && e.Phase == event.Steps && endedSurely(e) {
			hr.procs = nil
		}
		switch {
		case e.Phase == event.Steps && e.Host != "":
			hr := res.host(e.Host)
			if hr.inFlight != nil && hr.inFlight.index == e.StepIndex {
				hr.inFlight = nil
			}
			hr.failedAt = nil
			if completedEvent(e) {
				hr.steps[e.StepIndex] = recordOf(e)
			} else {
				delete(hr.steps, e.StepIndex)
				rec := recordOf(e)
				switch e.Status {
				case event.Failed:
					hr.failedAt = &rec
				case event.Interrupted, event.Unreachable:
					// Killed or cut off mid-way: whether it acted is unknown,
					// as for a step in flight at a crash.
					hr.inFlight = &rec
				}
			}
		case e.Phase == event.Post && completedEvent(e):
			res.post[e.StepIndex] = recordOf(e)
		}
	case event.RollbackStart:
		hr := res.host(e.Host)
		failed := hr.failedAt
		hr.failedAt = nil
		if hr.rollback == nil {
			rr := &rollbackResume{failedIndex: -1, err: e.Error}
			rr.reason, rr.failedName = e.Reason, e.FailedStep
			if e.FailedIndex != nil {
				rr.failedIndex = *e.FailedIndex
			}
			switch rr.reason {
			case "interrupted":
				rr.kind = failStopped
			case "abort":
				rr.kind = failAbort
			default:
				rr.kind = failStep
			}
			if failed != nil && failed.index == rr.failedIndex {
				rr.result = failed.result
			}
			hr.rollback = rr
		}
	case event.RollbackStepEnd:
		hr := res.host(e.Host)
		if endedSurely(e) {
			hr.procs = nil
		}
		if hr.rollback != nil && (e.Status == event.OK || e.Status == event.Changed || e.Status == event.Skipped) {
			hr.rbDone[rbKey{phaseOfEvent(e), e.StepIndex, e.Undo}] = recordOf(e)
		}
	case event.RollbackEnd:
		hr := res.host(e.Host)
		if hr.rollback != nil && hr.rollback.kind == failStopped && e.Status == event.RolledBack {
			// Undone after an interrupt: the host starts over.
			hr.steps = map[int]doneRecord{}
			hr.restart = true
		}
		hr.rollback = nil
		hr.rbDone = map[rbKey]doneRecord{}
	case event.HostEnd:
		hr := res.host(e.Host)
		hr.endSeq = e.Seq
		hr.open = false
		hr.failedAt = nil
	}
}

// endedSurely reports whether a step's end shows that its commands ended: it
// was not stopped (its commands killed, perhaps not all) nor cut off from
// its host (its commands may run on).
func endedSurely(e event.Event) bool {
	return e.Status != event.Interrupted && e.Status != event.Unreachable
}

func phaseOfEvent(e event.Event) event.Phase {
	if e.Phase != "" {
		return e.Phase
	}
	return event.Rollback
}

func (hr *hostResume) rbLookup(phase event.Phase) func(int) (doneRecord, bool) {
	return func(idx int) (doneRecord, bool) {
		rec, ok := hr.rbDone[rbKey{phase, idx, false}]
		return rec, ok
	}
}

// restoreFinished takes the hosts that ended before the resume into the
// outcome: their status, the failures max_fail counts, and the hosts that
// finished ok, in the order they did, for on_abort: rollback_completed.
func (r *runner) restoreFinished() {
	var done []*hostResume
	for _, names := range r.p.Batches {
		for _, name := range names {
			hr := r.res.hosts[name]
			if hr == nil || !hr.finished {
				continue
			}
			out := r.out.Hosts[name]
			switch hr.status {
			case journal.HostDone:
				out.Status = StatusOK
				done = append(done, hr)
			case journal.HostFailed:
				out.Status = StatusFailed
			case journal.HostRolledBack:
				out.Status = StatusRolledBack
			case journal.HostRollbackFailed:
				out.Status = StatusRollbackFailed
				r.out.RollbackFailed = true
			}
			if out.Status != StatusOK {
				r.failedHosts++
			}
			out.State = fmt.Sprintf("ended %s before the resume", hr.status)
			if hr.errText != "" {
				out.State += ": " + hr.errText
			}
			if hr.open {
				// The run stopped between the end of the host's rollback and
				// its host_end: close the host's story.
				r.emit(event.Event{Kind: event.HostEnd, Batch: out.Batch, Host: name, Status: hostEventStatus(out.Status),
					Error: hr.errText, Data: map[string]any{"state": out.State}})
			}
			for _, rec := range hr.steps {
				switch rec.status {
				case event.OK, event.Changed:
					out.Ok++
					if rec.changed {
						out.Changed++
					}
				case event.Skipped:
					out.Skipped++
				}
			}
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].endSeq < done[j].endSeq })
	for _, hr := range done {
		ph := r.planHost(hr.name)
		if ph == nil {
			continue
		}
		h := r.newHostRun(ph, r.out.Hosts[hr.name].Batch, nil)
		h.out = &HostOutcome{} // counted above already
		h.restoreAll()
		h.out = r.out.Hosts[hr.name]
		h.ran = true
		r.completed = append(r.completed, h)
	}
}
