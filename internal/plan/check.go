package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
)

// CheckValues renders, before anything is touched, every template and
// expression of the runbook whose inputs the plan knows (vars, the inventory,
// -e, host, run), for every host of the plan, and decodes and validates each
// step's arguments with the rendered values through the path a run takes
// (spec.Step.CheckArgs), so that a value a module would refuse on a host is
// an error now rather than after hosts were changed. preflight, gates and
// post are checked once, with the vars the run gives them (the first host's).
// Templates that read facts, registered results, a step's own names or the
// clock wait for the run. Steps the run would not reach for a host (left out
// by tags, run_once on another host, a guard with known inputs that is
// false) are not checked for it. The same error on several hosts is one
// diagnostic naming them.
func (p *Plan) CheckValues(opts CheckOptions) diag.Diags {
	rb := p.Spec
	if rb == nil {
		return nil
	}
	c := &checker{
		p: p, rt: newRunTimeNames(rb, p.registry), run: opts.Run, tags: opts.Tags, skipTags: opts.SkipTags,
		inv: p.EvalInventory(), found: map[diag.Diag]*finding{}, typed: map[typesKey]diag.Diags{},
		notFirst: map[string]bool{},
	}
	batch := map[string]int{}
	for i, b := range p.Batches {
		for j, n := range b {
			batch[n] = i + 1
			// Known only when the order is: else any host may be first.
			if j > 0 && !p.OrderAtStart {
				c.notFirst[n] = true
			}
		}
	}
	for _, ctl := range c.controllers() {
		c.steps(rb.Preflight, ctl.scope(0), ctl, inherited{})
	}
	for _, h := range p.Hosts {
		t := c.hostTarget(h)
		c.steps(rb.Steps, t.scope(batch[h.Name]), t, inherited{})
		c.steps(rb.Rollback.Steps, t.scope(batch[h.Name]), t, inherited{rollback: true})
	}
	for _, ctl := range c.controllers() {
		if len(p.Batches) > 0 {
			c.steps(rb.BetweenBatches, ctl.scope(1), ctl, inherited{})
		}
		c.steps(rb.Post, ctl.scope(0), ctl, inherited{})
	}
	return c.diags()
}

// CheckOptions are what CheckValues knows of the run to come.
type CheckOptions struct {
	// Run is what `run` holds: its id and start for exec and resume
	// (resumed for resume), zero for validate and plan.
	Run eval.Run
	// Tags and SkipTags select steps as --tags and --skip-tags do: a step
	// the run skips is not checked. None: the run's default, which skips
	// steps tagged never.
	Tags, SkipTags []string
}

type checker struct {
	tags, skipTags []string
	p              *Plan
	rt             *runTimeNames
	run            eval.Run
	inv            eval.Inventory
	found          map[diag.Diag]*finding
	order          []diag.Diag
	typed          map[typesKey]diag.Diags
	// notFirst are the hosts that are not first in their batch, which
	// run_once steps do not run on.
	notFirst map[string]bool
}

// finding is one error and the hosts it was found for.
type finding struct {
	hosts   []string
	ctrl    bool // found for the controller, with the vars of hosts
	origins []string
}

// target is what a step is rendered for: a host, or the controller with the
// vars of a host.
type target struct {
	label  string // the host, or the host whose vars the controller has
	ctrl   bool
	raw    map[string]any // the host's vars as written, before rendering
	vars   map[string]any
	host   eval.Host
	origin func(name string) diag.Pos
	c      *checker
}

func (t *target) scope(batch int) *eval.Scope {
	r := t.c.run
	r.Batch = batch
	return &eval.Scope{Vars: t.vars, Host: t.host, Run: r, Inventory: t.c.inv}
}

func (c *checker) hostTarget(h *Host) *target {
	return &target{label: h.Name, vars: h.Vars, raw: c.rawVars(h), host: h.Eval(), origin: c.origin(h), c: c}
}

// controllers are the targets of preflight, gates and post: the controller
// with the first host's vars, as the runner gives them. When the order is
// decided at the start of the run any host may come first, so each is tried.
func (c *checker) controllers() []*target {
	hosts := c.p.Hosts
	if len(hosts) == 0 {
		vars := MergeVars(c.p.Spec.Vars, c.p.ExtraVars)
		return []*target{{label: spec.Controller, ctrl: true, vars: vars, raw: vars, c: c, origin: c.origin(nil),
			host: ControllerHost(vars).Eval()}}
	}
	if !c.p.OrderAtStart {
		hosts = hosts[:1]
	}
	// Hosts whose values for what these phases read are the same check
	// alike: one of each (with many hosts and group vars, one in all).
	read := ctrlNames(c.p.Spec)
	seen := map[string]bool{}
	out := make([]*target, 0, len(hosts))
	for _, h := range hosts {
		key := h.Name
		if !read["host"] {
			vals := map[string]any{}
			for n := range read {
				if v, ok := h.Vars[n]; ok {
					vals[n] = v
				}
			}
			if j, err := json.Marshal(vals); err == nil {
				key = string(j)
			}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, &target{
			label: h.Name, ctrl: true, vars: h.Vars, raw: c.rawVars(h), c: c, origin: c.origin(h),
			host: ControllerHost(h.Vars).Eval(),
		})
	}
	return out
}

