package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/modules"
)

// runner is one run of a plan.
type runner struct {
	p    *plan.Plan
	reg  *modules.Registry
	opts Options
	bus  *event.Bus
	// secrets holds the rendered arguments of no_log steps. It is the Bus's own
	// set when it has one; otherwise the runner redacts events itself.
	secrets    *redact.Set
	ownSecrets bool
	log        zerolog.Logger
	inv        eval.Inventory
	started    time.Time
	runbookDir string
	ctrlVars   map[string]any // vars of the controller phases: plan.ControllerVars

	index index
	pool  *connPool
	ahead *aheadRun // nil when no step runs ahead

	// stop is closed when no new step may start: a drain, or a failed journal.
	stop      chan struct{}
	stopOnce  sync.Once
	drainOnce sync.Once
	hardOnce  sync.Once
	confirmMu sync.Mutex
	// windowIgnored journals --ignore-window once.
	windowIgnored sync.Once

	mu          sync.Mutex
	out         *Outcome
	failedHosts int
	heldHosts   int // of failedHosts, those stopped by a modules.HoldError
	// completed are the hosts that ended ok, in the order they ended, for
	// on_abort: rollback_completed.
	completed []*hostRun
	// doneNames are the names of completed, filled in by doneHosts.
	doneNames  []string
	journalErr error
	// shared holds what preflight and gates registered: every host starts with it.
	shared map[string]any

	// resumed is the journal's state of the run this one resumes; nil on a
	// fresh run.
	resumed *journal.State
}

func newRun(p *plan.Plan, reg *modules.Registry, opts Options) (*runner, error) {
	r := &runner{
		p: p, reg: reg, opts: opts, bus: opts.Events, log: opts.Log,
		stop:     make(chan struct{}),
		shared:   map[string]any{},
		ctrlVars: p.ControllerVars(),
	}
	if p.Inventory != nil {
		r.inv = p.EvalInventory()
	}
	if r.bus != nil {
		r.secrets = r.bus.Secrets()
	}
	if r.secrets == nil {
		r.secrets, r.ownSecrets = &redact.Set{}, true
	}
	// The inventory's etcd password is a secret of the run wherever it
	// turns up (a step that echoes it, an error quoting it).
	for _, h := range p.Hosts {
		if pw, ok := h.Vars[etcdctl.VarPassword].(string); ok {
			r.secrets.Add(pw)
		}
	}
	if p.File != "" {
		if abs, err := filepath.Abs(p.File); err == nil {
			r.runbookDir = filepath.Dir(abs)
		}
	}
	r.index = buildIndex(p)
	r.ahead = newAhead(r)
	r.pool = newConnPool(opts.Dialer)
	r.out = &Outcome{Hosts: map[string]*HostOutcome{}}
	for bi, names := range p.Batches {
		for _, n := range names {
			r.out.Hosts[n] = &HostOutcome{Name: n, Batch: bi + 1, Status: StatusSkipped, State: "not started"}
		}
	}
	if opts.Resume != nil {
		if err := CheckResume(opts.Resume, p); err != nil {
			return nil, err
		}
		r.resumed = opts.Resume
	}
	return r, nil
}

func (r *runner) run(ctx context.Context) (*Outcome, error) {
	r.started = time.Now()
	if err := r.emitRunStart(); err != nil {
		return nil, fmt.Errorf("the run could not be recorded, so nothing was touched: %w", err)
	}
	unwatch := r.watch(ctx)

	if r.resumed != nil {
		r.restoreFinished()
	}
	switch {
	case r.resumed != nil && r.resumed.Aborted:
		// The decision to abort stands: a resume only finishes what the abort began.
		r.out.Aborted, r.out.AbortReason = true, r.resumed.AbortReason
		r.notStarted(r.p.Batches, "not started: the run aborted ("+r.resumed.AbortReason+")")
		r.abortRollback(ctx)
		r.ahead.finish(ctx)
	case !r.windowOpen(ctx, nil):
		// Outside the change window: not even preflight runs.
	case r.preflight(ctx):
		r.batches(ctx)
		if !r.out.Aborted {
			if k := r.halted(ctx); k != 0 {
				r.noteHalt(k)
			} else {
				r.post(ctx)
			}
		}
	}

	unwatch()
	r.pool.closeAll(r.log)
	r.out.Duration = time.Since(r.started)
	r.emitRunEnd()
	r.mu.Lock()
	err := r.journalErr
	r.mu.Unlock()
	if err != nil {
		return r.out, fmt.Errorf("the journal failed, so the run stopped: %w", err)
	}
	return r.out, nil
}

