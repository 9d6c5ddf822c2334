package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// stepFields are the keys every step may have besides its module.
var stepFields = []string{
	"name", "when", "retries", "delay", "until", "timeout", "register", "failed_when",
	"changed_when", "ignore_errors", "run_once", "delegate_to", "become", "become_user",
	"no_log", "tags", "loop", "notify", "window", "ahead",
}

// notOnBlock are the fields about one module's result, which mean nothing on a block.
var notOnBlock = []string{"register", "retries", "delay", "until", "failed_when", "changed_when", "timeout", "notify"}

// step reads one step. It returns nil when the node is not a mapping at all.
func (l *loader) step(n *yaml.Node, phase Phase, id string, failed bool) *Step {
	r := arg.Resolve(n)
	if r.Kind != yaml.MappingNode {
		l.ds.Add(l.pos(r), fmt.Sprintf("a step must be a mapping, got %s", arg.Describe(r)),
			"write a module and its arguments, such as - stop: { service: etcd }")
		return nil
	}
	s := &Step{ID: id, Phase: phase, Pos: l.pos(r), seq: l.seq, file: l.file, src: l.src, params: l.params}
	l.seq++

	var (
		modules  []*yaml.Node // keys naming a module
		args     []*yaml.Node
		block    *yaml.Node
		rollback *yaml.Node
		rbKey    *yaml.Node
		imp      *arg.Pair
		impVars  *arg.Pair
		fields   = map[string]arg.Pair{}
		unknown  []*yaml.Node
	)
	for _, p := range l.d.Entries(r, &l.ds) {
		k, ok := l.d.KeyText(p.Key, &l.ds)
		if !ok {
			continue
		}
		switch {
		case contains(stepFields, k):
			fields[k] = p
		case k == "block":
			block = p.Value
		case k == "rollback":
			rollback, rbKey = p.Value, p.Key
		case k == "import":
			imp = &p
		case k == "vars" && hasKey(r, "import"):
			impVars = &p
		case l.modules[k]:
			modules = append(modules, p.Key)
			args = append(args, p.Value)
		default:
			unknown = append(unknown, p.Key)
		}
	}
	l.unknownStepKeys(unknown, modules, fields)

	switch {
	case len(modules) > 1:
		names := make([]string, len(modules))
		for i, m := range modules {
			names[i] = fmt.Sprintf("%q", arg.Resolve(m).Value)
		}
		what := "two"
		if len(names) > 2 {
			what = fmt.Sprint(len(names))
		}
		l.ds.Add(s.Pos, fmt.Sprintf("step has %s modules, %s and %s", what, strings.Join(names[:len(names)-1], ", "), names[len(names)-1]),
			"a step runs exactly one module; make one step for each")
	case len(modules) == 1 && block != nil:
		l.ds.Add(s.Pos, fmt.Sprintf("step has both a module (%q) and a block", arg.Resolve(modules[0]).Value),
			"move the module into the block as a step of its own")
	case imp != nil && (len(modules) > 0 || block != nil):
		l.ds.Add(s.Pos, "step has both an import and a module or block",
			"an import is a step of its own")
		imp = nil
	case len(modules) == 0 && block == nil && imp == nil && len(unknown) == 0:
		l.ds.Add(s.Pos, "step has no module", "expected one of: "+strings.Join(l.reg.Names(), ", "))
	}
	if rollback != nil && block == nil && imp != nil {
		l.ds.Add(l.pos(rbKey), "\"rollback\" cannot be on an import",
			"put the rollback in the imported file (rollback: beside its steps)")
	} else if rollback != nil && block == nil {
		l.ds.Add(l.pos(rbKey), "\"rollback\" is only allowed on a block",
			"the runbook's own rollback: goes at the top level")
	}

	if len(modules) > 0 {
		s.Module = arg.Resolve(modules[0]).Value
		s.ModulePos = l.pos(modules[0])
		s.Args = arg.Resolve(args[0])
	}
	if p, ok := fields["loop"]; ok && (block != nil || imp != nil) {
		l.ds.Add(l.pos(p.Key), "\"loop\" is for steps", "put it on each step of the block")
		delete(fields, "loop")
	}
	l.commonFields(s, fields, failed)
	l.readAhead(s, fields, phase, id, block != nil || imp != nil)
	if block != nil || imp != nil {
		for _, f := range notOnBlock {
			if p, ok := fields[f]; ok {
				l.ds.Add(l.pos(p.Key), fmt.Sprintf("%q cannot be used on a block", f), "put it on a step inside the block")
			}
		}
	}
	if imp != nil {
		var vars *yaml.Node
		if impVars != nil {
			vars = impVars.Value
		}
		l.importStep(s, imp.Key, imp.Value, vars, phase, id, failed)
	}
	if block != nil {
		s.Block = l.stepList(block, "block", phase, id+".block", failed, true)
		if rollback != nil {
			rb := l.rollback(rollback, "rollback", id+".rollback", phase)
			s.Rollback = &rb
		}
	}
	if s.Name == "" {
		s.Name = defaultName(s)
	}
	if len(modules) == 1 && block == nil {
		l.compile = append(l.compile, func() { l.moduleArgs(s, failed) })
	}
	return s
}