// ctrlNames are the names the steps of preflight, between_batches and post
// read.
func ctrlNames(rb *spec.Runbook) map[string]bool {
	out := map[string]bool{}
	add := func(names []string) {
		for _, n := range names {
			out[n] = true
		}
	}
	var walk func(ss []*spec.Step)
	walk = func(ss []*spec.Step) {
		for _, s := range ss {
			for _, p := range append(append([]*eval.Program{s.Until, s.FailedWhen, s.ChangedWhen}, s.When...), s.ArgExprs()...) {
				if p != nil {
					add(p.Names())
				}
			}
			for _, t := range s.Templates {
				add(t.Names())
			}
			if s.DelegateTemplate != nil {
				add(s.DelegateTemplate.Names())
			}
			if s.Loop != nil {
				add(s.Loop.Names())
			}
			walk(s.Block)
			if s.Rollback != nil {
				walk(s.Rollback.Steps)
			}
		}
	}
	walk(rb.Preflight)
	walk(rb.BetweenBatches)
	walk(rb.Post)
	return out
}

// rawVars are the host's vars as written (runbook < inventory < -e), to
// follow a templated var to the vars it is made of.
func (c *checker) rawVars(h *Host) map[string]any {
	var inv map[string]any
	if h.Inventory != nil {
		inv = h.Inventory.Vars
	}
	return MergeVars(c.p.Spec.Vars, inv, c.p.ExtraVars)
}

// origin says where the value a host sees for a variable was set.
func (c *checker) origin(h *Host) func(string) diag.Pos {
	if h != nil && h.Inventory != nil {
		return varPos(c.p.Spec, h.Inventory, c.p.ExtraVars)
	}
	return func(name string) diag.Pos {
		if _, ok := c.p.ExtraVars[name]; ok {
			return diag.Pos{File: "-e " + name}
		}
		return c.p.Spec.VarPos[name]
	}
}

// inherited is what a step takes from its enclosing blocks, as the runner's
// own inherited: their guards, no_log and delegate_to.
type inherited struct {
	when     []*eval.Program
	tags     []string
	noLog    bool
	runOnce  bool
	rollback bool // run_once does not apply: every failed host rolls back
	delegate *spec.Step
}

func (in inherited) with(s *spec.Step) inherited {
	out := in
	out.when = append(slices.Clip(in.when), s.When...)
	out.tags = append(slices.Clip(in.tags), s.Tags...)
	out.noLog = in.noLog || s.NoLog
	out.runOnce = in.runOnce || s.RunOnce
	if s.DelegateTo != "" || s.DelegateTemplate != nil {
		out.delegate = s
	}
	return out
}

// steps checks a list of steps for t.
func (c *checker) steps(ss []*spec.Step, scope *eval.Scope, t *target, in inherited) {
	for _, s := range ss {
		eff := in.with(s)
		if !eff.rollback && !s.IsBlock() && !Selected(eff.tags, c.tags, c.skipTags) {
			continue // --tags or --skip-tags leave it out
		}
		if eff.runOnce && !eff.rollback && !t.ctrl && c.notFirst[t.label] {
			continue // the first host of its batch runs it for the batch
		}
		if !c.guards(s, eff, scope, t) {
			continue // the run skips it for this host
		}
		if s.IsBlock() {
			c.steps(s.Block, scope, t, eff)
			if s.Rollback != nil {
				c.steps(s.Rollback.Steps, scope, t, inherited{noLog: eff.noLog, delegate: eff.delegate, rollback: true})
			}
			continue
		}
		c.step(s, eff, scope, t)
	}
}

