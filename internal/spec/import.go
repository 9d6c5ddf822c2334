package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/input"
	"github.com/runbookhq/runbook/modules/arg"
)

// An import step (`- import: lib/restart.yml` with `vars:`) becomes a block
// whose steps are the imported file's, read where the import is written:
// every error in them is reported at the imported file's own line, with the
// chain of imports that led there. The file's params are bound when its steps
// are compiled (eval.Param), so nothing of an import is left for the runner.

// Import says where a block's steps came from.
type Import struct {
	File string   // the imported file, as found
	Pos  diag.Pos // the import: value
	// Params are the values the import binds, defaults included, by name.
	Params map[string]eval.Param
}

// Source is a file the runbook was read from besides its own.
type Source struct {
	File   string
	Source []byte
}

// LibDir is the folder beside the runbook searched for imports after the
// importing file's own folder and before -I folders.
const LibDir = "lib"

// importKeys are the top-level keys of an imported file given as a mapping; a
// file that is a list is its steps.
type importKeys struct {
	Description string     `yaml:"description"`
	Params      *yaml.Node `yaml:"params"`
	Steps       *yaml.Node `yaml:"steps" runbook:"required"`
	Rollback    *yaml.Node `yaml:"rollback"`
	Handlers    *yaml.Node `yaml:"handlers"`
}

// paramDecl is one entry of an imported file's params:.
type paramDecl struct {
	name     string
	pos      diag.Pos
	typ      string
	required bool
	def      *yaml.Node // nil: no default
}

var paramTypes = []string{"any", "string", "int", "number", "bool", "list", "map", "duration"}

// fileCtx is what positions are read against: the file being read.
type fileCtx struct {
	file  string
	src   []byte
	d     *arg.Decoder
	lines int
}

func (l *loader) ctx() fileCtx { return fileCtx{l.file, l.src, l.d, l.lines} }

func (l *loader) enter(c fileCtx) (restore func()) {
	saved := l.ctx()
	l.file, l.src, l.d, l.lines = c.file, c.src, c.d, c.lines
	return func() { l.file, l.src, l.d, l.lines = saved.file, saved.src, saved.d, saved.lines }
}

