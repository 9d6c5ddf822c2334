package spec

import (
	"fmt"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
)

// NewArgs returns the step's arguments for one host: the templates rendered
// in scope, decoded strictly into a fresh value of the module's type, Expr
// arguments given their compiled programs, and validated. Errors (a rendered
// value of the wrong type, a failed Validate) come as a *diag.DiagsError
// pointing at the argument, or as the template's run-time error.
func (s *Step) NewArgs(reg Registry, scope *eval.Scope) (any, error) {
	if s.IsBlock() {
		return nil, fmt.Errorf("%s: a block has no arguments", s.ID)
	}
	args, ok := reg.NewArgs(s.Module)
	if !ok {
		return nil, fmt.Errorf("%s: module %q is not registered", s.Pos, s.Module)
	}
	node := s.Args
	if len(s.Templates) > 0 {
		var err error
		node, err = renderCompiled(s.Args, s.file, s.Templates, scope)
		if err != nil {
			return nil, err
		}
	}
	var ds diag.Diags
	d := &Decoder{File: s.file, Source: s.src, Context: s.Module}
	d.OnExpr = func(e *Expr, key string) {
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
	if !ds.HasErrors() {
		validateArgs(d, s, args, &ds)
	}
	if err := ds.Err(); err != nil {
		return nil, err
	}
	return args, nil
}
