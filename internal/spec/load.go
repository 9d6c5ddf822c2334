package spec

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/expr-lang/expr/builtin"
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/input"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// LoadOptions are what the loader knows besides the file.
type LoadOptions struct {
	// Vars are the variables from the inventory and -e, merged over the
	// runbook's vars when expressions are checked. Nil when there is no
	// inventory: then an unknown bare name is not an error, since it may come
	// from an inventory at run time.
	Vars map[string]any
	// Extra declares more names for expressions, such as module facts (`etcd`).
	Extra map[string]any
	// VarOrigin says where the value of a var in Vars was set ("-e", or a
	// position in the inventory), for type errors that name the var; "" for
	// the runbook's own vars, which the loader knows.
	VarOrigin func(name string) string
	// ImportPath lists folders searched for imports (-I), after the
	// importing file's folder and the lib folder beside the runbook.
	ImportPath []string
	// Sources, when set, receives every imported file read, for printing
	// diagnostics, also when the load fails.
	Sources diag.Sources
}

// Load reads and loads the runbook at path; see LoadBytes.
func Load(path string, reg *modules.Registry, opts LoadOptions) (*Runbook, diag.Diags) {
	src, err := input.ReadFile(path)
	if err != nil {
		var ds diag.Diags
		ds.Errorf(diag.Pos{File: path}, "cannot read the runbook: %v", err)
		return nil, ds
	}
	return LoadBytes(path, src, reg, opts)
}

// LoadBytes loads the runbook src, named file in diagnostics. It reports every
// problem of the file at once, sorted by position, and returns the runbook
// only when there is no error (warnings may come with it). Each step's
// arguments are decoded into a fresh module from reg.
func LoadBytes(file string, src []byte, reg *modules.Registry, opts LoadOptions) (*Runbook, diag.Diags) {
	root, ds := Parse(file, src)
	if root == nil || ds.HasErrors() {
		ds.Sort()
		return nil, ds
	}
	l := &loader{
		file: file, src: src, reg: reg, opts: opts,
		d:        &arg.Decoder{File: file, Source: src},
		modules:  map[string]bool{},
		lines:    bytes.Count(src, []byte("\n")) + 1,
		rootFile: file,
		chains:   map[string][]diag.Pos{},
	}
	l.handlerScope = &handlerScope{file: file}
	if abs, err := filepath.Abs(file); err == nil {
		l.stack, l.stackNames = []string{abs}, []string{file}
	}
	for _, name := range reg.Names() {
		l.modules[name] = true
	}
	rb := l.runbook(root)
	rb.Imports = l.imports
	l.addChains(l.ds)
	ds.Append(l.ds)
	ds.Sort()
	if ds.HasErrors() {
		return nil, ds
	}
	return rb, ds
}

// loader holds the state of one load. Steps are read first, in document
// order, queueing their expressions; the expressions are compiled after, when
// every registered name is known, so that a name registered by a later step
// gets its own message.
type loader struct {
	file    string
	src     []byte
	reg     *modules.Registry
	opts    LoadOptions
	d       *arg.Decoder
	ds      diag.Diags
	modules map[string]bool

	lines   int            // lines in the file
	vars    map[string]any // runbook vars merged with opts.Vars
	varPos  map[string]diag.Pos
	seq     int
	regs    []registration
	compile []func()

	// imports: the runbook's file, the files being imported (absolute, and
	// as named), the positions of the imports that led to the file being
	// read (nearest first), the first such chain of each imported file, the
	// params of the imports being read (outermost first), and every file read.
	rootFile   string
	stack      []string
	stackNames []string
	chain      []diag.Pos
	chains     map[string][]diag.Pos
	params     []map[string]eval.Param
	imports    []Source

	// handlers: the scope of the file being read, every scope with
	// handlers in reading order, the notify: of steps, and whether the
	// steps being read are handlers.
	handlerScope  *handlerScope
	allHandlers   []*handlerScope
	notifications []notification
	inHandlers    bool

	// own is the name the step being compiled registers, while its until,
	// failed_when or changed_when is compiled: there it is the step's own
	// result, as in Ansible (register: out, failed_when: out.rc != 0).
	own string
}

// registration is a register: name and the step that sets it.
type registration struct {
	name string
	seq  int
	pos  diag.Pos
	// fact: a variable a set_fact step sets, seen by later steps as a var
	// (of any type), not as a registered result.
	fact bool
}