// importStep reads the import of step s (key k, value v, vars: node vars) into
// s.Block and s.Rollback.
func (l *loader) importStep(s *Step, k, v, vars *yaml.Node, phase Phase, id string, failed bool) {
	v = arg.Resolve(v)
	s.ModulePos = l.pos(k)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || strings.TrimSpace(v.Value) == "" {
		l.ds.Add(l.pos(v), fmt.Sprintf("\"import\" must be the path of a file of steps, got %s", arg.Describe(v)),
			"such as import: lib/restart-service.yml")
		return
	}
	if strings.Contains(v.Value, "{{") {
		l.ds.Add(l.pos(v), "\"import\" cannot be a template",
			"imports are read when the runbook is loaded, before any var has a value; pass values with vars:")
		return
	}
	path, tried := l.findImport(v.Value)
	if path == "" {
		l.ds.Add(l.pos(v), fmt.Sprintf("cannot find %q to import", v.Value), "looked in: "+strings.Join(tried, ", "))
		return
	}
	abs, _ := filepath.Abs(path)
	for i, f := range l.stack {
		if f == abs {
			cycle := append(append([]string(nil), l.stackNames[i:]...), path)
			l.ds.Add(l.pos(v), "import cycle: "+strings.Join(cycle, " imports "),
				"a file cannot import itself, directly or through other files")
			return
		}
	}
	if len(l.stack) >= maxImportDepth {
		l.ds.Add(l.pos(v), fmt.Sprintf("imports nest deeper than %d files", maxImportDepth), "")
		return
	}
	src, err := input.ReadFile(path)
	if err != nil {
		l.ds.Add(l.pos(v), fmt.Sprintf("cannot read %s: %v", path, err), "")
		return
	}
	if l.opts.Sources != nil {
		l.opts.Sources[path] = src
	}
	l.imports = append(l.imports, Source{File: path, Source: src})
	imp := &Import{File: path, Pos: l.pos(v), Params: map[string]eval.Param{}}
	s.Import = imp
	if s.Name == "" {
		s.Name = "import " + v.Value
	}

	// The chain is recorded by file: diagnostics there get it when the load ends.
	chain := append([]diag.Pos{l.pos(v)}, l.chain...)
	if _, ok := l.chains[path]; !ok {
		l.chains[path] = chain
	}

	root, pds := Parse(path, src)
	l.ds.Append(withChain(pds, chain))
	if root == nil || pds.HasErrors() {
		return
	}
	inner := fileCtx{file: path, src: src, d: &arg.Decoder{File: path, Source: src}, lines: bytes.Count(src, []byte("\n")) + 1}

	// The import's vars are read and compiled where the import is written,
	// before the imported steps, whose compiling uses them.
	given := l.importVars(vars, s, failed)

	restore := l.enter(inner)
	var keys importKeys
	var stepsNode *yaml.Node
	if r := arg.Resolve(root); r.Kind == yaml.SequenceNode {
		stepsNode = r
	} else if r.Kind == yaml.MappingNode {
		l.d.Decode(r, &keys, &l.ds)
		stepsNode = keys.Steps
	} else {
		l.ds.Add(l.pos(r), fmt.Sprintf("an imported file must be a list of steps or a mapping with steps:, got %s", arg.Describe(r)), "")
		restore()
		return
	}
	decls := l.paramDecls(arg.Resolve(keys.Params))
	restore()

	l.bindParams(s, imp, given, decls, path, inner, failed)

	restore = l.enter(inner)
	savedParams, savedChain := l.params, l.chain
	l.params, l.chain = append(l.params[:len(l.params):len(l.params)], imp.Params), chain
	l.stack = append(l.stack, abs)
	l.stackNames = append(l.stackNames, path)
	start := len(l.compile)
	savedScope := l.handlerScope
	l.handlerScope = &handlerScope{parent: savedScope, file: path}
	s.Block = l.stepList(stepsNode, "steps", phase, id+".import", failed, true)
	if keys.Rollback != nil {
		rb := l.rollback(keys.Rollback, "rollback", id+".import.rollback", phase)
		s.Rollback = &rb
	}
	if keys.Handlers != nil {
		if phase != PhaseSteps || failed {
			l.ds.Add(l.pos(keys.Handlers), fmt.Sprintf("handlers of a file imported in %s never run", phase),
				"import it from steps:, or leave its handlers out")
		} else {
			l.handlerList(keys.Handlers, id+".import.handlers", l.handlerScope)
		}
	}
	l.handlerScope = savedScope
	// What the imported steps queued compiles against their own file.
	for i := start; i < len(l.compile); i++ {
		f := l.compile[i]
		l.compile[i] = func() {
			restore := l.enter(inner)
			defer restore()
			f()
		}
	}
	l.stack = l.stack[:len(l.stack)-1]
	l.stackNames = l.stackNames[:len(l.stackNames)-1]
	l.params, l.chain = savedParams, savedChain
	restore()
}

const maxImportDepth = 16

// findImport resolves name: absolute, or relative to the importing file's
// folder, then LibDir beside the runbook, then each -I folder.
func (l *loader) findImport(name string) (string, []string) {
	if filepath.IsAbs(name) {
		return existing(name), []string{name}
	}
	dirs := []string{filepath.Dir(l.file), filepath.Join(filepath.Dir(l.rootFile), LibDir)}
	dirs = append(dirs, l.opts.ImportPath...)
	var tried []string
	seen := map[string]bool{}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if seen[p] {
			continue
		}
		seen[p] = true
		tried = append(tried, p)
		if f := existing(p); f != "" {
			return f, tried
		}
	}
	return "", tried
}

