package eval

import (
	"sort"

	"github.com/expr-lang/expr/ast"
)

// Names returns the top-level names the program reads (vars, registered
// names, host...), sorted, so that callers can order work by dependency:
// variables whose values are templates are rendered after the ones they use.
func (p *Program) Names() []string {
	if p == nil || p.prog == nil {
		return nil
	}
	set := map[string]bool{}
	root := p.prog.Node()
	ast.Walk(&root, nameCollector(set))
	return sortedSet(set)
}

// Names returns the top-level names read by every {{ }} part of the template.
func (t *Template) Names() []string {
	set := map[string]bool{}
	for _, pt := range t.parts {
		for _, n := range pt.prog.Names() {
			set[n] = true
		}
	}
	return sortedSet(set)
}

type nameCollector map[string]bool

func (c nameCollector) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		c[id.Value] = true
	}
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