// fileKeys are the top-level keys of a runbook.
type fileKeys struct {
	Runbook        *yaml.Node `yaml:"runbook" runbook:"required"`
	Description    string     `yaml:"description"`
	Hosts          *yaml.Node `yaml:"hosts" runbook:"required"`
	Vars           *yaml.Node `yaml:"vars"`
	Serial         *yaml.Node `yaml:"serial"`
	Order          *yaml.Node `yaml:"order"`
	MaxFail        *yaml.Node `yaml:"max_fail"`
	OnAbort        *yaml.Node `yaml:"on_abort"`
	Preflight      *yaml.Node `yaml:"preflight"`
	Steps          *yaml.Node `yaml:"steps" runbook:"required"`
	Rollback       *yaml.Node `yaml:"rollback"`
	BetweenBatches *yaml.Node `yaml:"between_batches"`
	Post           *yaml.Node `yaml:"post"`
	Lock           *yaml.Node `yaml:"lock"`
	Handlers       *yaml.Node `yaml:"handlers"`
	Notify         *yaml.Node `yaml:"notify"`
	Window         *yaml.Node `yaml:"window"`
}

func (l *loader) pos(n *yaml.Node) diag.Pos { return l.d.Pos(n) }

// decodeKey decodes n into out, naming it key in messages.
func (l *loader) decodeKey(n *yaml.Node, out any, key string) {
	l.d.Within(key, func() {
		savedCtx := l.d.Context
		l.d.Context = ""
		l.d.DecodeValue(n, out, &l.ds)
		l.d.Context = savedCtx
	})
}