// watch turns a drain and a cancelled ctx into interrupt events as soon as they
// happen, so the journal shows when the operator acted, not when a step ended.
func (r *runner) watch(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		drain := r.opts.Drain
		for {
			select {
			case <-drain:
				r.onDrain()
				drain = nil // a nil channel never fires again
			case <-ctx.Done():
				r.onCancel()
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		// Both may have happened as the run ended; record them all the same.
		if r.opts.Drain != nil {
			select {
			case <-r.opts.Drain:
				r.onDrain()
			default:
			}
		}
		if ctx.Err() != nil {
			r.onCancel()
		}
	}
}

func (r *runner) onDrain() {
	r.drainOnce.Do(func() {
		r.halt()
		r.log.Warn().Msg("interrupt: no new step starts; steps in flight finish, then hosts left mid-way are rolled back")
		r.emit(event.Event{Kind: event.Interrupt, Status: event.Interrupted,
			Error:  "interrupted: no new step starts; steps in flight finish, then hosts left mid-way are rolled back",
			Engine: event.Engine{Mode: "drain"}})
	})
}

func (r *runner) onCancel() {
	r.hardOnce.Do(func() {
		r.halt()
		r.log.Warn().Msg("stopped: commands in flight are killed and hosts are left as they are")
		r.emit(event.Event{Kind: event.Interrupt, Status: event.Interrupted,
			Error:  "stopped: commands in flight are killed and hosts are left as they are",
			Engine: event.Engine{Mode: "stop"}})
	})
}

func (r *runner) halt() { r.stopOnce.Do(func() { close(r.stop) }) }

// haltKind says why no new step may start.
type haltKind int

const (
	notHalted haltKind = iota
	haltDrain          // drain or a failed journal: finish, roll back what is mid-way
	haltStop           // ctx cancelled: stop now
)

func (r *runner) halted(ctx context.Context) haltKind {
	if ctx.Err() != nil {
		return haltStop
	}
	// The drain channel itself is read too, not only what the watcher made of
	// it: a step that ends right after the drain must see it.
	select {
	case <-r.opts.Drain:
		r.onDrain()
		return haltDrain
	default:
	}
	select {
	case <-r.stop:
		return haltDrain
	default:
		return notHalted
	}
}

// noteHalt records that work was left undone because of a halt.
func (r *runner) noteHalt(k haltKind) {
	if k == notHalted {
		return
	}
	r.mu.Lock()
	r.out.Interrupted = true
	r.mu.Unlock()
}

// emit sends e to the Bus. A failure of a required sink (the journal) stops
// new steps, as a drain does: acting without a record would make the run
// impossible to resume or audit. The error is returned for the events an
// action waits for (a step's start): the action must not happen without it.
func (r *runner) emit(e event.Event) error {
	if r.bus == nil {
		return nil
	}
	if r.ownSecrets {
		e = e.Redacted(r.secrets)
	}
	if err := r.bus.Emit(e); err != nil {
		r.mu.Lock()
		first := r.journalErr == nil
		if first {
			r.journalErr = err
		}
		r.mu.Unlock()
		if first {
			r.log.Error().Err(err).Msg("the journal failed: no new step starts")
		}
		r.halt()
		return err
	}
	return nil
}

// journalFailed is the first failure of the journal, or nil.
func (r *runner) journalFailed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.journalErr
}

func (r *runner) runInfo() map[string]any {
	info := r.opts.Info
	if info.Runbook == "" {
		info.Runbook = r.p.File
	}
	info.Name = r.p.Runbook
	info.RunbookDigest = r.p.RunbookDigest
	info.InventoryDigest = r.p.InventoryDigest
	info.Hosts = r.p.HostNames
	info.Batches = r.p.Batches
	info.Check = r.opts.Check
	info.Steps = countLeaves(r.p.Phase(plan.PhaseSteps).Compiled)
	if info.PID == 0 {
		info.PID = os.Getpid()
	}
	return info.Data()
}

// emitRunStart records the start, which must succeed before anything is touched.
func (r *runner) emitRunStart() error {
	if r.bus == nil {
		return nil
	}
	kind := event.RunStart
	data := r.runInfo()
	if r.resumed != nil {
		kind = event.RunResume
		data["resumed_after_seq"] = r.resumed.LastSeq
	}
	if err := r.bus.Emit(event.Event{Kind: kind, Data: data}); err != nil {
		return err
	}
	return nil
}

func (r *runner) emitRunEnd() {
	counts := map[string]int{}
	for _, h := range r.out.Hosts {
		counts[string(h.Status)]++
	}
	status := r.out.runStatus()
	reason := ""
	switch {
	case r.out.RollbackFailed:
		reason = "a rollback failed; see the hosts' state"
	case r.out.Aborted:
		reason = r.out.AbortReason
	case r.out.PreflightFailed && r.resumed != nil:
		reason = "preflight did not pass on resume; this part touched nothing, the hosts are as the interrupted run left them"
	case r.out.PreflightFailed:
		reason = "preflight did not pass; nothing was touched"
	case r.out.PostFailed:
		reason = "a post step failed"
	case status == event.Failed:
		reason = "a host failed"
	case r.out.Stopped != "":
		reason = r.out.Stopped
	case r.out.Interrupted:
		reason = "interrupted by the operator"
		if r.journalErr != nil {
			reason = "the journal failed: " + r.journalErr.Error()
		}
	}
	r.emit(event.Event{Kind: event.RunEnd, Status: status, Duration: r.out.Duration,
		Data: event.RunEndInfo{ExitCode: r.out.ExitCode(), Hosts: counts, Reason: reason}.Data()})
}