// unknownStepKeys reports keys that are neither a field nor a module, with a
// suggestion drawn from both (only from fields once the step has a module).
func (l *loader) unknownStepKeys(unknown, modules []*yaml.Node, fields map[string]arg.Pair) {
	var unusedFields []string
	for _, f := range stepFields {
		if _, set := fields[f]; !set {
			unusedFields = append(unusedFields, f)
		}
	}
	names := l.reg.Names()
	for _, k := range unknown {
		name := arg.Resolve(k).Value
		if len(modules) > 0 {
			l.ds.Add(l.pos(k), fmt.Sprintf("unknown key %q in step", name), diag.Suggest(name, unusedFields))
			continue
		}
		cands := append(append([]string(nil), names...), unusedFields...)
		cands = append(cands, "block")
		s := diag.Suggest(name, cands)
		switch {
		case s == "" && len(unknown) == 1:
			l.ds.Add(l.pos(k), fmt.Sprintf("unknown module %q", name), "expected one of: "+strings.Join(names, ", "))
		case s == "" || contains(names, arg.Suggested(s)):
			l.ds.Add(l.pos(k), fmt.Sprintf("unknown module %q", name), s)
		default:
			l.ds.Add(l.pos(k), fmt.Sprintf("unknown key %q in step", name), s)
		}
	}
}

// commonFields reads the fields every step may have. Expressions are queued
// for compiling once every registered name is known.
func (l *loader) commonFields(s *Step, fields map[string]arg.Pair, failed bool) {
	get := func(name string) (*yaml.Node, *yaml.Node, bool) {
		p, ok := fields[name]
		if !ok {
			return nil, nil, false
		}
		return p.Key, arg.Resolve(p.Value), true
	}
	// First: the other fields see item when the step has a loop.
	if _, v, ok := get("loop"); ok {
		s.Loop = l.loop(v, s, failed)
	}
	if _, v, ok := get("name"); ok {
		s.NamePos = l.pos(v)
		l.decodeKey(v, &s.Name, "name")
		if arg.IsTemplateScalar(v) {
			l.compile = append(l.compile, func() { s.NameTemplate = l.template(v, "name", l.stepEnv(s, failed), s) })
		}
	}
	if _, v, ok := get("when"); ok {
		l.compile = append(l.compile, func() { s.When = l.when(v, s, failed) })
	}
	if _, v, ok := get("retries"); ok {
		l.decodeKey(v, &s.Retries, "retries")
		if s.Retries < 0 {
			l.ds.Errorf(l.pos(v), "\"retries\" must not be negative, got %d", s.Retries)
		}
	}
	if _, v, ok := get("delay"); ok {
		l.decodeKey(v, &s.Delay, "delay")
	}
	if k, v, ok := get("until"); ok {
		if _, hasRetries := fields["retries"]; !hasRetries {
			l.ds.Add(l.pos(k), "\"until\" needs \"retries\"",
				"add retries: N to try the step up to N more times until the condition holds")
		}
		l.compile = append(l.compile, func() { s.Until = l.resultExpr(v, "until", s, failed) })
	}
	if _, v, ok := get("timeout"); ok {
		l.decodeKey(v, &s.Timeout, "timeout")
	}
	if _, v, ok := get("register"); ok {
		l.register(s, v)
	}
	if _, v, ok := get("notify"); ok {
		l.readNotify(s, v, failed)
	}
	if _, v, ok := get("failed_when"); ok {
		l.compile = append(l.compile, func() { s.FailedWhen = l.resultExpr(v, "failed_when", s, failed) })
	}
	if _, v, ok := get("changed_when"); ok {
		l.compile = append(l.compile, func() { s.ChangedWhen = l.resultExpr(v, "changed_when", s, failed) })
	}
	for name, target := range map[string]*bool{
		"ignore_errors": &s.IgnoreErrors, "run_once": &s.RunOnce, "become": &s.Become, "no_log": &s.NoLog,
	} {
		if _, v, ok := get(name); ok {
			l.decodeKey(v, target, name)
		}
	}
	if _, v, ok := get("become_user"); ok {
		l.decodeKey(v, &s.BecomeUser, "become_user")
	}
	if _, v, ok := get("delegate_to"); ok {
		s.DelegatePos = l.pos(v)
		l.decodeKey(v, &s.DelegateTo, "delegate_to")
		switch {
		case arg.IsTemplateScalar(v):
			l.compile = append(l.compile, func() { s.DelegateTemplate = l.template(v, "delegate_to", l.stepEnv(s, failed), s) })
		case v.Kind == yaml.ScalarNode && strings.TrimSpace(s.DelegateTo) == "" && v.ShortTag() != "!!null":
			l.ds.Add(s.DelegatePos, "\"delegate_to\" must name a host, got an empty string", "use controller for this machine")
		}
	}
	if _, v, ok := get("window"); ok {
		s.Window = l.window(v, "window")
	}
	if _, v, ok := get("tags"); ok {
		var tags arg.StringList
		l.decodeKey(v, &tags, "tags")
		for i, t := range tags {
			if strings.TrimSpace(t) == "" {
				l.ds.Errorf(l.pos(v), "\"tags[%d]\" must not be empty", i)
			}
		}
		s.Tags = tags
	}
}

