package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// doneItem is an item of a looped step that completed, with what its undo
// needs.
type doneItem struct {
	index   int
	item    any
	changed bool
	result  modules.Result
	module  modules.Module // nil after a resume: rendered again for the undo
	target  *plan.Host     // nil after a resume: resolved again
}

// runLoop runs a step with loop: once per item, in order, each as a step of
// its own would run (when, delegate_to, arguments, retries, --check). It stops
// at the first item that fails: after a failure nothing more is touched. The
// step's start is emitted once, before the first item that runs.
func (st *stepRun) runLoop(ctx context.Context, o stepOutcome) (stepOutcome, event.Engine) {
	items, err := st.s.Loop.Items(st.scope)
	if err != nil {
		return st.failed(o, err), event.Engine{}
	}
	if len(items) == 0 {
		o = skipped(o, "loop over no items")
		o.data["results"] = []any{}
		o.result = resultMap(o.data, false, false, "")
		return o, event.Engine{}
	}
	started := false
	var startErr error
	begin := func(*plan.Host) error {
		if started {
			return startErr
		}
		started = true
		startErr = st.emitStart("", event.IntPtr(len(items)))
		return startErr
	}
	lr := &loopRun{h: st.h}
	var extra event.Engine
	for i, item := range items {
		if i > 0 {
			if k := st.h.betweenItems(ctx, st.m); k != notHalted {
				lr.halt(k, i, item)
				break
			}
		}
		is := *st.scope
		is.Loop = &eval.Loop{Item: item, Index: i}
		one := *st
		one.scope = &is
		// The item's retries and processes say which item they are.
		one.base.LoopIndex = event.IntPtr(i)
		io, x := one.execute(ctx, stepOutcome{name: o.name, noLog: o.noLog}, begin)
		extra.Check = extra.Check || x.Check
		if lr.add(i, item, io) {
			break
		}
	}
	return lr.outcome(o, st.inh), extra
}

// betweenItems says whether the run stops before the next item, as it stops
// a step between its retries. A rollback only stops for the operator's stop.
func (h *hostRun) betweenItems(ctx context.Context, m *seqMode) haltKind {
	if m.rollback {
		if ctx.Err() != nil {
			return haltStop
		}
		return notHalted
	}
	return h.r.halted(ctx)
}

// loopRun gathers the items of a looped step as they end.
type loopRun struct {
	h        *hostRun
	results  []any // per item, as expressions see them
	journal  []any // per item, as the journal keeps them
	items    []*doneItem
	changed  bool
	skipped  int
	failed   *stepOutcome // the item that stopped the loop
	failedAt int
	item     any
}

// add records how item i ended, and reports whether the loop stops there.
func (lr *loopRun) add(i int, item any, io stepOutcome) (stop bool) {
	res := io.result
	if res == nil {
		msg := ""
		if io.err != nil {
			msg = lr.h.shownError(io.err, io.noLog).Error()
		}
		res = resultMap(io.data, io.changed, io.status != event.OK && io.status != event.Changed && io.status != event.Skipped, msg)
	}
	res = cloneMap(res)
	res["item"], res["loop_index"] = item, i
	if io.target != nil && io.target.Name != lr.h.host.Name {
		res["delegate_to"] = io.target.Name
	}
	lr.results = append(lr.results, res)
	j := cloneMap(res)
	j["item"] = journalItem(item)
	lr.journal = append(lr.journal, j)
	switch io.status {
	case event.OK, event.Changed:
		lr.changed = lr.changed || io.changed
		lr.items = append(lr.items, &doneItem{index: i, item: item, changed: io.changed, result: io.modRes, module: io.module, target: io.target})
		return false
	case event.Skipped:
		lr.skipped++
		return false
	}
	lr.failed, lr.failedAt, lr.item = &io, i, item
	return true
}

// halt records that the run stopped before item i, as it stops before a
// step: the items left are not started, and the host is rolled back on a
// drain (with the items done) or left as it is on a stop.
func (lr *loopRun) halt(k haltKind, i int, item any) {
	io := stepOutcome{status: event.Interrupted, halted: k,
		err: fmt.Errorf("interrupted by the operator before item %s (loop_index %d)", shortItem(item), i)}
	lr.failed, lr.failedAt, lr.item = &io, -1, nil
}