// preflight runs once on the controller before any host is touched. It is run
// again on a resume: it only reads, and the world may have changed since.
func (r *runner) preflight(ctx context.Context) bool {
	preflight := r.p.Phase(plan.PhasePreflight).Compiled
	if len(preflight) == 0 {
		return true
	}
	c := r.newControllerRun(event.Preflight, 0)
	f := c.runList(ctx, preflight, inherited{}, c.mainMode())
	r.takeShared(c)
	if f == nil {
		return true
	}
	switch f.kind {
	case failInterrupted:
		r.noteHalt(haltStop)
	case failStopped:
		r.noteHalt(haltDrain)
	default:
		r.mu.Lock()
		r.out.PreflightFailed = true
		r.mu.Unlock()
		r.log.Error().Str("step", f.name).Str("error", f.errText()).Msg("preflight failed; no host was touched")
	}
	for _, h := range r.out.Hosts {
		h.State = "not started: preflight did not pass"
	}
	return false
}

// takeShared takes what a controller phase (preflight, gates) registered into
// what every host starts with, and its rollback's failure into the outcome.
func (r *runner) takeShared(c *hostRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range c.registered {
		r.shared[k] = v
	}
	if c.rollback.failed {
		r.out.RollbackFailed = true
	}
}

// post runs once on the controller after the last batch of a run that did not abort.
func (r *runner) post(ctx context.Context) {
	post := r.p.Phase(plan.PhasePost).Compiled
	if len(post) == 0 {
		return
	}
	c := r.newControllerRun(event.Post, 0)
	m := c.mainMode()
	if r.resumed != nil {
		m.done = r.resumed.Post.Completed()
	}
	f := c.runList(ctx, post, inherited{}, m)
	if c.rollback.failed {
		r.out.RollbackFailed = true
	}
	if f == nil {
		return
	}
	switch f.kind {
	case failInterrupted:
		r.noteHalt(haltStop)
	case failStopped:
		r.noteHalt(haltDrain)
	default:
		r.out.PostFailed = true
	}
}

// hostsInOrder returns the plan hosts by name.
func (r *runner) planHost(name string) *plan.Host {
	for _, h := range r.p.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// index numbers the steps of each phase: leaves in document order, a block's
// rollback steps after its own, so that a step's StepIndex is stable.
type index struct {
	steps map[*plan.CompiledStep]stepPos
	// blockRange is the range of leaf indexes inside a block (its rollback included).
	blockRange map[*plan.CompiledStep][2]int
	// byIndex lists the steps phase's leaves by index, with their enclosing blocks.
	byIndex []*plan.CompiledStep
}

type stepPos struct {
	index int
	// blocks encloses the step, outermost first (nil for a block's rollback steps).
	blocks []*plan.CompiledStep
}

// countLeaves is how many StepIndex values a phase has, as buildIndex numbers
// them, so views can say "step 2/6".
func countLeaves(ss []*plan.CompiledStep) int {
	n := 0
	for _, s := range ss {
		if !s.IsBlock() {
			n++
			continue
		}
		n += countLeaves(s.Block)
		if s.Rollback != nil {
			n += countLeaves(s.Rollback.Steps)
		}
	}
	return n
}

func buildIndex(p *plan.Plan) index {
	ix := index{steps: map[*plan.CompiledStep]stepPos{}, blockRange: map[*plan.CompiledStep][2]int{}}
	number := func(steps []*plan.CompiledStep, main bool) {
		n := 0
		var walk func(ss []*plan.CompiledStep, enc []*plan.CompiledStep, inRollback bool)
		walk = func(ss []*plan.CompiledStep, enc []*plan.CompiledStep, inRollback bool) {
			for _, s := range ss {
				if s.IsBlock() {
					start := n
					inner := append(slices.Clip(enc), s)
					walk(s.Block, inner, inRollback)
					if s.Rollback != nil {
						walk(s.Rollback.Steps, nil, true)
					}
					ix.blockRange[s] = [2]int{start, n}
					continue
				}
				ix.steps[s] = stepPos{index: n, blocks: enc}
				if main && !inRollback {
					for len(ix.byIndex) <= n {
						ix.byIndex = append(ix.byIndex, nil)
					}
					ix.byIndex[n] = s
				}
				n++
			}
		}
		walk(steps, nil, false)
	}
	for _, ph := range p.Phases {
		number(ph.Compiled, ph.Name == plan.PhaseSteps)
	}
	return ix
}
