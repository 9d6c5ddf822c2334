package eval

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/conf"
)

// Types of the names every runbook has; samples stand in for values at compile time.
var (
	resultSample    = map[string]any{}
	completedSample = []string{}
)

// compileEnv is an Env turned into what expr compiles against.
type compileEnv struct {
	strict  bool
	loop    bool                 // item and loop_index are set (a step with loop:)
	samples map[string]any       // name → sample value; its type is what expr checks
	untyped []string             // names whose sample is nil: typed `any`, not nil
	funcs   map[string]*function // names that call one of our functions (not shadowed)
}

func newCompileEnv(env *Env) *compileEnv {
	ce := &compileEnv{strict: env.Strict, loop: env.Loop, samples: map[string]any{}, funcs: map[string]*function{}}
	for _, f := range functions {
		ce.funcs[f.doc.Name] = f
	}
	set := func(name string, v any) {
		ce.samples[name] = v
		delete(ce.funcs, name)
	}
	for _, f := range functions {
		if f.bound != nil {
			ce.samples[f.doc.Name] = f.sample
		}
	}
	for k, v := range env.Vars {
		set(k, v)
	}
	for k, p := range env.Params {
		if p.Template != nil {
			set(k, nil)
		} else {
			set(k, p.Value)
		}
	}
	for _, k := range env.Registered {
		set(k, resultSample)
	}
	for k, v := range env.Extra {
		set(k, v)
	}
	set("host", Host{})
	set("run", Run{})
	if env.Result {
		set("result", resultSample)
	}
	if env.Failed {
		set("failed", resultSample)
		set("completed", completedSample)
	}
	// Declared outside a loop too, so that expr accepts them and the call
	// checker reports their use once, with its own message.
	set("item", nil)
	set("loop_index", 0)
	for k, v := range ce.samples {
		if v == nil {
			ce.untyped = append(ce.untyped, k)
		}
	}
	sort.Strings(ce.untyped)
	return ce
}

// options are the expr options for compiling against the env.
func (ce *compileEnv) options() []expr.Option {
	opts := make([]expr.Option, 0, 3+len(functions))
	opts = append(opts, expr.Env(ce.samples), func(c *conf.Config) {
		// A nil sample says nothing about the type: make it unknown (any) rather
		// than nil, which expr would reject in every comparison.
		for _, k := range ce.untyped {
			c.Env.Fields[k] = nature.Nature{}
		}
	})
	if !ce.strict {
		// After expr.Env, which makes a map env strict.
		opts = append(opts, expr.AllowUndefinedVariables())
	}
	for _, f := range functions {
		if f.bound == nil {
			opts = append(opts, expr.Function(f.doc.Name, f.fn, f.types...))
		}
	}
	return opts
}

// has reports whether name is declared by the env (a variable or a bound function).
func (ce *compileEnv) has(name string) bool {
	_, ok := ce.samples[name]
	return ok
}

// known reports whether name is declared, one of our functions or an expr
// built-in. A declared name that is called is checked by expr to be a function.
func (ce *compileEnv) known(name string) bool {
	if ce.has(name) || ce.funcs[name] != nil {
		return true
	}
	_, ok := builtinNames[name]
	return ok
}

// names returns every name in scope, for suggestions.
func (ce *compileEnv) names() []string {
	out := make([]string, 0, len(ce.samples)+len(functions))
	for k := range ce.samples {
		if !ce.loop && isLoopName(k) {
			continue // never a suggestion where it is not set
		}
		out = append(out, k)
	}
	for name := range ce.funcs {
		if !ce.has(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// functionNames returns what can be called, for suggestions.
func (ce *compileEnv) functionNames() []string {
	var out []string
	for k, v := range ce.samples {
		if v != nil && reflect.TypeOf(v).Kind() == reflect.Func {
			out = append(out, k)
		}
	}
	for name := range ce.funcs {
		if !ce.has(name) {
			out = append(out, name)
		}
	}
	for k := range builtinNames {
		if !ce.has(k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

var builtinNames = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, f := range builtin.Builtins {
		m[f.Name] = struct{}{}
	}
	return m
}()

// env is the run-time env of s, shadowing as the compile env does.
func (s *Scope) env() map[string]any {
	if s == nil {
		s = &Scope{}
	}
	m := make(map[string]any, len(s.Vars)+len(s.Registered)+len(s.Extra)+8)
	for _, f := range functions {
		if f.bound != nil {
			m[f.doc.Name] = f.bound(s)
		}
	}
	for k, v := range s.Vars {
		m[k] = v
	}
	for k, v := range s.Registered {
		m[k] = v
	}
	for k, v := range s.Extra {
		m[k] = v
	}
	m["host"] = s.Host
	m["run"] = s.Run
	if s.Result != nil {
		m["result"] = s.Result
	}
	if s.Failed != nil {
		m["failed"] = s.Failed
	}
	if s.Completed != nil {
		m["completed"] = s.Completed
	}
	if s.Loop != nil {
		m["item"] = s.Loop.Item
		m["loop_index"] = s.Loop.Index
	}
	return m
}

// isLoopName reports the names a step with loop: sets for each item.
func isLoopName(name string) bool { return name == "item" || name == "loop_index" }

// errNoInventory is returned by inventory look-ups in a scope without one.
var errNoInventory = fmt.Errorf("no inventory in this run")
