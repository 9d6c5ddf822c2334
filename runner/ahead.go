package runner

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
)

// Steps marked ahead: true (the first steps of steps:, see spec) prepare a
// host without touching what it serves. The hosts of batch N+1 run them
// while batch N is at its last step: once every host of batch N has begun
// the last top-level step of steps: (in a rolling upgrade, its soak), or
// ended ok. With ahead: { from: STEP }, the step named counts instead of
// the last, for a runbook whose last steps may be skipped or are not the
// soak: a host that begins any later step, or skips the one named, has
// begun it as well. Not earlier: until then batch N may still fail and stop the
// run, and its hosts may be down, when extra work elsewhere is least
// welcome. When a host of batch N fails first, or the run halts, batch N+1
// runs its ahead steps in its own turn, as if they were not marked.
//
// A host's ahead steps run on the hostRun its batch then goes on with, so
// what they registered, their counts and their automatic undo are the
// host's. If the batch does not start after all (the run aborted, was
// interrupted, or reached a closed window), what they completed is undone
// by the modules' own undo, never by the runbook's rollback steps, which
// are for a host whose steps ran, and journaled as a rollback with reason
// "ahead"; undone, the host is as if it never started, and a resume runs
// it in its turn. A stop (the second Ctrl-C) leaves it as it is: the
// journal has its steps, and a resume takes them as done.
//
// Ahead steps never run beside another step on their own host: the host's
// own steps wait for them (its batch starts after they ended), and a step
// another host delegates to it waits while they run, as they wait for it.

// aheadRun coordinates the ahead steps of a run; nil when the runbook has none.
type aheadRun struct {
	r     *runner
	steps []*plan.CompiledStep // the ahead steps
	rest  []*plan.CompiledStep // the steps after them
	// trigger is the first step index that counts as the last step of
	// steps: (the first leaf of its last top-level step, or of the step
	// ahead: from: names).
	trigger int

	mu    sync.Mutex
	watch *aheadWatch           // the batch whose hosts are watched
	hosts map[string]*aheadHost // hosts whose ahead steps ran in this run
	begun map[string]bool       // hosts whose batch took them
	ran   map[int]chan struct{} // closed once the ahead steps of batch N ended
	wg    sync.WaitGroup

	gate hostGate
}

// aheadWatch follows batch bn toward its last step.
type aheadWatch struct {
	ctx     context.Context
	batch   int
	waiting map[string]bool // hosts not yet at the last step
	fired   bool
	off     bool // a host failed first, or the batch ended before: no overlap
	stopNew bool // a host of the batch failed: no new host starts its ahead steps
}

// aheadHost is a host of the next batch whose ahead steps ran.
type aheadHost struct {
	h   *hostRun
	f   *failure        // why its ahead steps stopped, nil when they all completed
	own map[string]bool // names they registered, over what the run shares
}

func newAhead(r *runner) *aheadRun {
	all := r.p.Phase(plan.PhaseSteps).Compiled
	n := 0
	for n < len(all) && all[n].Ahead {
		n++
	}
	if n == 0 {
		return nil
	}
	a := &aheadRun{r: r, steps: all[:n], rest: all[n:], trigger: math.MaxInt,
		hosts: map[string]*aheadHost{}, begun: map[string]bool{}, ran: map[int]chan struct{}{}}
	a.gate.init()
	if from := a.steps[0].AheadFrom; from != "" {
		// The step the runbook names (the loader made sure it is one of
		// rest, and that every ahead step names the same).
		for _, s := range a.rest {
			if s.Name == from && s.Handler == nil {
				a.trigger = a.firstLeaf(s)
				return a
			}
		}
	}
	// The last step the runbook wrote: handlers, which come after it, run
	// only when notified, and are no step to overlap.
	for i := len(a.rest) - 1; i >= 0; i-- {
		last := a.rest[i]
		if last.Handler != nil {
			continue
		}
		a.trigger = a.firstLeaf(last)
		break
	}
	return a
}

// firstLeaf is the index of s, or of a block's first step: a host that
// begins it has begun s.
func (a *aheadRun) firstLeaf(s *plan.CompiledStep) int {
	if s.IsBlock() {
		return a.r.index.blockRange[s][0]
	}
	return a.r.index.steps[s].index
}

