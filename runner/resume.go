package runner

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
)

// A resume is the runner started from the journal's State: each host goes on
// from its journal.Progress (the steps that completed are taken as they
// ended, the one whose outcome is unknown runs again, a rollback under way
// goes on), finished hosts and batches are not run again.

// ResumePlan is the plan that resumes the run st describes: p, with its hosts
// in the order the run's first part decided when its order key read facts,
// once it is checked to be the plan that run was made of (see CheckResume)
// with the same -e values: their digest, made with key, the run's own.
func ResumePlan(st *journal.State, p *plan.Plan, key []byte) (*plan.Plan, error) {
	if p.OrderAtStart {
		ordered, err := p.Reorder(st.Info.Hosts)
		if err != nil {
			return nil, fmt.Errorf("refusing to resume run %s: %w", st.RunID, err)
		}
		p = ordered
	}
	if err := CheckResume(st, p); err != nil {
		return nil, err
	}
	if d := st.Info.VarsDigest; d != "" && !plan.VarsDigestMatches(key, p.ExtraVars, d) {
		return nil, fmt.Errorf("refusing to resume run %s: the -e variables changed since the run started; resume needs the same inputs (give the same -e again), or start a new run", st.RunID)
	}
	return p, nil
}

// CheckResume refuses to resume the run st describes with plan p when p is
// not the plan that run was made of: the runbook or the inventory changed
// (their digests), or the hosts or batches differ (--limit, serial, order).
// Run checks it again; `runbook resume` checks it (ResumePlan) before it
// asks anything.
func CheckResume(st *journal.State, p *plan.Plan) error {
	for _, c := range []struct{ what, was, is string }{
		{"runbook " + st.Info.Runbook, st.Info.RunbookDigest, p.RunbookDigest},
		{"inventory " + st.Info.Inventory, st.Info.InventoryDigest, p.InventoryDigest},
	} {
		if c.was != "" && c.was != c.is {
			return fmt.Errorf("refusing to resume run %s: %s changed since the run started; resume needs the same inputs (give the same -e again), or start a new run", st.RunID, c.what)
		}
	}
	if !slices.Equal(st.Info.Hosts, p.HostNames) {
		return fmt.Errorf("cannot resume run %s: its hosts %v differ from the plan's %v; the inventory or --limit changed", st.RunID, st.Info.Hosts, p.HostNames)
	}
	if !slices.EqualFunc(st.Info.Batches, p.Batches, slices.Equal[[]string]) {
		return fmt.Errorf("cannot resume run %s: its batches %v differ from the plan's %v; serial or order changed", st.RunID, st.Info.Batches, p.Batches)
	}
	return nil
}

// finished reports whether host name ended before the resume: it is not
// touched again.
func (r *runner) finished(name string) bool {
	if r.resumed == nil {
		return false
	}
	hs := r.resumed.Hosts[name]
	return hs != nil && hs.Finished()
}

// progress is where host name stands in the run being resumed, nil on a
// fresh run.
func (r *runner) progress(name string) *journal.Progress {
	if r.resumed == nil {
		return nil
	}
	if hs := r.resumed.Hosts[name]; hs != nil {
		return &hs.Progress
	}
	return nil
}

// batchDone says whether batch bn's hosts all ended and the batch was closed,
// and whether its gates passed: a finished batch is not run again, nor are
// gates that passed.
func (r *runner) batchDone(bn int) (hosts, gates bool) {
	st := r.resumed
	if st == nil || bn > len(st.Batches) {
		return false, false
	}
	b := st.Batches[bn-1]
	hosts = b.Status == journal.BatchDone || b.Status == journal.BatchFailed
	for _, n := range b.Hosts {
		if !r.finished(n) {
			hosts = false
		}
	}
	switch b.GateStatus {
	case event.OK, event.Changed, event.Skipped:
		gates = true
	}
	return hosts, gates
}

// rollbackDone are the steps of phase's rollback (steps for a block's own,
// rollback for the runbook's) that completed before the resume, by index.
func (h *hostRun) rollbackDone(phase event.Phase) map[int]journal.StepRecord {
	if h.progress == nil {
		return nil
	}
	rb := h.progress.Rollback()
	if rb == nil {
		return nil
	}
	out := map[int]journal.StepRecord{}
	for k, rec := range rb.Done {
		if k.Phase == phase && !k.Undo {
			out[k.Index] = rec
		}
	}
	return out
}

