package spec

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// NewArgs returns the step's module for one host: the templates of its
// arguments rendered in scope, decoded strictly into a fresh value of the
// module, Expr arguments given their compiled programs, and validated. Errors (a rendered
// value of the wrong type, a failed Validate) come as a *diag.DiagsError
// pointing at the argument, or as the template's run-time error.
func (s *Step) NewArgs(reg *modules.Registry, scope *eval.Scope) (modules.Module, error) {
	args, _, err := s.newArgs(reg, scope, nil)
	return args, err
}

// CheckArgs is NewArgs before the run, on the same path: the templates for
// which wait reports true (they read what only the run knows: facts,
// registered results, item) are left unrendered, as the loader leaves them;
// every other one is rendered in scope and decoded with the module's own
// decoders, so that a value that would fail on a host fails before any host
// is touched. Validate, which needs every argument, runs only when no
// template waits. complete reports whether it did: then args is what the
// run would get for this scope.
func (s *Step) CheckArgs(reg *modules.Registry, scope *eval.Scope, wait func(*eval.Template) bool) (args modules.Module, complete bool, err error) {
	return s.newArgs(reg, scope, wait)
}

func (s *Step) newArgs(reg *modules.Registry, scope *eval.Scope, wait func(*eval.Template) bool) (modules.Module, bool, error) {
	if s.IsBlock() {
		return nil, false, fmt.Errorf("%s: a block has no arguments", s.ID)
	}
	args, ok := reg.NewArgs(s.Module)
	if !ok {
		return nil, false, fmt.Errorf("%s: module %q is not registered", s.Pos, s.Module)
	}
	node := s.Args
	waiting := map[diag.Pos]bool{}
	if len(s.Templates) > 0 {
		var err error
		node, err = renderCompiled(s.Args, s.file, s.Templates, scope, wait, waiting)
		if err != nil {
			return nil, false, err
		}
	}
	var ds diag.Diags
	d := &arg.Decoder{File: s.file, Source: s.src, Context: s.Module}
	if len(waiting) > 0 {
		d.OnTemplate = func(*yaml.Node) {}
		d.Unrendered = func(n *yaml.Node) bool { return waiting[d.Pos(n)] }
	}
	d.OnExpr = func(e *arg.Expr, key string) {
		if p := s.exprs[e.Pos]; p != nil {
			e.Program = p
			return
		}
		// Only a rendered value can bring an Expr the loader did not see.
		env := s.env
		if env == nil {
			env = &eval.Env{}
		}
		p, cds := eval.Compile(e.Src, e.Pos, exprEnv(env, key, args), eval.Bool)
		ds.Append(cds)
		e.Program = p
	}
	d.Decode(node, args, &ds)
	complete := len(waiting) == 0
	if !ds.HasErrors() && complete {
		validateArgs(d, s, args, &ds)
	}
	if err := ds.Err(); err != nil {
		return nil, false, err
	}
	return args, complete, nil
}

// ArgExprs returns the compiled Expr arguments of the step (check's expect,
// assert-metric's expect), in document order.
func (s *Step) ArgExprs() []*eval.Program {
	out := make([]*eval.Program, 0, len(s.exprs))
	for _, p := range s.exprs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos.Before(out[j].Pos) })
	return out
}
