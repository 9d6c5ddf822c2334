package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
)

// varRenderer renders the {{ }} templates inside variable values, per host, the
// way Ansible users expect (`etcd_url: 'http://{{ ansible_host }}:2379'` in
// group_vars): a variable is rendered after the variables it uses, a cycle is an
// error, and only values written as templates are evaluated, never text that a
// rendered value happens to contain.
type varRenderer struct {
	compiled map[string]*eval.Template // by source text and position, shared by hosts
	inv      eval.Inventory
	run      eval.Run
}

func newVarRenderer(inv eval.Inventory, run eval.Run) *varRenderer {
	return &varRenderer{compiled: map[string]*eval.Template{}, inv: inv, run: run}
}

// render returns vars with every templated value rendered for host h. where
// says where a variable was set, for diagnostics.
func (r *varRenderer) render(vars map[string]any, h eval.Host, where func(string) diag.Pos) (map[string]any, diag.Diags) {
	var ds diag.Diags
	templated := map[string]bool{}
	for k, v := range vars {
		if hasTemplate(v) {
			templated[k] = true
		}
	}
	if len(templated) == 0 {
		return vars, nil
	}
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		out[k] = v
	}
	env := &eval.Env{Vars: vars, Strict: true}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) bool
	visit = func(name string) bool {
		switch state[name] {
		case done:
			return true
		case visiting:
			i := indexOf(stack, name)
			cycle := append(append([]string(nil), stack[i:]...), name)
			ds.Add(where(name), fmt.Sprintf("variables refer to each other in a cycle: %s", strings.Join(cycle, " → ")), "")
			return false
		}
		state[name] = visiting
		stack = append(stack, name)
		defer func() { stack = stack[:len(stack)-1] }()
		ok := true
		var tpls []*eval.Template
		walkStrings(vars[name], func(s string) {
			if !eval.IsTemplate(s) {
				return
			}
			t, tds := r.compile(s, where(name), env)
			ds.Append(tds)
			if t == nil {
				ok = false
				return
			}
			tpls = append(tpls, t)
		})
		if !ok {
			return false
		}
		for _, t := range tpls {
			for _, dep := range t.Names() {
				if templated[dep] && dep != name && !visit(dep) {
					return false
				}
			}
		}
		host := h
		host.Vars = out
		scope := &eval.Scope{Vars: out, Host: host, Run: r.run, Inventory: r.inv}
		v, err := renderValue(vars[name], scope, r, where(name), env)
		if err != nil {
			ds.Add(where(name), fmt.Sprintf("variable %q: %v", name, err), "")
			return false
		}
		out[name] = v
		state[name] = done
		return true
	}
	names := make([]string, 0, len(templated))
	for k := range templated {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		visit(k)
	}
	return out, ds
}

func (r *varRenderer) compile(s string, pos diag.Pos, env *eval.Env) (*eval.Template, diag.Diags) {
	key := pos.String() + "\x00" + s
	if t, ok := r.compiled[key]; ok {
		return t, nil
	}
	t, ds := eval.ParseTemplate(s, pos, env)
	if ds.HasErrors() {
		return nil, ds
	}
	r.compiled[key] = t
	return t, nil
}

// renderValue renders the templated strings inside v (a scalar, list or map).
func renderValue(v any, scope *eval.Scope, r *varRenderer, pos diag.Pos, env *eval.Env) (any, error) {
	switch x := v.(type) {
	case string:
		if !eval.IsTemplate(x) {
			return x, nil
		}
		t, ds := r.compile(x, pos, env)
		if ds.HasErrors() {
			return nil, ds.Err()
		}
		return t.Render(scope)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			rv, err := renderValue(e, scope, r, pos, env)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			rv, err := renderValue(e, scope, r, pos, env)
			if err != nil {
				return nil, err
			}
			out[k] = rv
		}
		return out, nil
	}
	return v, nil
}

func hasTemplate(v any) bool {
	found := false
	walkStrings(v, func(s string) {
		if eval.IsTemplate(s) {
			found = true
		}
	})
	return found
}

func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return 0
}