// arm starts watching batch bn, whose hosts are about to run: when they
// reach their last step, the next batch's ahead steps start.
func (a *aheadRun) arm(ctx context.Context, bn int, names []string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.watch = nil
	if bn >= len(a.r.p.Batches) {
		return
	}
	w := &aheadWatch{ctx: ctx, batch: bn, waiting: map[string]bool{}}
	for _, n := range names {
		switch {
		case !a.r.finished(n):
			w.waiting[n] = true
		case a.r.outcomeOf(n) != StatusOK:
			w.off = true
		}
	}
	a.watch = w
	a.fireLocked()
}

// reach is called before each step of a host's steps: a host of the watched
// batch at its last step lets the next batch's ahead steps start.
func (a *aheadRun) reach(h *hostRun, idx int, m *seqMode) {
	if a == nil || !h.isHost || m.rollback || h.ahead || idx < a.trigger {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.watch; w != nil && w.batch == h.batch {
		delete(w.waiting, h.host.Name)
		a.fireLocked()
	}
}

// ended is called when a host of a batch ends: ok, it is as good as at its
// last step; failed, the next batch's ahead steps wait for its turn.
func (a *aheadRun) ended(h *hostRun, f *failure) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.watch
	if w == nil || w.batch != h.batch {
		return
	}
	if f != nil {
		w.off, w.stopNew = true, true
		return
	}
	delete(w.waiting, h.host.Name)
	a.fireLocked()
}

// disarm is called when batch bn's hosts have all ended (or never started):
// the next batch's ahead steps start now only in its own turn.
func (a *aheadRun) disarm(bn int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.watch; w != nil && w.batch == bn {
		w.off = true
	}
}

func (a *aheadRun) fireLocked() {
	w := a.watch
	if w == nil || w.fired || w.off || len(w.waiting) > 0 || a.r.halted(w.ctx) != notHalted {
		return
	}
	w.fired = true
	next := w.batch + 1
	done := make(chan struct{})
	a.ran[next] = done
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(done)
		a.runBatch(w.ctx, w, next)
	}()
}

// runBatch runs the ahead steps on the hosts of batch bn, up to Forks at a
// time, while the batch before it is at its last step.
func (a *aheadRun) runBatch(ctx context.Context, w *aheadWatch, bn int) {
	r := a.r
	r.log.Debug().Int("batch", bn).Msg("ahead steps start on the next batch")
	forks := make(chan struct{}, r.opts.Forks)
	var wg sync.WaitGroup
	for _, name := range r.p.Batches[bn-1] {
		ph := r.planHost(name)
		if ph == nil || r.finished(name) {
			continue
		}
		forks <- struct{}{}
		a.mu.Lock()
		stop := w.stopNew
		a.mu.Unlock()
		if stop || r.halted(ctx) != notHalted {
			<-forks
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-forks }()
			a.runHost(ctx, ph, bn)
		}()
	}
	wg.Wait()
}

// runHost runs the ahead steps of one host of batch bn and keeps the
// hostRun for its batch.
func (a *aheadRun) runHost(ctx context.Context, ph *plan.Host, bn int) {
	h := a.r.newHostRun(ph, bn, nil)
	release, err := a.gate.hold(ctx, ph.Name)
	if err != nil {
		// Stopped while a step delegated to the host still ran: nothing
		// ran ahead, and the host runs its steps in its turn, if any.
		return
	}
	defer release()
	h.ahead = true
	var f *failure
	if h.progress != nil {
		// A command an ahead step of the stopped run left may still run.
		f = h.leftovers(ctx)
	}
	if f == nil {
		m := h.mainMode()
		f = h.runList(ctx, a.steps, inherited{}, m)
		if f == nil && m.failedBefore != nil {
			f = h.resumeRollback(m.failedBefore, inherited{})
		}
	}
	h.ahead = false
	own := map[string]bool{}
	for _, s := range a.steps {
		if s.Register != "" {
			own[s.Register] = true
		}
	}
	a.mu.Lock()
	a.hosts[ph.Name] = &aheadHost{h: h, f: f, own: own}
	a.mu.Unlock()
}

