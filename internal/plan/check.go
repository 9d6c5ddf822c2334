package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

// runTimeNames says which names only a run can give a value: module facts,
// what steps register, the names a step sets for itself (result, item,
// failed...) and the clock. Everything else an expression reads (vars, host,
// run, functions, the inventory) is known once the plan is built.
type runTimeNames struct {
	registered map[string]bool
	reg        *modules.Registry
	// items: item and loop_index are known, in a step whose loop's inputs
	// are; it is then checked once per item.
	items bool
}

// withItems is rt for the fields of a step whose loop items are known.
func (rt *runTimeNames) withItems() *runTimeNames {
	c := *rt
	c.items = true
	return &c
}

// forStep is rt for the fields of s other than its loop.
func (rt *runTimeNames) forStep(s *spec.Step) *runTimeNames {
	if s.Loop != nil && len(rt.of(s.Loop.Names())) == 0 {
		return rt.withItems()
	}
	return rt
}

// ownNames are set by the run for one step: its result, its loop item, and
// in rollback steps what failed and what completed.
var ownNames = []string{"result", "item", "loop_index", "failed", "completed"}

// clockNames read the time the step runs at: a guard like in_window(...)
// decided now says nothing about the run, so it is not used to skip a step.
var clockNames = []string{"now", "in_window"}

func newRunTimeNames(rb *spec.Runbook, reg *modules.Registry) *runTimeNames {
	rt := &runTimeNames{registered: map[string]bool{}, reg: reg}
	for _, s := range rb.AllSteps() {
		if s.Register != "" {
			rt.registered[s.Register] = true
		}
	}
	return rt
}

// of returns the names among names that only the run knows.
func (rt *runTimeNames) of(names []string) []string {
	var out []string
	for _, n := range names {
		if rt.items && (n == "item" || n == "loop_index") {
			continue
		}
		_, fact := rt.reg.LookupFacts(n)
		if fact || rt.registered[n] || slices.Contains(ownNames, n) || slices.Contains(clockNames, n) {
			out = append(out, n)
		}
	}
	return out
}

func (rt *runTimeNames) waits(t *eval.Template) bool { return len(rt.of(t.Names())) > 0 }

// runTimeChecks lists, for the plan, the fields of step s that can only be
// checked when it runs, and the run-time names each reads.
func (rt *runTimeNames) runTimeChecks(s *spec.Step) []string {
	var out []string
	srt := rt.forStep(s)
	add := func(field string, names []string) {
		if w := srt.of(names); len(w) > 0 {
			out = append(out, field+" reads "+strings.Join(w, ", "))
		}
	}
	for i, w := range s.When {
		field := "when"
		if len(s.When) > 1 {
			field = fmt.Sprintf("when[%d]", i)
		}
		add(field, w.Names())
	}
	if s.Loop != nil {
		if w := rt.of(s.Loop.Names()); len(w) > 0 {
			out = append(out, "loop reads "+strings.Join(w, ", "))
		}
	}
	if s.DelegateTemplate != nil {
		add("delegate_to", s.DelegateTemplate.Names())
	}
	for _, t := range sortedTemplates(s) {
		field := t.Name
		if field == "" {
			field = s.Module
		}
		add(field, t.Names())
	}
	for _, g := range []struct {
		field string
		p     *eval.Program
	}{{"until", s.Until}, {"failed_when", s.FailedWhen}, {"changed_when", s.ChangedWhen}} {
		if g.p != nil {
			add(g.field, g.p.Names())
		}
	}
	return out
}