// stepEnv is the compile env of step s's own fields: with item and loop_index
// when it has a loop.
func (l *loader) stepEnv(s *Step, failed bool) *eval.Env {
	env := l.env(s.seq, failed)
	env.Loop = s.Loop != nil
	env.Params = mergeParams(s.params)
	return env
}

// when compiles a `when`: an expression, true/false, or a list of them, all of
// which must hold.
func (l *loader) when(v *yaml.Node, s *Step, failed bool) []*eval.Program {
	env := l.stepEnv(s, failed)
	if v.Kind == yaml.SequenceNode {
		if len(v.Content) == 0 {
			l.ds.Add(l.pos(v), "\"when\" is an empty list", "remove it, or list expressions that must all hold")
			return nil
		}
		var out []*eval.Program
		for i, c := range v.Content {
			if p := l.expr(c, fmt.Sprintf("when[%d]", i), env, eval.Bool, s); p != nil {
				out = append(out, p)
			}
		}
		return out
	}
	if v.Kind == yaml.MappingNode {
		l.ds.Errorf(l.pos(v), "\"when\" must be an expression, true or false, or a list of expressions, got a mapping")
		return nil
	}
	if p := l.expr(v, "when", env, eval.Bool, s); p != nil {
		return []*eval.Program{p}
	}
	return nil
}

// resultExpr compiles a Bool expression that sees the step's result.
func (l *loader) resultExpr(v *yaml.Node, name string, s *Step, failed bool) *eval.Program {
	env := l.stepEnv(s, failed)
	env.Result = true
	if s.Register != "" {
		e := *env
		e.Registered = append(append([]string(nil), env.Registered...), s.Register)
		env = &e
		l.own = s.Register
		defer func() { l.own = "" }()
	}
	return l.expr(v, name, env, eval.Bool, s)
}

func (l *loader) register(s *Step, v *yaml.Node) {
	s.RegisterPos = l.pos(v)
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		l.ds.Errorf(s.RegisterPos, "\"register\" must be a name, got %s", arg.Describe(v))
		return
	}
	name := v.Value
	if !identRe.MatchString(name) {
		detail := "use letters, digits and _, not starting with a digit"
		if fixed := strings.NewReplacer("-", "_", ".", "_", " ", "_").Replace(name); identRe.MatchString(fixed) {
			detail = fmt.Sprintf("did you mean %q?", fixed)
		}
		l.ds.Add(s.RegisterPos, fmt.Sprintf("\"register\" must be a name usable in expressions, got %q", name), detail)
		return
	}
	if why := l.reservedRegister(name); why != "" {
		l.ds.Add(s.RegisterPos, fmt.Sprintf("cannot register %q: %s", name, why), "choose another name")
		return
	}
	s.Register = name
	l.regs = append(l.regs, registration{name: name, seq: s.seq, pos: s.RegisterPos})
}

// moduleArgs decodes the step's arguments strictly into a fresh value of the
// module's type, compiling templates and Expr arguments, and validates them
// when none is templated.
func (l *loader) moduleArgs(s *Step, failed bool) {
	args, ok := l.reg.NewArgs(s.Module)
	if !ok {
		return
	}
	env := l.stepEnv(s, failed)
	s.env = env
	templated := false
	d := &arg.Decoder{File: l.file, Source: l.src, Context: s.Module}
	d.OnTemplate = func(n *yaml.Node) {
		templated = true
		name := d.Path()
		if name == "" {
			name = s.Module
		}
		if t := l.template(n, name, env, s); t != nil {
			if s.Templates == nil {
				s.Templates = map[diag.Pos]*eval.Template{}
			}
			s.Templates[l.pos(n)] = t
		}
	}
	d.OnExpr = func(e *arg.Expr, key string) {
		e.Program = l.argExpr(e, key, args, s, env)
		if e.Program != nil {
			if s.exprs == nil {
				s.exprs = map[diag.Pos]*eval.Program{}
			}
			s.exprs[e.Pos] = e.Program
		}
	}
	var ds diag.Diags
	d.Decode(s.Args, args, &ds)
	l.ds.Append(ds)
	if vs, ok := args.(modules.VarSetter); ok && !ds.HasErrors() {
		for _, name := range vs.SetsVars() {
			s.SetsVars = append(s.SetsVars, name)
			l.regs = append(l.regs, registration{name: name, seq: s.seq, pos: l.pos(s.Args), fact: true})
		}
	}
	if ds.HasErrors() || templated {
		return
	}
	var vds diag.Diags
	validateArgs(d, s, args, &vds)
	l.ds.Append(vds)
	if !vds.HasErrors() {
		s.Literal = args
	}
}