// guards evaluates the guards whose inputs are known; false when one of them
// is false, as the run would skip the step.
func (c *checker) guards(s *spec.Step, eff inherited, scope *eval.Scope, t *target) bool {
	for _, w := range eff.when {
		if len(c.rt.of(w.Names())) > 0 {
			c.types(s, eff, w, t)
			continue
		}
		ok, err := w.Bool(scope)
		if err != nil {
			c.add(s, eff, err, t, w.Names())
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

// step checks one step for t: once, or once per item when its loop's
// inputs are known, as the run renders it per item.
func (c *checker) step(s *spec.Step, eff inherited, scope *eval.Scope, t *target) {
	if s.Loop == nil || len(c.rt.of(s.Loop.Names())) > 0 {
		c.one(s, eff, scope, t, c.rt)
		return
	}
	items, err := s.Loop.Items(scope)
	if err != nil {
		c.add(s, eff, err, t, s.Loop.Names())
		return
	}
	rt := c.rt.withItems()
	for i, item := range items {
		is := *scope
		is.Loop = &eval.Loop{Item: item, Index: i}
		if c.itemGuards(s, eff, &is, t, rt) {
			c.one(s, eff, &is, t, rt)
		}
	}
}

// itemGuards evaluates, for one item, the guards that read it (the others
// were evaluated for the host); false when the run would skip the item.
func (c *checker) itemGuards(s *spec.Step, eff inherited, scope *eval.Scope, t *target, rt *runTimeNames) bool {
	for _, w := range eff.when {
		names := w.Names()
		if len(c.rt.of(names)) == 0 || len(rt.of(names)) > 0 {
			continue // no item in it, or it waits for the run all the same
		}
		ok, err := w.Bool(scope)
		if err != nil {
			c.add(s, eff, err, t, names)
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

// one checks the step's delegate_to, arguments and result guards in scope;
// rt says which names wait for the run.
func (c *checker) one(s *spec.Step, eff inherited, scope *eval.Scope, t *target, rt *runTimeNames) {
	if d := eff.delegate; d != nil && d.DelegateTemplate != nil && len(rt.of(d.DelegateTemplate.Names())) == 0 {
		c.delegate(s, d, eff, scope, t)
	}
	if _, _, err := s.CheckArgs(c.p.registry, scope, rt.waits); err != nil {
		c.add(s, eff, err, t, nil)
	}
	for _, tp := range s.Templates {
		if rt.waits(tp) {
			for _, p := range tp.Programs() {
				c.types(s, eff, p, t)
			}
		}
	}
	for _, p := range s.ArgExprs() {
		c.types(s, eff, p, t)
	}
	for _, p := range []*eval.Program{s.Until, s.FailedWhen, s.ChangedWhen} {
		if p == nil {
			continue
		}
		if len(rt.of(p.Names())) > 0 {
			c.types(s, eff, p, t)
			continue
		}
		if _, err := p.Bool(scope); err != nil {
			c.add(s, eff, err, t, p.Names())
		}
	}
}

// types checks an expression that waits for the run against the types of
// t's values for the vars it reads: it was compiled against one sample per
// var, and a host whose value has another type would fail only when the run
// reaches it. Hosts with the same types share one compile.
func (c *checker) types(s *spec.Step, eff inherited, p *eval.Program, t *target) {
	origin := func(name string) string {
		o := t.origin(name)
		switch {
		case strings.HasPrefix(o.File, "-e "):
			return "-e"
		case o.Line == 0:
			return ""
		}
		return o.String()
	}
	// Messages name where a var was set, so that is part of the key too.
	types := p.VarTypes(t.vars)
	for _, n := range p.Names() {
		types += "\x00" + origin(n)
	}
	key := typesKey{p, types}
	ds, done := c.typed[key]
	if !done {
		ds = p.CheckVars(t.vars, origin)
		c.typed[key] = ds
	}
	c.addDiags(s, eff, ds, t, []string{}, false)
}

type typesKey struct {
	p     *eval.Program
	types string
}

// delegate renders a delegate_to whose inputs are known and checks that it
// names a host the run can reach: the controller or an inventory host.
func (c *checker) delegate(s, d *spec.Step, eff inherited, scope *eval.Scope, t *target) {
	if c.p.Inventory == nil {
		return
	}
	v, err := d.DelegateTemplate.Render(scope)
	if err == nil {
		var name string
		if name, err = eval.Format(v); err == nil {
			name = strings.TrimSpace(name)
			_, known := c.p.Inventory.Host(name)
			switch {
			case name == "":
				err = errors.New("delegate_to is empty; name an inventory host, or controller")
			case name != spec.Controller && !known:
				err = fmt.Errorf("delegate_to %q: no such host in the inventory", name)
			}
		}
	}
	if err == nil {
		return
	}
	if _, isEval := err.(*eval.Error); !isEval {
		err = &eval.Error{Pos: d.DelegatePos, Err: err}
	}
	c.add(s, eff, err, t, d.DelegateTemplate.Names())
}