// outcome is the step's outcome from its items, Ansible's way: results lists
// each item's result with its item and loop_index; changed if any item
// changed; skipped if every item was; failed, naming the item, if one failed.
func (lr *loopRun) outcome(o stepOutcome, inh inherited) stepOutcome {
	h := lr.h
	allSkipped := lr.failed == nil && lr.skipped == len(lr.results)
	data := map[string]any{"changed": lr.changed, "failed": lr.failed != nil, "skipped": allSkipped, "results": lr.journal}
	msg := ""
	switch f := lr.failed; {
	case f != nil:
		o.status, o.fatal, o.ignored, o.halted = f.status, f.fatal, f.ignored, f.halted
		o.err = f.err
		if lr.failedAt >= 0 {
			o.err = fmt.Errorf("item %s (loop_index %d): %w", shortItem(lr.item), lr.failedAt, f.err)
		}
		msg = h.shownError(o.err, inh.noLog).Error()
		data["msg"] = msg
	case allSkipped:
		o.status = event.Skipped
		data["msg"] = "all items skipped"
	case lr.changed:
		o.status = event.Changed
	default:
		o.status = event.OK
	}
	o.changed = lr.changed && lr.failed == nil
	o.data = data
	seen := cloneMap(data)
	seen["results"] = lr.results
	o.result = resultMap(seen, lr.changed, lr.failed != nil, msg)
	o.items = lr.items
	return o
}