func existing(p string) string {
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// given is one var an import passes.
type given struct {
	name     string
	key      diag.Pos
	valuePos diag.Pos
	value    *yaml.Node
	tmpl     *eval.Template // set by a queued compile when templated
	lit      any
}

// importVars reads the import's vars: in the importing file's context; a
// templated value is compiled in the queue, in order, before the imported
// steps' own expressions.
func (l *loader) importVars(n *yaml.Node, s *Step, failed bool) []*given {
	n = arg.Resolve(n)
	if n == nil || n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.ds.Errorf(l.pos(n), "\"vars\" of an import must be a mapping of param names to values, got %s", arg.Describe(n))
		return nil
	}
	var out []*given
	for _, p := range l.d.Entries(n, &l.ds) {
		name, ok := l.paramName(p.Key)
		if !ok {
			continue
		}
		g := &given{name: name, key: l.pos(p.Key), valuePos: l.pos(p.Value), value: arg.Resolve(p.Value)}
		if hasTemplate(g.value, 0) {
			if !arg.IsTemplateScalar(g.value) {
				l.ds.Add(g.valuePos, fmt.Sprintf("param %q: a template must be a whole string value", name),
					"write the list or mapping as one expression, such as '{{ [a, b] }}'")
				continue
			}
			outer := l.ctx()
			l.compile = append(l.compile, func() {
				restore := l.enter(outer)
				defer restore()
				g.tmpl = l.template(g.value, "vars."+name, l.stepEnv(s, failed), s)
			})
		} else {
			l.decodeKey(g.value, &g.lit, "vars."+name)
		}
		out = append(out, g)
	}
	return out
}

// paramDecls reads an imported file's params:, in the imported file's
// context. A nil result with no error means the file declares none: then the
// import may pass any name.
func (l *loader) paramDecls(n *yaml.Node) []*paramDecl {
	if n == nil || n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.ds.Errorf(l.pos(n), "\"params\" must be a mapping of names to declarations, got %s", arg.Describe(n))
		return nil
	}
	out := []*paramDecl{}
	for _, p := range l.d.Entries(n, &l.ds) {
		name, ok := l.paramName(p.Key)
		if !ok {
			continue
		}
		d := &paramDecl{name: name, pos: l.pos(p.Key), typ: "any"}
		v := arg.Resolve(p.Value)
		if v.Kind != yaml.MappingNode {
			// name: value is a default of any type.
			if v.ShortTag() != "!!null" {
				d.def = v
			}
			out = append(out, d)
			continue
		}
		var decl struct {
			Type        string     `yaml:"type"`
			Required    bool       `yaml:"required"`
			Default     *yaml.Node `yaml:"default"`
			Description string     `yaml:"description"`
		}
		l.decodeKey(v, &decl, "params."+name)
		if decl.Type != "" {
			if !contains(paramTypes, decl.Type) {
				l.ds.Add(l.pos(v), fmt.Sprintf("param %q: unknown type %q", name, decl.Type),
					diag.Suggest(decl.Type, paramTypes)+"; one of: "+strings.Join(paramTypes, ", "))
			} else {
				d.typ = decl.Type
			}
		}
		d.required = decl.Required
		if decl.Default != nil {
			d.def = arg.Resolve(decl.Default)
			if d.required {
				l.ds.Add(l.pos(decl.Default), fmt.Sprintf("param %q is required and has a default", name),
					"drop one: a default makes it optional")
			}
		}
		out = append(out, d)
	}
	return out
}

// bindParams checks the given vars against the declarations and fills
// imp.Params: given values, then defaults. Templated values and defaults are
// bound by queued compiles, before the imported steps compile.
func (l *loader) bindParams(s *Step, imp *Import, gv []*given, decls []*paramDecl, path string, inner fileCtx, failed bool) {
	byName := map[string]*paramDecl{}
	var names []string
	for _, d := range decls {
		byName[d.name] = d
		names = append(names, d.name)
	}
	seen := map[string]bool{}
	for _, g := range gv {
		seen[g.name] = true
		d := byName[g.name]
		if decls != nil && d == nil {
			l.ds.Add(g.key, fmt.Sprintf("%s has no param %q", path, g.name),
				orList(diag.Suggest(g.name, names), "its params are: "+strings.Join(sorted(names), ", ")))
			continue
		}
		if g.tmpl == nil && g.value != nil && !hasTemplate(g.value, 0) {
			if d != nil {
				if why := typeMismatch(d.typ, g.lit); why != "" {
					l.ds.Add(g.valuePos, fmt.Sprintf("param %q of %s must be %s, got %s", g.name, path, article(d.typ), why),
						fmt.Sprintf("declared at %s", d.pos))
					continue
				}
			}
			imp.Params[g.name] = eval.Param{Value: g.lit}
			continue
		}
		g := g
		l.compile = append(l.compile, func() {
			if g.tmpl != nil {
				imp.Params[g.name] = eval.Param{Template: g.tmpl}
			}
		})
	}
	for _, d := range decls {
		if seen[d.name] {
			continue
		}
		switch {
		case d.required:
			l.ds.Add(imp.Pos, fmt.Sprintf("%s needs param %q", path, d.name),
				fmt.Sprintf("add it under vars: of the import (declared at %s)", d.pos))
		case d.def == nil:
			imp.Params[d.name] = eval.Param{Value: nil}
		case hasTemplate(d.def, 0):
			d := d
			l.compile = append(l.compile, func() {
				restore := l.enter(inner)
				defer restore()
				env := l.env(s.seq, failed)
				env.Params = mergeParams(append(s.params, imp.Params))
				if t := l.template(d.def, "params."+d.name+".default", env, s); t != nil {
					imp.Params[d.name] = eval.Param{Template: t}
				}
			})
		default:
			var v any
			restore := l.enter(inner)
			l.decodeKey(d.def, &v, "params."+d.name+".default")
			restore()
			if why := typeMismatch(d.typ, v); why != "" {
				l.ds.Add(l.posIn(inner, d.def), fmt.Sprintf("the default of param %q must be %s, got %s", d.name, article(d.typ), why), "")
				continue
			}
			imp.Params[d.name] = eval.Param{Value: v}
		}
	}
}