// sortedTemplates are the argument templates of s in document order.
func sortedTemplates(s *spec.Step) []*eval.Template {
	out := make([]*eval.Template, 0, len(s.Templates))
	for _, t := range s.Templates {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return out
}

// CheckValues renders, before anything is touched, every template and
// expression of the runbook whose inputs the plan knows (vars, the inventory,
// -e, host, run), for every host of the plan, and decodes and validates each
// step's arguments with the rendered values through the path a run takes
// (spec.Step.CheckArgs), so that a value a module would refuse on a host is
// an error now rather than after hosts were changed. preflight, gates and
// post are checked once, with the vars the run gives them (the first host's).
// Templates that read facts, registered results or a step's own names wait
// for the run. The same error on several hosts is one diagnostic naming them.
func (p *Plan) CheckValues(opts CheckOptions) diag.Diags {
	rb := p.Runbook_
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
	host := eval.Host{Name: h.Name, Addr: h.Addr, Groups: h.Groups, Vars: h.Vars}
	if h.Inventory != nil {
		host = EvalHost(h.Inventory, h.Vars)
	}
	return &target{label: h.Name, vars: h.Vars, raw: c.rawVars(h), host: host, origin: c.origin(h), c: c}
}

// controllers are the targets of preflight, gates and post: the controller
// with the first host's vars, as the runner gives them. When the order is
// decided at the start of the run any host may come first, so each is tried.
func (c *checker) controllers() []*target {
	hosts := c.p.Hosts
	if len(hosts) == 0 {
		vars := MergeVars(c.p.Runbook_.Vars, c.p.ExtraVars)
		return []*target{{label: spec.Controller, ctrl: true, vars: vars, raw: vars, c: c, origin: c.origin(nil),
			host: eval.Host{Name: spec.Controller, Addr: "localhost", Vars: vars}}}
	}
	if !c.p.OrderAtStart {
		hosts = hosts[:1]
	}
	// Hosts whose values for what these phases read are the same check
	// alike: one of each (with many hosts and group vars, one in all).
	read := ctrlNames(c.p.Runbook_)
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
			host: eval.Host{Name: spec.Controller, Addr: "localhost", Vars: h.Vars},
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
	return MergeVars(c.p.Runbook_.Vars, inv, c.p.ExtraVars)
}

// origin says where the value a host sees for a variable was set.
func (c *checker) origin(h *Host) func(string) diag.Pos {
	if h != nil && h.Inventory != nil {
		return varPos(c.p.Runbook_, h.Inventory, c.p.ExtraVars)
	}
	return func(name string) diag.Pos {
		if _, ok := c.p.ExtraVars[name]; ok {
			return diag.Pos{File: "-e " + name}
		}
		return c.p.Runbook_.VarPos[name]
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

// add records err, found for t on step s. names are what the failing
// expression reads, when the caller knows; otherwise the names of the
// template at the error's position.
func (c *checker) add(s *spec.Step, eff inherited, err error, t *target, names []string) {
	var ee *eval.Error
	inside := errors.As(err, &ee) // an error inside a template, not about its value
	c.addDiags(s, eff, errDiags(s, err), t, names, inside)
}

// addDiags records diagnostics found for t on step s; see add.
func (c *checker) addDiags(s *spec.Step, eff inherited, ds diag.Diags, t *target, names []string, inside bool) {
	for _, d := range ds {
		if eff.noLog {
			// Its values may be secrets: say where, never what, as the run does.
			d.Summary = fmt.Sprintf("%s: a value here is not valid (%s)", s.Module, redact.CensoredError)
			d.Detail = ""
		}
		read := names
		if read == nil {
			read = templateNames(s, d.Pos, inside)
		}
		f := c.found[d]
		if f == nil {
			f = &finding{}
			c.found[d] = f
			c.order = append(c.order, d)
		}
		f.ctrl = t.ctrl
		if !slices.Contains(f.hosts, t.label) {
			f.hosts = append(f.hosts, t.label)
		}
		for _, o := range t.origins(read) {
			if !slices.Contains(f.origins, o) {
				f.origins = append(f.origins, o)
			}
		}
	}
}

// origins says where each var among names was set, and through a var
// written as a template, where the vars it reads were set:
// "state_dir is set at rb.yml:15:3 from demo_root, set by -e".
func (t *target) origins(names []string) []string {
	var out []string
	seen := map[string]bool{}
	var from func(name string, depth int) string
	from = func(name string, depth int) string {
		seen[name] = true
		text := name
		if w := where(t.origin(name)); w == "" && depth == 0 {
			text = name + " is a var"
		} else if depth == 0 {
			text = name + " is set " + w
		} else if w != "" {
			text = name + ", set " + w
		}
		if depth > 4 {
			return text
		}
		var parts []string
		for _, dep := range templateVars(t.raw[name]) {
			if _, isVar := t.vars[dep]; isVar && !seen[dep] {
				parts = append(parts, from(dep, depth+1))
			}
		}
		if len(parts) > 0 {
			text += " from " + strings.Join(parts, " and ")
		}
		return text
	}
	for _, n := range names {
		if _, isVar := t.vars[n]; isVar && !seen[n] {
			out = append(out, from(n, 0))
		}
	}
	return out
}

// templateVars returns the names the templates inside a var's value read.
func templateVars(v any) []string {
	set := map[string]bool{}
	walkStrings(v, func(s string) {
		if !eval.IsTemplate(s) {
			return
		}
		if t, _ := eval.ParseTemplate(s, diag.Pos{}, nil); t != nil {
			for _, n := range t.Names() {
				set[n] = true
			}
		}
	})
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func where(p diag.Pos) string {
	switch {
	case strings.HasPrefix(p.File, "-e "):
		return "by -e"
	case p.Line == 0:
		return "" // not known to the line: say nothing rather than something vague
	}
	return "at " + p.String()
}

// templateNames returns what the argument template at pos reads: an error
// in a rendered value points at the template it came from, an error of
// rendering (inside) at a place in it.
func templateNames(s *spec.Step, pos diag.Pos, inside bool) []string {
	if t := s.Templates[pos]; t != nil {
		return t.Names()
	}
	if inside {
		// The template that starts last at or before pos, and spans it.
		var in *eval.Template
		for _, t := range s.Templates {
			last := t.Pos.Line + strings.Count(t.Src, "\n")
			if t.Pos.File == pos.File && !before(pos, t.Pos) && pos.Line <= last && (in == nil || before(in.Pos, t.Pos)) {
				in = t
			}
		}
		if in == nil {
			return nil
		}
		return in.Names()
	}
	// An error about a key (Validate names the argument) is at the key: the
	// template is its value, the first one after it on the line, or the
	// first one below it.
	var best *eval.Template
	var bestPos diag.Pos
	for p, t := range s.Templates {
		if p.File != pos.File || before(p, pos) {
			continue
		}
		if best == nil || before(p, bestPos) {
			best, bestPos = t, p
		}
	}
	if best == nil || bestPos.Line > pos.Line+1 {
		return nil
	}
	return best.Names()
}

// before reports whether a comes before b in their file.
func before(a, b diag.Pos) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

// errDiags turns an error of rendering or decoding into diagnostics at their
// place in the runbook.
func errDiags(s *spec.Step, err error) diag.Diags {
	if ds, ok := diag.As(err); ok {
		return ds.Errors()
	}
	var ee *eval.Error
	if errors.As(err, &ee) {
		msg := ee.Err.Error()
		if ee.Name != "" {
			msg = fmt.Sprintf("%q: %s", ee.Name, msg)
		}
		if src := strings.Join(strings.Fields(ee.Src), " "); src != "" {
			msg += fmt.Sprintf(" (in `%s`)", src)
		}
		pos := ee.Pos
		if !pos.IsValid() {
			pos = s.Pos
		}
		return diag.Diags{{Severity: diag.Error, Pos: pos, Summary: msg}}
	}
	return diag.Diags{{Severity: diag.Error, Pos: s.Pos, Summary: err.Error()}}
}

// diags are the findings, each naming the hosts it was found for and where
// the variables it read were set.
func (c *checker) diags() diag.Diags {
	var out diag.Diags
	for _, d := range c.order {
		f := c.found[d]
		var extra []string
		switch {
		case !f.ctrl:
			extra = append(extra, "for "+strings.Join(f.hosts, ", "))
		case len(f.hosts) == 1:
			extra = append(extra, fmt.Sprintf("for the %s, with the vars of %s", spec.Controller, f.hosts[0]))
		default:
			extra = append(extra, fmt.Sprintf("for the %s, with the vars of %s (the first host, decided when the run starts)",
				spec.Controller, strings.Join(f.hosts, " or ")))
		}
		extra = append(extra, f.origins...)
		if d.Detail != "" {
			d.Detail += "; "
		}
		d.Detail += strings.Join(extra, "; ")
		out = append(out, d)
	}
	out.Sort()
	return out
}