// argExpr compiles an Expr argument: a Bool that sees result and the names the
// module declares for that key.
func (l *loader) argExpr(e *arg.Expr, key string, args modules.Module, s *Step, env *eval.Env) *eval.Program {
	ee := exprEnv(env, key, args)
	later := l.later(s.seq)
	l.checkLater(e.Src, 0, e.Src, textPos{e.Pos, e.Positions()}, s, later)
	p, ds := compileExpr(e.Src, e.Pos, e.Positions(), withLater(ee, later), eval.Bool)
	l.ds.Append(l.bounded(ds, e.Pos))
	if p != nil {
		p.Name = key
	}
	return p
}

// exprEnv is the env of an Expr argument: the step's, with result and the
// names the module declares.
func exprEnv(env *eval.Env, key string, args modules.Module) *eval.Env {
	e := *env
	e.Result = true
	if namer, ok := args.(modules.ExprNamer); ok {
		if names := namer.ExprNames(key); len(names) > 0 {
			if _, own := names["result"]; own {
				// The module gives result a type of its own (analysis: the
				// number a query measured), not the step's result map.
				e.Result = false
			}
			e.Extra = make(map[string]any, len(env.Extra)+len(names))
			for k, v := range env.Extra {
				e.Extra[k] = v
			}
			for k, v := range names {
				e.Extra[k] = v
			}
		}
	}
	return &e
}

// validateArgs runs the arguments' Validate, if any, and points an error at
// the key a *modules.FieldError names (a dotted name, "etcd.dest", names a
// nested key).
func validateArgs(d *arg.Decoder, s *Step, args modules.Module, ds *diag.Diags) {
	v, ok := args.(modules.Validator)
	if !ok {
		return
	}
	err := v.Validate()
	if err == nil {
		return
	}
	pos := d.Pos(s.Args)
	if s.Args == nil || s.Args.ShortTag() == "!!null" {
		pos = s.ModulePos
	}
	var fe *modules.FieldError
	if errors.As(err, &fe) {
		if k := findKey(d, s.Args, fe.Field); k != nil {
			pos = d.Pos(k)
		}
	}
	ds.Errorf(pos, "%s: %v", s.Module, err)
}

// findKey returns the key node at a dotted path in mapping n, or nil.
func findKey(d *arg.Decoder, n *yaml.Node, path string) *yaml.Node {
	var key *yaml.Node
	var ignored diag.Diags
	for _, part := range strings.Split(path, ".") {
		n = arg.Resolve(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		found := false
		for _, p := range d.Entries(n, &ignored) {
			if r := arg.Resolve(p.Key); r != nil && r.Value == part {
				key, n, found = p.Key, p.Value, true
				break
			}
		}
		if !found {
			return nil
		}
	}
	return key
}

// defaultName is a step's name when none is given: the module and its main
// argument when that is a plain scalar ("stop etcd"), else the module, or
// "block".
func defaultName(s *Step) string {
	if s.Module == "" && s.Import != nil {
		return "import " + filepath.Base(s.Import.File)
	}
	if s.Module == "" {
		return "block"
	}
	main := ""
	if a := arg.Resolve(s.Args); a != nil {
		switch {
		case a.Kind == yaml.ScalarNode:
			main = a.Value
		case a.Kind == yaml.MappingNode && len(a.Content) >= 2:
			if v := arg.Resolve(a.Content[1]); v != nil && v.Kind == yaml.ScalarNode {
				main = v.Value
			}
		}
	}
	main = strings.Join(strings.Fields(main), " ")
	if main == "" || strings.Contains(main, "{{") {
		return s.Module
	}
	if r := []rune(main); len(r) > 50 {
		main = string(r[:49]) + "…"
	}
	return s.Module + " " + main
}

// hasKey reports whether mapping n has key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := arg.Resolve(n.Content[i]); k != nil && k.Value == key {
			return true
		}
	}
	return false
}