// paramName reads the key of a param, declared or given: a name
// expressions can use.
func (l *loader) paramName(k *yaml.Node) (string, bool) {
	name, ok := l.d.KeyText(k, &l.ds)
	if !ok {
		return "", false
	}
	if !identRe.MatchString(name) || contains(builtinNames, name) {
		l.ds.Add(l.pos(k), fmt.Sprintf("%q cannot be a param name", name),
			"use letters, digits and _, not starting with a digit, and not a name expressions already use")
		return "", false
	}
	return name, true
}

func (l *loader) posIn(c fileCtx, n *yaml.Node) diag.Pos { return c.d.Pos(n) }

// mergeParams merges the params of nested imports, the innermost last. The
// maps are merged when a step compiles, since an import's map is filled by
// queued compiles.
func mergeParams(layers []map[string]eval.Param) map[string]eval.Param {
	var m map[string]eval.Param
	for _, l := range layers {
		for k, v := range l {
			if m == nil {
				m = map[string]eval.Param{}
			}
			m[k] = v
		}
	}
	return m
}

// typeMismatch returns what v is when it is not of type typ, or "".
func typeMismatch(typ string, v any) string {
	ok := true
	switch typ {
	case "any":
	case "string", "duration":
		_, ok = v.(string)
		if ok && typ == "duration" {
			if _, err := time.ParseDuration(v.(string)); err != nil {
				return fmt.Sprintf("%q (%v)", v, err)
			}
		}
	case "int":
		_, ok = v.(int)
	case "number":
		switch v.(type) {
		case int, float64:
		default:
			ok = false
		}
	case "bool":
		_, ok = v.(bool)
	case "list":
		_, ok = v.([]any)
	case "map":
		_, ok = v.(map[string]any)
	}
	if ok {
		return ""
	}
	if v == nil {
		return "null"
	}
	switch v.(type) {
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case string:
		return fmt.Sprintf("the string %q", v)
	}
	return fmt.Sprintf("%v (%s)", v, reflect.TypeOf(v).Kind())
}

func article(typ string) string {
	switch typ {
	case "int", "any":
		return "an " + typ
	case "list", "map":
		return "a " + typ
	}
	return "a " + typ
}

func orList(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

func sorted(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

// withChain adds chain to every diagnostic of ds.
func withChain(ds diag.Diags, chain []diag.Pos) diag.Diags {
	for i := range ds {
		ds[i].ImportedFrom = chainText(chain)
	}
	return ds
}

func chainText(chain []diag.Pos) string {
	parts := make([]string, len(chain))
	for i, p := range chain {
		parts[i] = p.String()
	}
	return strings.Join(parts, "\n")
}

// addChains gives each diagnostic in an imported file the chain of imports
// that first reached that file.
func (l *loader) addChains(ds diag.Diags) {
	for i := range ds {
		if ds[i].ImportedFrom != "" {
			continue
		}
		if c, ok := l.chains[ds[i].Pos.File]; ok {
			ds[i].ImportedFrom = chainText(c)
		}
	}
}