// shortItem names an item in a message: a host (or a map) by its name, else
// its text, cut short.
func shortItem(v any) string {
	switch x := v.(type) {
	case eval.Host:
		return x.Name
	case map[string]any:
		if name, ok := x["name"].(string); ok && name != "" {
			return name
		}
	}
	s, err := eval.Format(v)
	if err != nil {
		s = fmt.Sprint(v)
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 40 {
		s = string(r[:39]) + "…"
	}
	return s
}

// journalItem is an item as the journal keeps it: a host without its vars,
// which hold the -e values and inventory secrets the journal keeps out. A
// resume finds the host again by name (hostItem).
func journalItem(v any) any {
	switch x := v.(type) {
	case eval.Host:
		return map[string]any{"name": x.Name, "addr": x.Addr, "groups": x.Groups}
	case []eval.Host:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = journalItem(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = journalItem(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = journalItem(e)
		}
		return out
	}
	return v
}

// hostItem turns an item read back from the journal into the host it was,
// vars and all, when it is one of the inventory's hosts.
func (h *hostRun) hostItem(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 3 || h.r.inv == nil {
		return v
	}
	name, _ := m["name"].(string)
	addr, _ := m["addr"].(string)
	if _, ok := m["groups"]; !ok || name == "" {
		return v
	}
	for _, host := range h.r.inv.Group(name) {
		if host.Name == name && host.Addr == addr {
			return host
		}
	}
	return v
}

// restoredLoop is a looped step's journaled result as expressions see it
// after a resume: its items are hosts again.
func (h *hostRun) restoredLoop(data map[string]any) map[string]any {
	list, ok := data["results"].([]any)
	if !ok {
		return data
	}
	out := cloneMap(data)
	results := make([]any, len(list))
	for i, x := range list {
		if m, ok := x.(map[string]any); ok {
			m = cloneMap(m)
			m["item"] = h.hostItem(m["item"])
			x = m
		}
		results[i] = x
	}
	out["results"] = results
	return out
}

// journaledItems rebuilds a looped step's completed items from its journaled
// result, for the undo after a resume. lost is true when the journal does not
// hold them (no_log censors the result).
func (h *hostRun) journaledItems(data map[string]any) (items []*doneItem, lost bool) {
	list, ok := data["results"].([]any)
	if !ok {
		return nil, true
	}
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		failed, _ := m["failed"].(bool)
		skipped, _ := m["skipped"].(bool)
		idx, isNum := m["loop_index"].(float64)
		if failed || skipped || !isNum {
			continue
		}
		changed, _ := m["changed"].(bool)
		items = append(items, &doneItem{index: int(idx), item: h.hostItem(m["item"]), changed: changed,
			result: modules.Result{Changed: changed, Data: m}})
	}
	return items, false
}

// readsLoop reports whether names hold item or loop_index.
func readsLoop(names []string) bool {
	return slices.Contains(names, "item") || slices.Contains(names, "loop_index")
}

// keepItems keeps, for the undo, the items a looped step completed before one
// of its items failed: the step did not complete, but they changed things.
func (h *hostRun) keepItems(s *plan.CompiledStep, idx int, inh inherited, o stepOutcome) {
	switch {
	case s.Loop == nil || o.ranOn != "":
		return
	case o.lost:
		h.note("the items %q completed before it failed are not in the journal (no_log): check by hand what they changed", o.name)
		return
	case len(o.items) == 0:
		return
	}
	changed := false
	for _, it := range o.items {
		changed = changed || it.changed
	}
	h.done = append(h.done, &doneStep{step: s, index: idx, name: o.name, changed: changed, noLog: inh.noLog,
		items: o.items, partial: true, lost: o.lost})
}

// undoItems undoes a looped step item by item, newest first, each against the
// target it ran on and with its item in scope; items that changed nothing are
// passed over. It stops at the first item whose undo fails. The step has one
// rollback start and end, as it had one start and end, so a resume in the
// middle undoes its items again: undos allow that (swap finds its file put
// back already).
func (h *hostRun) undoItems(ctx context.Context, d *doneStep, inh inherited,
	begin func(items *int) error, end func(event.Status, error) (event.Status, error)) (event.Status, error) {
	if args, ok := h.r.reg.NewArgs(d.step.Module); !ok || !isUndoer(args) {
		st, _ := end(event.Skipped, fmt.Errorf("%s has no undo: not undone", d.step.Module))
		return st, nil
	}
	if d.lost {
		return end(event.Failed, errors.New("the journal does not hold its items' results (no_log: true hides them), so they cannot be undone: undo them by hand"))
	}
	var todo []*doneItem
	for i := len(d.items) - 1; i >= 0; i-- {
		if d.items[i].changed {
			todo = append(todo, d.items[i])
		}
	}
	if err := begin(event.IntPtr(len(todo))); err != nil {
		return end(event.Failed, err)
	}
	for n, it := range todo {
		err := ctx.Err()
		if err == nil {
			err = h.undoItem(ctx, d, inh, it)
		}
		if err == nil {
			continue
		}
		err = fmt.Errorf("item %s (loop_index %d): %w", shortItem(it.item), it.index, err)
		if rest := todo[n+1:]; len(rest) > 0 {
			err = fmt.Errorf("%w; not undone: %s", err, itemList(rest))
		}
		if ctx.Err() != nil {
			return end(event.Interrupted, fmt.Errorf("stopped by the operator: %w", err))
		}
		return end(event.Failed, err)
	}
	return end(event.OK, nil)
}

// undoItem undoes one item of a looped step.
func (h *hostRun) undoItem(ctx context.Context, d *doneStep, inh inherited, it *doneItem) error {
	scope := h.secretScope(h.scope(nil), d.noLog)
	scope.Loop = &eval.Loop{Item: it.item, Index: it.index}
	mod, err := h.undoModule(d.step, scope, it.module)
	if err != nil {
		return err
	}
	u, ok := mod.(modules.Undoer)
	if !ok {
		return fmt.Errorf("%s has no undo", d.step.Module)
	}
	target, err := h.undoTarget(inh, scope, it.target)
	if err != nil {
		return err
	}
	return h.runUndo(ctx, d.step, inh, u, target, it.result)
}

func isUndoer(m modules.Module) bool {
	_, ok := m.(modules.Undoer)
	return ok
}

// itemList names items in a message: item etcd-2 (loop_index 1), item etcd-1
// (loop_index 0); the index is the one item results carry.
func itemList(items []*doneItem) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprintf("item %s (loop_index %d)", shortItem(it.item), it.index)
	}
	return strings.Join(out, ", ")
}
