package eval

import (
	"reflect"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
)

// CheckVars compiles the program again against the types of one host's
// values for the vars it reads. The loader compiled it against one sample
// per var (the first host's, or -e); a host whose value has another type
// (a number written in quotes in its host_vars) would fail only when the
// run reaches it. origin says where a var was set, for the message. It
// returns no diagnostics when the types are those it was compiled for.
func (p *Program) CheckVars(vars map[string]any, origin func(name string) string) diag.Diags {
	if p == nil || p.env == nil {
		return nil
	}
	env, changed := p.withVars(vars)
	if !changed {
		return nil
	}
	env.VarOrigin = origin
	_, ds := compile(p.Src, p.origin, env, p.Kind)
	return ds.Errors()
}

// VarTypes is a key for the types of the vars p reads in vars: programs
// whose keys are equal check alike, so a caller checks one host per key.
func (p *Program) VarTypes(vars map[string]any) string {
	if p == nil || p.env == nil {
		return ""
	}
	var b strings.Builder
	for _, n := range p.Names() {
		if !isVar(n, p.env) {
			continue
		}
		v, ok := vars[n]
		if !ok {
			continue
		}
		b.WriteString(n)
		b.WriteByte(':')
		if t := reflect.TypeOf(v); t != nil {
			b.WriteString(t.String())
		}
		b.WriteByte(';')
	}
	return b.String()
}

// withVars is p's env with the vars it reads typed as in vars; changed is
// false when every type is the one p was compiled for.
func (p *Program) withVars(vars map[string]any) (*Env, bool) {
	changed := false
	merged := make(map[string]any, len(p.env.Vars))
	for k, v := range p.env.Vars {
		merged[k] = v
	}
	names := p.Names()
	sort.Strings(names)
	for _, n := range names {
		v, ok := vars[n]
		if !ok || !isVar(n, p.env) {
			continue
		}
		if reflect.TypeOf(v) != reflect.TypeOf(p.env.Vars[n]) && p.env.Vars[n] != nil {
			changed = true
		}
		merged[n] = v
	}
	env := *p.env
	env.Vars = merged
	return &env, changed
}

// Programs returns the compiled {{ }} parts of the template.
func (t *Template) Programs() []*Program {
	var out []*Program
	for _, pt := range t.parts {
		if pt.prog != nil {
			out = append(out, pt.prog)
		}
	}
	return out
}