// undoneBefore reports whether the automatic undo of step idx completed before
// the resume.
func (h *hostRun) undoneBefore(idx int) bool {
	if h.progress == nil {
		return false
	}
	rb := h.progress.Rollback()
	if rb == nil {
		return false
	}
	_, ok := rb.Done[journal.RollbackKey{Phase: event.Rollback, Index: idx, Undo: true}]
	return ok
}

// resumedFailure is the failure that began the rollback a resume goes on
// with, as the journal recorded it; nil when there is none.
func (h *hostRun) resumedFailure() *failure {
	if h.progress == nil {
		return nil
	}
	rb := h.progress.Rollback()
	if rb == nil {
		return nil
	}
	f := &failure{kind: failStep, name: rb.FailedStep, index: rb.FailedIndex, err: errors.New(rb.Error)}
	switch rb.Reason {
	case "interrupted":
		f.kind = failStopped
	case "abort":
		f.kind = failAbort
	}
	if idx := rb.FailedIndex; idx >= 0 && idx < len(h.r.index.byIndex) {
		f.step = h.r.index.byIndex[idx]
	}
	if f.kind == failStep && f.step != nil {
		f.result = resultMap(rb.Result, false, true, rb.Error)
	}
	return f
}

// restoreFinished takes the hosts that ended before the resume into the
// outcome: their status, the failures max_fail counts, and the hosts that
// finished ok, in the order they did, for on_abort: rollback_completed.
func (r *runner) restoreFinished() {
	var done []*journal.HostState
	for _, names := range r.p.Batches {
		for _, name := range names {
			hs := r.resumed.Hosts[name]
			if hs == nil || !hs.Finished() {
				continue
			}
			out := r.out.Hosts[name]
			switch hs.Status {
			case journal.HostDone:
				out.Status = StatusOK
				done = append(done, hs)
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
			out.State = fmt.Sprintf("ended %s before the resume", hs.Status)
			if hs.Error != "" {
				out.State += ": " + hs.Error
			}
			if hs.Progress.Open {
				// The run stopped between the end of the host's rollback and
				// its host_end: close the host's story.
				r.emit(event.Event{Kind: event.HostEnd, Batch: out.Batch, Host: name, Status: hostEventStatus(out.Status),
					Error: hs.Error, Engine: event.Engine{State: new(out.State)}})
			}
			for _, rec := range hs.Progress.Completed {
				if rec.Status != event.Failed { // a finished host's counts leave out the failures it ignored
					out.count(rec.Status, rec.Changed)
				}
			}
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].Progress.EndSeq < done[j].Progress.EndSeq })
	for _, hs := range done {
		ph := r.planHost(hs.Name)
		if ph == nil {
			continue
		}
		h := r.newHostRun(ph, r.out.Hosts[hs.Name].Batch, nil)
		h.out = &HostOutcome{} // counted above already
		h.replayCompleted()
		h.out = r.out.Hosts[hs.Name]
		h.ran = true
		r.completed = append(r.completed, h)
	}
}

// replayCompleted takes back every step the journal says completed, in order,
// as runList takes them when it meets them.
func (h *hostRun) replayCompleted() {
	m := &seqMode{phase: event.Steps, done: h.progress.Completed}
	for idx, s := range h.r.index.byIndex {
		if s == nil {
			continue
		}
		if rec, ok := m.done[idx]; ok {
			h.replay(s, idx, h.inheritedOf(s), rec, m)
		}
	}
}

// replay takes back a step that completed before the resume: its journaled
// outcome is recorded as a run's would be (registered, counted, kept for the
// undo), and it does not run again.
func (h *hostRun) replay(s *plan.CompiledStep, idx int, inh inherited, rec journal.StepRecord, m *seqMode) {
	if inh.noLog {
		h.relearn(s)
	}
	if inh.runOnce && h.once != nil && !m.rollback {
		h.once.pass(h.host.Name, idx)
	}
	data := rec.Result
	if s.Loop != nil {
		data = h.restoredLoop(data)
	}
	failed := rec.Status == event.Failed
	o := stepOutcome{name: rec.Name, status: rec.Status, changed: rec.Changed, ignored: failed, replayed: true,
		result: resultMap(data, rec.Changed, failed, rec.Error), ranOn: rec.RanOn}
	o.modRes.Changed, o.modRes.Data = rec.Changed, rec.Result
	if s.Loop != nil {
		o.items, o.lost = h.journaledItems(rec.Result)
	}
	h.record(s, idx, inh, o, m)
}