// join waits until the ahead steps of batch bn, if they started, ended.
func (a *aheadRun) join(bn int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	done := a.ran[bn]
	a.mu.Unlock()
	if done != nil {
		<-done
	}
}

// hostFor is the hostRun host ph of batch bn goes on with, the steps left
// for it, and the failure of its ahead steps (then it fails there): the one
// its ahead steps ran on, or a new one.
func (r *runner) hostFor(ph *plan.Host, bn int, once *batchOnce) (h *hostRun, steps []*plan.CompiledStep, ahead bool, f *failure) {
	a := r.ahead
	if a == nil {
		return r.newHostRun(ph, bn, once), r.p.Phase(plan.PhaseSteps).Compiled, false, nil
	}
	a.mu.Lock()
	a.begun[ph.Name] = true
	ah := a.hosts[ph.Name]
	delete(a.hosts, ph.Name)
	a.mu.Unlock()
	if ah == nil {
		return r.newHostRun(ph, bn, once), r.p.Phase(plan.PhaseSteps).Compiled, false, nil
	}
	h = ah.h
	h.once = once
	// What preflight and the gates registered since, under what the host's
	// own steps did.
	r.mu.Lock()
	for k, v := range r.shared {
		if !ah.own[k] {
			h.registered[k] = v
		}
	}
	r.mu.Unlock()
	return h, a.rest, true, ah.f
}

// settle finishes, on a resume, the undo of ahead steps that was under way
// when the run stopped, before any batch runs.
func (a *aheadRun) settle(ctx context.Context) {
	if a == nil || a.r.resumed == nil {
		return
	}
	for _, name := range a.r.p.HostNames {
		hs := a.r.resumed.Hosts[name]
		if hs == nil || hs.Status != journal.HostPending {
			continue
		}
		if rb := hs.Progress.Rollback(); rb != nil && rb.Reason == journal.ReasonAhead {
			a.leave(ctx, a.fromJournal(name), "the undo was under way when the run stopped")
		}
	}
}

// finish waits for ahead steps still running, then undoes what they did on
// the hosts whose batch did not start: the run stopped before it.
func (a *aheadRun) finish(ctx context.Context) {
	if a == nil {
		return
	}
	a.wg.Wait()
	r := a.r
	for _, name := range r.p.HostNames {
		a.mu.Lock()
		ah, begun := a.hosts[name], a.begun[name]
		delete(a.hosts, name)
		a.mu.Unlock()
		switch {
		case ah != nil:
			a.leave(ctx, ah.h, r.outcomeState(name))
		case !begun && r.resumed != nil:
			if hs := r.resumed.Hosts[name]; hs != nil && hs.Status == journal.HostPending &&
				(len(hs.Progress.Completed) > 0 || hs.Progress.Rollback() != nil) {
				a.leave(ctx, a.fromJournal(name), r.outcomeState(name))
			}
		}
	}
}

// fromJournal is host name as the journal of the run being resumed left
// it, before its batch: what its ahead steps completed, taken back.
func (a *aheadRun) fromJournal(name string) *hostRun {
	r := a.r
	ph := r.planHost(name)
	h := r.newHostRun(ph, r.out.Hosts[name].Batch, nil)
	out := *h.out
	h.out = &out // counted by the run that ran them
	h.replayCompleted()
	h.out = r.out.Hosts[name]
	return h
}

