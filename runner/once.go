package runner

import (
	"context"
	"sync"
)

// batchOnce coordinates the run_once steps of one batch. Hosts run their steps
// independently, so a run_once step runs on the first host of the batch (in
// batch order) that is still running and has not passed it; the others wait
// for its outcome and take it as their own, as Ansible gives every host the
// result of a run_once task.
//
// Hosts start in batch order and the host designated to run a step always holds
// a fork (any host before it has ended), so waiting never deadlocks.
type batchOnce struct {
	mu      sync.Mutex
	cond    *sync.Cond
	order   []string
	ended   map[string]bool
	passed  map[int]map[string]bool
	claimed map[int]string
	results map[int]*sharedStep
	halted  func() haltKind
	done    chan struct{}
}

// sharedStep is the outcome of a run_once step and the host that ran it.
type sharedStep struct {
	host string
	o    stepOutcome
}

func newBatchOnce(ctx context.Context, stop <-chan struct{}, order []string, halted func() haltKind) *batchOnce {
	b := &batchOnce{
		order: order, ended: map[string]bool{}, passed: map[int]map[string]bool{},
		claimed: map[int]string{}, results: map[int]*sharedStep{}, halted: halted,
		done: make(chan struct{}),
	}
	b.cond = sync.NewCond(&b.mu)
	// Waiters must wake up for a drain or a stop, not only for a result.
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		case <-b.done:
			return
		}
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	}()
	return b
}

func (b *batchOnce) close() { close(b.done) }

// await returns the step's shared outcome, or mine = true when host is to run
// it (then it must publish). It returns a halt kind when the run stops first.
func (b *batchOnce) await(host string, idx int) (res *sharedStep, mine bool, k haltKind) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if res := b.results[idx]; res != nil {
			b.passLocked(host, idx)
			return res, false, notHalted
		}
		if _, taken := b.claimed[idx]; !taken && b.designated(idx) == host {
			b.claimed[idx] = host
			b.passLocked(host, idx)
			return nil, true, notHalted
		}
		if k := b.halted(); k != notHalted {
			return nil, false, k
		}
		b.cond.Wait()
	}
}

func (b *batchOnce) designated(idx int) string {
	for _, h := range b.order {
		if !b.ended[h] && !b.passed[idx][h] {
			return h
		}
	}
	return ""
}

func (b *batchOnce) passLocked(host string, idx int) {
	if b.passed[idx] == nil {
		b.passed[idx] = map[string]bool{}
	}
	b.passed[idx][host] = true
}

// pass records that host went past the step without it (a resumed host that
// completed it before), so it is not waited for.
func (b *batchOnce) pass(host string, idx int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.passLocked(host, idx)
	b.cond.Broadcast()
}

func (b *batchOnce) publish(idx int, host string, o stepOutcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.results[idx] = &sharedStep{host: host, o: o}
	b.cond.Broadcast()
}

// end records that host runs no more steps.
func (b *batchOnce) end(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended[host] = true
	b.cond.Broadcast()
}