func (l *loader) runbook(root *yaml.Node) *Runbook {
	rb := &Runbook{File: l.file, Source: l.src, Pos: l.pos(root), Order: Order{Kind: OrderInventory}, OnAbort: OnAbortStop}
	if root.Kind != yaml.MappingNode {
		l.ds.Add(l.pos(root), fmt.Sprintf("a runbook must be a mapping, got %s", arg.Describe(root)),
			"start with the keys runbook, hosts and steps")
		return rb
	}
	var k fileKeys
	l.d.Decode(root, &k, &l.ds)
	rb.Description = k.Description

	if n := arg.Resolve(k.Runbook); n != nil {
		rb.NamePos = l.pos(n)
		l.decodeKey(n, &rb.Name, "runbook")
		if n.Kind == yaml.ScalarNode && strings.TrimSpace(rb.Name) == "" && n.ShortTag() != "!!null" {
			l.ds.Errorf(rb.NamePos, "\"runbook\" must be a name, got an empty string")
		}
	}
	if n := arg.Resolve(k.Hosts); n != nil {
		rb.HostsPos = l.pos(n)
		l.decodeKey(n, &rb.Hosts, "hosts")
		if n.Kind == yaml.ScalarNode && strings.TrimSpace(rb.Hosts) == "" && n.ShortTag() != "!!null" {
			l.ds.Add(rb.HostsPos, "\"hosts\" must be an inventory pattern, got an empty string", "for example: etcd, or all")
		}
	}
	l.loadVars(rb, arg.Resolve(k.Vars))
	if n := arg.Resolve(k.Serial); n != nil {
		rb.SerialPos = l.pos(n)
		l.decodeKey(n, &rb.Serial, "serial")
	}
	if n := arg.Resolve(k.MaxFail); n != nil {
		l.decodeKey(n, &rb.MaxFail, "max_fail")
	}
	if n := arg.Resolve(k.OnAbort); n != nil && n.ShortTag() != "!!null" {
		rb.OnAbortPos = l.pos(n)
		var s string
		l.decodeKey(n, &s, "on_abort")
		switch OnAbort(s) {
		case OnAbortStop, OnAbortRollbackCompleted:
			rb.OnAbort = OnAbort(s)
		default:
			if n.Kind == yaml.ScalarNode {
				l.ds.Add(rb.OnAbortPos, fmt.Sprintf("\"on_abort\" must be stop or rollback_completed, got %s", arg.Describe(n)),
					diag.Suggest(s, []string{string(OnAbortStop), string(OnAbortRollbackCompleted)}))
			}
		}
	}
	l.loadOrder(rb, arg.Resolve(k.Order))
	l.loadLock(rb, arg.Resolve(k.Lock))
	l.loadNotify(rb, arg.Resolve(k.Notify))
	if n := arg.Resolve(k.Window); n != nil {
		rb.Window = l.window(n, "window")
	}

	rb.Preflight = l.stepList(k.Preflight, "preflight", PhasePreflight, "preflight", false, false)
	rb.Steps = l.stepList(k.Steps, "steps", PhaseSteps, "steps", false, true)
	l.checkAhead(rb.Steps)
	if k.Rollback != nil {
		rb.Rollback = l.rollback(k.Rollback, "rollback", "rollback", PhaseRollback)
	}
	rb.BetweenBatches = l.stepList(k.BetweenBatches, "between_batches", PhaseBetweenBatches, "between_batches", false, false)
	rb.Post = l.stepList(k.Post, "post", PhasePost, "post", false, false)
	l.handlerList(k.Handlers, "handlers", l.handlerScope)
	l.resolveHandlers(rb)

	for _, f := range l.compile {
		f()
	}
	return rb
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// builtinNames are names expressions give a meaning of their own.
var builtinNames = []string{"host", "run", "result", "failed", "completed", "vars", "item", "loop_index"}

func (l *loader) loadVars(rb *Runbook, n *yaml.Node) {
	rb.Vars = map[string]any{}
	rb.VarPos = map[string]diag.Pos{}
	if n != nil && n.ShortTag() != "!!null" {
		if n.Kind != yaml.MappingNode {
			l.ds.Errorf(l.pos(n), "\"vars\" must be a mapping of names to values, got %s", arg.Describe(n))
		} else {
			for _, p := range l.d.Entries(n, &l.ds) {
				name, ok := l.d.KeyText(p.Key, &l.ds)
				if !ok {
					continue
				}
				switch {
				case !identRe.MatchString(name):
					l.ds.Add(l.pos(p.Key), fmt.Sprintf("var name %q is not a valid name", name),
						"use letters, digits and _, not starting with a digit, so expressions can use it")
					continue
				case contains(builtinNames, name):
					l.ds.Add(l.pos(p.Key), fmt.Sprintf("var name %q is reserved", name),
						"expressions already give it a meaning; choose another name")
					continue
				}
				var v any
				l.decodeKey(p.Value, &v, "vars."+name)
				rb.Vars[name] = v
				rb.VarPos[name] = l.pos(p.Key)
			}
		}
	}
	l.varPos = rb.VarPos
	l.vars = make(map[string]any, len(rb.Vars)+len(l.opts.Vars))
	for k, v := range rb.Vars {
		l.vars[k] = v
	}
	for k, v := range l.opts.Vars {
		l.vars[k] = v
	}
}

// varOrigin says where the value of var name that expressions are compiled
// against was set.
func (l *loader) varOrigin(name string) string {
	if l.opts.VarOrigin != nil {
		if o := l.opts.VarOrigin(name); o != "" {
			return o
		}
	}
	if p, ok := l.varPos[name]; ok {
		return p.String()
	}
	return ""
}

func (l *loader) loadOrder(rb *Runbook, n *yaml.Node) {
	if n == nil || n.ShortTag() == "!!null" {
		return
	}
	rb.Order.Pos = l.pos(n)
	if n.Kind != yaml.ScalarNode {
		l.ds.Add(l.pos(n), fmt.Sprintf("\"order\" must be inventory, reverse, shuffle or an expression, got %s", arg.Describe(n)), "")
		return
	}
	switch OrderKind(n.Value) {
	case OrderInventory, OrderReverse, OrderShuffle:
		rb.Order.Kind = OrderKind(n.Value)
		return
	}
	if s := diag.Suggest(n.Value, []string{"inventory", "reverse", "shuffle"}); s != "" && identRe.MatchString(n.Value) {
		l.ds.Add(l.pos(n), fmt.Sprintf("unknown order %q", n.Value), s)
		return
	}
	rb.Order.Kind = OrderExpr
	l.compile = append(l.compile, func() {
		rb.Order.Expr = l.expr(n, "order", l.env(0, false), eval.Any, nil)
	})
}

// stepList reads a list of steps. key names it in messages; id prefixes the
// step IDs.
func (l *loader) stepList(n *yaml.Node, key string, phase Phase, id string, failed, required bool) []*Step {
	if n == nil {
		return nil
	}
	r := arg.Resolve(n)
	if r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
		if required {
			l.ds.Errorf(l.pos(r), "%q must not be empty", key)
		}
		return nil
	}
	if r.Kind != yaml.SequenceNode {
		l.ds.Add(l.pos(r), fmt.Sprintf("%q must be a list of steps, got %s", key, arg.Describe(r)), "start each step with \"- \"")
		return nil
	}
	if len(r.Content) == 0 {
		if required {
			l.ds.Errorf(l.pos(r), "%q must not be empty", key)
		}
		return nil
	}
	out := make([]*Step, 0, len(r.Content))
	for i, c := range r.Content {
		if s := l.step(c, phase, fmt.Sprintf("%s[%d]", id, i), failed); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// rollback reads a `rollback:` value: a list of steps or `none`.
func (l *loader) rollback(n *yaml.Node, key, id string, phase Phase) Rollback {
	r := arg.Resolve(n)
	rb := Rollback{Pos: l.pos(r)}
	switch {
	case r.Kind == yaml.ScalarNode && r.ShortTag() == "!!str" && r.Value == "none":
		rb.None = true
	case r.Kind == yaml.SequenceNode && len(r.Content) == 0:
		l.ds.Add(rb.Pos, fmt.Sprintf("%q is an empty list", key),
			"write rollback: none to turn rollback off, or leave it out for the automatic undo")
	case r.Kind == yaml.SequenceNode:
		rb.Steps = l.stepList(r, key, phase, id, true, false)
	default:
		l.ds.Add(rb.Pos, fmt.Sprintf("%q must be a list of steps or none, got %s", key, arg.Describe(r)),
			"leave it out for the automatic undo of completed steps")
	}
	return rb
}

// env builds the compile env of the step at seq: every name registered
// before it is known.
func (l *loader) env(seq int, failed bool) *eval.Env {
	env := &eval.Env{Vars: l.vars, Strict: l.opts.Vars != nil, Failed: failed, Extra: l.opts.Extra, VarOrigin: l.varOrigin}
	seen := map[string]bool{}
	cloned := false
	for _, r := range l.regs {
		if r.seq < seq && !seen[r.name] {
			seen[r.name] = true
			if r.fact {
				if !cloned {
					env.Vars = make(map[string]any, len(l.vars)+1)
					for k, v := range l.vars {
						env.Vars[k] = v
					}
					cloned = true
				}
				env.Vars[r.name] = nil // any type
				continue
			}
			env.Registered = append(env.Registered, r.name)
		}
	}
	sort.Strings(env.Registered)
	return env
}

// later returns the names registered at seq or after and not before, with
// the first step that registers each.
func (l *loader) later(seq int) map[string]registration {
	known := map[string]bool{}
	for _, r := range l.regs {
		if r.seq < seq {
			known[r.name] = true
		}
	}
	out := map[string]registration{}
	for _, r := range l.regs {
		if r.seq >= seq && !known[r.name] {
			if _, ok := out[r.name]; !ok {
				out[r.name] = r
			}
		}
	}
	return out
}

// withLater returns env with the later names declared too, so that their use
// is reported once, by checkLater, and not again as an unknown name.
func withLater(env *eval.Env, later map[string]registration) *eval.Env {
	if len(later) == 0 {
		return env
	}
	e := *env
	e.Registered = append([]string(nil), env.Registered...)
	for name := range later {
		e.Registered = append(e.Registered, name)
	}
	sort.Strings(e.Registered)
	return &e
}

// expr compiles the expression in scalar n (whose key is name) for step s
// (nil outside steps). A bool scalar is a constant expression.
func (l *loader) expr(n *yaml.Node, name string, env *eval.Env, kind eval.Kind, s *Step) *eval.Program {
	n = arg.Resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.ds.Errorf(l.pos(n), "%q must be an expression, got %s", name, arg.Describe(n))
		return nil
	}
	if strings.HasPrefix(strings.TrimSpace(n.Value), "{{") {
		// A "{{" elsewhere is inside a string literal, or a syntax error that
		// the compiler reports.
		l.ds.Add(l.pos(n), fmt.Sprintf("%q is an expression; it needs no {{ }}", name),
			"write the expression itself, such as host.name == \"etcd-1\"")
		return nil
	}
	pos := l.d.ValuePos(n)
	seq := 0 // outside steps (order), nothing is registered yet
	if s != nil {
		seq = s.seq
	}
	later := l.later(seq)
	if l.own != "" {
		delete(later, l.own)
	}
	at := l.d.ValuePositions(n)
	l.checkLater(n.Value, 0, n.Value, textPos{pos, at}, s, later)
	env = withLater(env, later)
	p, ds := compileExpr(n.Value, pos, at, env, kind)
	l.ds.Append(l.bounded(ds, pos))
	if p != nil {
		p.Name = name
	}
	return p
}

// compileExpr compiles src, which starts at pos; at, when set, holds the
// position of each of its runes (a folded scalar).
func compileExpr(src string, pos diag.Pos, at []diag.Pos, env *eval.Env, kind eval.Kind) (*eval.Program, diag.Diags) {
	if at != nil {
		return eval.CompileMapped(src, at, env, kind)
	}
	return eval.Compile(src, pos, env, kind)
}

// template compiles the templated scalar n (whose key is name) for step s.
func (l *loader) template(n *yaml.Node, name string, env *eval.Env, s *Step) *eval.Template {
	pos := l.d.ValuePos(n)
	later := l.later(s.seq)
	at := l.d.ValuePositions(n)
	for _, part := range templateParts(n.Value) {
		l.checkLater(n.Value, part.off, part.src, textPos{pos, at}, s, later)
	}
	var t *eval.Template
	var ds diag.Diags
	if at != nil {
		t, ds = eval.ParseTemplateMapped(n.Value, at, withLater(env, later))
	} else {
		t, ds = eval.ParseTemplate(n.Value, pos, withLater(env, later))
	}
	l.ds.Append(l.bounded(ds, pos))
	if t != nil {
		t.Name = name
	}
	return t
}

// checkLater reports the names in the expression src that only a later step
// (or s itself; any step when s is nil) registers. src starts at rune offset off of text, which starts
// at pos in the file.
func (l *loader) checkLater(text string, off int, src string, pos textPos, s *Step, later map[string]registration) {
	if len(later) == 0 {
		return
	}
	for _, id := range identifiers(src) {
		r, ok := later[id.name]
		if !ok {
			continue
		}
		at := pos.of(text, off+id.off)
		if at.Line > l.lines {
			at = pos.start
		}
		if s == nil {
			l.ds.Add(at, fmt.Sprintf("%q is registered by a step (line %d)", id.name, r.pos.Line),
				"hosts are ordered before any step runs")
			continue
		}
		if r.fact {
			l.ds.Add(at, fmt.Sprintf("%q is set by the set_fact at line %d, so it is not known here yet", id.name, r.pos.Line),
				"a step sees the facts that earlier steps set")
			continue
		}
		if r.seq == s.seq {
			l.ds.Add(at, fmt.Sprintf("%q is registered by this step, so it is not known yet", id.name),
				"only its until, failed_when and changed_when see it (the result being judged, as result)")
			continue
		}
		l.ds.Add(at, fmt.Sprintf("%q is registered by a later step (line %d)", id.name, r.pos.Line),
			"a step can use only what earlier steps registered")
	}
}

// bounded moves diagnostics that fall past the end of the file to start.
// Positions inside an expression count its lines from where it starts, which
// is exact for plain text and block scalars but not for a "..." scalar whose
// escapes (\n) make lines the file does not have.
func (l *loader) bounded(ds diag.Diags, start diag.Pos) diag.Diags {
	for i := range ds {
		if ds[i].Pos.Line > l.lines {
			ds[i].Pos = start
		}
	}
	return ds
}

// reservedRegister returns why name cannot be registered, or "".
func (l *loader) reservedRegister(name string) string {
	if contains(builtinNames, name) {
		return "expressions already give it a meaning"
	}
	for _, f := range eval.Functions() {
		if f.Name == name {
			return "it is the name of a function"
		}
	}
	if contains(builtin.Names, name) {
		return "it is the name of a function"
	}
	if _, ok := l.vars[name]; ok {
		return "a var has that name"
	}
	if _, ok := l.opts.Extra[name]; ok {
		return "a module fact has that name"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
