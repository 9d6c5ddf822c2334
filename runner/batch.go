package runner

import (
	"context"
	"fmt"
	"sync"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
)

// batches runs the plan's batches in order, each followed by its gates, until
// the last one, an abort or a halt.
func (r *runner) batches(ctx context.Context) {
	r.ahead.settle(ctx)
	defer r.ahead.finish(ctx)
	for i, names := range r.p.Batches {
		bn := i + 1
		if k := r.halted(ctx); k != notHalted {
			r.noteHalt(k)
			r.notStarted(r.p.Batches[i:], "not started: the run was interrupted")
			return
		}
		hostsDone, gatesDone := false, false
		if r.resumed != nil {
			hostsDone, gatesDone = r.batchDone(bn)
		}
		if !hostsDone && !r.windowOpen(ctx, &bn) {
			r.notStarted(r.p.Batches[i:], "not started: "+r.out.Stopped)
			return
		}
		if !hostsDone {
			r.runBatch(ctx, bn, names)
		}
		if ctx.Err() != nil {
			r.noteHalt(haltStop)
			r.notStarted(r.p.Batches[i+1:], "not started: the run was stopped")
			return
		}
		if n := r.failed(); n > r.p.MaxFail {
			r.mu.Lock()
			held := r.heldHosts
			r.out.HeldAbort = n-held <= r.p.MaxFail
			r.mu.Unlock()
			reason := fmt.Sprintf("%d failed %s max_fail %d", n, plural(n, "host exceeds", "hosts exceed"), r.p.MaxFail)
			if held > 0 {
				reason += fmt.Sprintf(" (%d held: not proven good, no one to ask)", held)
			}
			r.abort(ctx, reason, r.p.Batches[i+1:])
			return
		}
		if k := r.halted(ctx); k != notHalted {
			r.noteHalt(k)
			r.notStarted(r.p.Batches[i+1:], "not started: the run was interrupted")
			return
		}
		if len(r.p.Phase(plan.PhaseBetweenBatches).Compiled) > 0 && !gatesDone {
			if f := r.gates(ctx, bn); f != nil {
				if f.kind == failInterrupted || f.kind == failStopped {
					r.notStarted(r.p.Batches[i+1:], "not started: the run was interrupted")
					return
				}
				r.abort(ctx, fmt.Sprintf("between_batches gate %q failed after batch %d: %s", f.name, bn, f.errText()), r.p.Batches[i+1:])
				return
			}
		}
	}
}

func (r *runner) failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failedHosts
}

func (r *runner) notStarted(batches [][]string, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range batches {
		for _, n := range b {
			if h := r.out.Hosts[n]; h != nil && h.Status == StatusSkipped {
				h.State = why
			}
		}
	}
}

// runBatch runs the hosts of batch bn, up to Forks at a time, in batch order.
// Once failures exceed max_fail, or the run halts, no new host starts.
func (r *runner) runBatch(ctx context.Context, bn int, names []string) {
	r.ahead.join(bn)
	r.ahead.arm(ctx, bn, names)
	defer r.ahead.disarm(bn)
	r.emit(event.Event{Kind: event.BatchStart, Batch: bn, Engine: event.Engine{Hosts: names, Resumed: event.Resumed{Yes: r.resumed != nil}}})
	once := newBatchOnce(ctx, r.stop, names, func() haltKind { return r.halted(ctx) })
	defer once.close()
	forks := make(chan struct{}, r.opts.Forks)
	var wg sync.WaitGroup
	for _, name := range names {
		if r.finished(name) {
			once.end(name)
			continue
		}
		ph := r.planHost(name)
		if ph == nil {
			once.end(name)
			continue
		}
		acquired := false
		select {
		case forks <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		case <-r.stop:
		}
		why := ""
		if k := r.halted(ctx); !acquired || k != notHalted {
			r.noteHalt(max(k, haltDrain))
			why = "not started: the run was interrupted"
		} else if n := r.failed(); n > r.p.MaxFail {
			why = fmt.Sprintf("not started: %d failed %s max_fail %d", n, plural(n, "host exceeds", "hosts exceed"), r.p.MaxFail)
		}
		if why != "" {
			if acquired {
				<-forks
			}
			r.mu.Lock()
			r.out.Hosts[name].State = why
			r.mu.Unlock()
			once.end(name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-forks }()
			r.runHost(ctx, bn, ph, once)
		}()
	}
	wg.Wait()

	status := event.OK
	r.mu.Lock()
	for _, n := range names {
		switch r.out.Hosts[n].Status {
		case StatusFailed, StatusRolledBack, StatusRollbackFailed, StatusUnreachable:
			if status != event.Interrupted {
				status = event.Failed
			}
		case StatusInterrupted:
			status = event.Interrupted
		case StatusSkipped:
			if status == event.OK {
				status = event.Aborted
			}
		}
	}
	r.mu.Unlock()
	if status == event.Aborted && ctx.Err() == nil && r.halted(ctx) != notHalted {
		status = event.Interrupted
	}
	r.emit(event.Event{Kind: event.BatchEnd, Batch: bn, Status: status})
}

// gates runs the between_batches steps after batch bn, on the controller.
func (r *runner) gates(ctx context.Context, bn int) *failure {
	r.emit(event.Event{Kind: event.GateStart, Batch: bn})
	c := r.newControllerRun(event.BetweenBatches, bn)
	f := c.runList(ctx, r.p.Phase(plan.PhaseBetweenBatches).Compiled, inherited{}, c.mainMode())
	r.takeShared(c)
	ev := event.Event{Kind: event.GateEnd, Batch: bn, Status: event.OK}
	if f != nil {
		ev.Status, ev.Step, ev.Error = event.Failed, f.name, f.errText()
		switch f.kind {
		case failInterrupted:
			ev.Status = event.Interrupted
			r.noteHalt(haltStop)
		case failStopped:
			ev.Status = event.Interrupted
			r.noteHalt(haltDrain)
		}
	}
	r.emit(ev)
	return f
}

// abort stops the run from starting new batches and, with on_abort:
// rollback_completed, rolls back the hosts that finished.
func (r *runner) abort(ctx context.Context, reason string, rest [][]string) {
	r.mu.Lock()
	r.out.Aborted, r.out.AbortReason = true, reason
	r.mu.Unlock()
	r.log.Error().Str("reason", reason).Msg("run aborted: no new batch starts")
	r.emit(event.Event{Kind: event.Abort, Status: event.Aborted, Error: reason,
		Engine: event.Engine{OnAbort: r.p.OnAbort}})
	r.notStarted(rest, "not started: the run aborted ("+reason+")")
	r.abortRollback(ctx)
}