// leave deals with a host whose ahead steps ran and whose batch did not
// start: what they completed is undone, unless the operator stopped the
// run (left as it is, for a resume) or nothing can be recorded.
func (a *aheadRun) leave(ctx context.Context, h *hostRun, why string) {
	r := a.r
	var done []string
	for _, d := range h.done {
		if d.changed {
			done = append(done, d.name)
		}
	}
	pending := h.progress != nil && h.progress.Rollback() != nil && h.progress.Rollback().Reason == journal.ReasonAhead
	switch {
	case len(done) == 0 && !pending:
		if len(h.done) > 0 {
			h.note("its ahead steps changed nothing")
		}
	case r.opts.Check:
		h.note("--check: nothing to roll back")
	case ctx.Err() != nil:
		h.note("ran ahead: %s; left as it is (the run was stopped)", quoteList(done))
	case r.journalFailed() != nil:
		h.note("ran ahead: %s; left as it is: the journal failed, so no undo could be recorded", quoteList(done))
	default:
		h.undoAhead(ctx, why)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.rollback.failed {
		h.out.Status = StatusRollbackFailed
		r.out.RollbackFailed = true
	}
	if len(h.notes.list) > 0 {
		h.out.State = strings.TrimPrefix(h.out.State+"; "+strings.Join(h.notes.list, "; "), "; ")
	}
	if h.progress != nil && h.rollback.started && !h.rollback.failed && !h.rollback.interrupted {
		// Undone, the host is as if it never started, for what this run
		// still does with it.
		*h.progress = journal.Progress{}
	}
}

// undoAhead undoes, newest first, the ahead steps h completed, through
// their modules' undo, journaled as a rollback with reason "ahead".
func (h *hostRun) undoAhead(ctx context.Context, why string) {
	h.rollback.started, h.rollback.reason = true, journal.ReasonAhead
	h.r.emit(event.Event{Kind: event.RollbackStart, Batch: h.batch, Host: h.host.Name, Error: why,
		Data:   map[string]any{"why": "its batch did not start, so what it ran ahead is undone"},
		Engine: event.Engine{Reason: journal.ReasonAhead, Ahead: true}})
	h.note("ran ahead, then undone as its batch did not start")
	h.undo(ctx)
	h.endRollback(ctx)
}

// outcomeOf is how host name ended, as far as the run knows.
func (r *runner) outcomeOf(name string) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.out.Hosts[name]; o != nil {
		return o.Status
	}
	return ""
}

func (r *runner) outcomeState(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.out.Hosts[name]; o != nil {
		return o.State
	}
	return ""
}

// enter is called before a step acts on target: a step delegated to a host
// waits while that host runs its ahead steps, and holds them off while it
// runs. It returns the function that ends the hold.
func (a *aheadRun) enter(ctx context.Context, h *hostRun, target *plan.Host) func() {
	if a == nil || h.ahead || target.Name == plan.Controller || (h.isHost && target.Name == h.host.Name) {
		return func() {}
	}
	release, err := a.gate.use(ctx, target.Name)
	if err != nil {
		// Stopped: the step fails on ctx as it would have anyway.
		return func() {}
	}
	return release
}

// hostGate keeps the ahead steps of a host apart from the steps other
// hosts delegate to it. Both sides are steps, which end; a stopped run
// (ctx) ends a wait too.
type hostGate struct {
	mu    sync.Mutex
	cond  *sync.Cond
	held  map[string]bool // a host running its ahead steps
	users map[string]int  // steps delegated to a host, running
}

func (g *hostGate) init() {
	g.cond = sync.NewCond(&g.mu)
	g.held, g.users = map[string]bool{}, map[string]int{}
}

// wait waits, with g.mu held, until busy is false or ctx is done.
func (g *hostGate) wait(ctx context.Context, busy func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer stop()
	for busy() {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.cond.Wait()
	}
	return nil
}

func (g *hostGate) hold(ctx context.Context, host string) (func(), error) {
	g.mu.Lock()
	if err := g.wait(ctx, func() bool { return g.held[host] || g.users[host] > 0 }); err != nil {
		g.mu.Unlock()
		return nil, err
	}
	g.held[host] = true
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.held, host)
		g.cond.Broadcast()
		g.mu.Unlock()
	}, nil
}

func (g *hostGate) use(ctx context.Context, host string) (func(), error) {
	g.mu.Lock()
	if err := g.wait(ctx, func() bool { return g.held[host] }); err != nil {
		g.mu.Unlock()
		return nil, err
	}
	g.users[host]++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.users[host]--
		if g.users[host] == 0 {
			delete(g.users, host)
		}
		g.cond.Broadcast()
		g.mu.Unlock()
	}, nil
}

// aheadNote says in a host's start event that its ahead steps ran before.
func aheadNote(data map[string]any, h *hostRun, steps []*plan.CompiledStep) map[string]any {
	var names []string
	for _, s := range steps {
		names = append(names, h.stepName(s, h.inheritedOf(s).noLog))
	}
	out := maps.Clone(data)
	if out == nil {
		out = map[string]any{}
	}
	out["ran_ahead"] = fmt.Sprintf("%s ran while the batch before was at its last step", quoteList(names))
	return out
}
