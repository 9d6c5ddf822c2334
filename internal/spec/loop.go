package spec

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules/arg"
)

// Loop is a step's `loop:`, as Ansible's: the step runs once per item, with
// `item` and `loop_index` in scope. It is a YAML list, whose elements may hold
// templates, or a string that is exactly one {{ expression }} giving a list.
type Loop struct {
	Pos diag.Pos
	// Src is the loop as written, for the plan: the template, or the list in
	// YAML's flow style.
	Src string
	// Expr is the expression of a loop written as one {{ }}; nil for a list.
	Expr *eval.Program

	elems     []loopElem
	templates map[diag.Pos]*eval.Template // templates nested in elements, by position (File set)
	file      string
	src       []byte
}

// loopElem is one element of a loop written as a YAML list.
type loopElem struct {
	value any            // a literal element, decoded at load
	tmpl  *eval.Template // an element that is one templated string: its value keeps its type
	node  *yaml.Node     // an element with templates inside: rendered, then decoded
}

// Items returns the loop's items in scope, in order. A loop expression that
// does not give a list is an error at the loop's position, naming what it gave.
func (lp *Loop) Items(scope *eval.Scope) ([]any, error) {
	if lp.Expr != nil {
		return lp.Expr.List(scope)
	}
	out := make([]any, 0, len(lp.elems))
	for _, e := range lp.elems {
		switch {
		case e.tmpl != nil:
			v, err := e.tmpl.Render(scope)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case e.node != nil:
			v, err := lp.render(e.node, scope)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			out = append(out, e.value)
		}
	}
	return out, nil
}

// Names returns the top-level names the loop's expressions read, so that the
// runner gathers the facts among them first.
func (lp *Loop) Names() []string {
	set := map[string]bool{}
	add := func(names []string) {
		for _, n := range names {
			set[n] = true
		}
	}
	add(lp.Expr.Names())
	for _, e := range lp.elems {
		if e.tmpl != nil {
			add(e.tmpl.Names())
		}
	}
	for _, t := range lp.templates {
		add(t.Names())
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// render renders the templates inside n and decodes the copy as plain values.
func (lp *Loop) render(n *yaml.Node, scope *eval.Scope) (any, error) {
	node, err := renderCompiled(n, lp.file, lp.templates, scope, nil, nil)
	if err != nil {
		return nil, err
	}
	var v any
	var ds diag.Diags
	(&arg.Decoder{File: lp.file, Source: lp.src}).Decode(node, &v, &ds)
	if err := ds.Err(); err != nil {
		return nil, err
	}
	return v, nil
}

// loopShapes says what a loop may be, for its errors.
const loopShapes = `"loop" must be a list, or one {{ expression }} that gives a list`

// loop reads a step's loop: value. Its expressions are queued for compiling;
// the step's other fields see item once it is set.
func (l *loader) loop(v *yaml.Node, s *Step, failed bool) *Loop {
	lp := &Loop{Pos: l.pos(v), file: l.file, src: l.src}
	switch {
	case v.Kind == yaml.SequenceNode:
		lp.Src = flowText(v)
		l.compile = append(l.compile, func() { l.loopList(lp, v, s, failed) })
	case arg.IsTemplateScalar(v) && oneTemplate(v.Value):
		lp.Src = strings.TrimSpace(v.Value)
		l.compile = append(l.compile, func() { lp.Expr = l.loopExpr(v, s, failed) })
	case arg.IsTemplateScalar(v):
		l.ds.Add(lp.Pos, loopShapes+", got text around {{ }}, which makes a string",
			`write the whole value as one {{ }}, such as loop: '{{ group("etcd") }}'`)
	default:
		detail := `such as loop: '{{ group("etcd") }}', or loop: [a, b]`
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && identRe.MatchString(v.Value) {
			if _, isVar := l.vars[v.Value]; isVar {
				detail = fmt.Sprintf("to loop over the var %s, write loop: '{{ %s }}'", v.Value, v.Value)
			} else {
				detail = fmt.Sprintf(`write loop: '{{ %s }}' for a var, or loop: '{{ group("%s") }}' for the hosts of a group`, v.Value, v.Value)
			}
		}
		l.ds.Add(lp.Pos, fmt.Sprintf("%s, got %s", loopShapes, arg.Describe(v)), detail)
	}
	// Returned also when it is wrong, so that item in the other fields is
	// not reported again.
	return lp
}

// oneTemplate reports whether s is exactly one {{ }}, blanks around it allowed:
// the template that keeps its value's type.
func oneTemplate(s string) bool {
	t := strings.TrimSpace(s)
	parts := templateParts(t)
	return len(parts) == 1 && strings.HasPrefix(t, "{{") &&
		utf8.RuneCountInString(t) == parts[0].off+utf8.RuneCountInString(parts[0].src)+len("}}")
}

// loopExpr compiles the expression of loop: '{{ expr }}' as a List.
func (l *loader) loopExpr(v *yaml.Node, s *Step, failed bool) *eval.Program {
	start := textPos{l.d.ValuePos(v), l.d.ValuePositions(v)}
	part := templateParts(v.Value)[0]
	if l.usesLoopNames(v.Value, part.off, part.src, start) {
		return nil
	}
	later := l.later(s.seq)
	l.checkLater(v.Value, part.off, part.src, start, s, later)
	pos := start.of(v.Value, part.off)
	var at []diag.Pos
	if start.at != nil {
		at = start.at[min(part.off, len(start.at)-1):]
	}
	p, ds := compileExpr(part.src, pos, at, withLater(l.env(s.seq, failed), later), eval.List)
	l.ds.Append(l.bounded(ds, pos))
	if p != nil {
		p.Name = "loop"
	}
	return p
}

// usesLoopNames reports item or loop_index in the loop's own expression,
// which makes the items and so cannot see one.
func (l *loader) usesLoopNames(text string, off int, src string, pos textPos) bool {
	found := false
	for _, id := range identifiers(src) {
		if id.name == "item" || id.name == "loop_index" {
			l.ds.Add(pos.of(text, off+id.off), fmt.Sprintf("the loop's own expression cannot use %s", id.name),
				"it gives the items; item is set in the step's other fields")
			found = true
		}
	}
	return found
}

// loopList reads a loop written as a YAML list: literal elements are decoded
// now, templated ones compiled.
func (l *loader) loopList(lp *Loop, v *yaml.Node, s *Step, failed bool) {
	env := l.env(s.seq, failed)
	for i, c := range v.Content {
		c = arg.Resolve(c)
		name := fmt.Sprintf("loop[%d]", i)
		switch {
		case arg.IsTemplateScalar(c):
			if l.usesLoopNamesIn(c) {
				continue
			}
			if t := l.template(c, name, env, s); t != nil {
				lp.elems = append(lp.elems, loopElem{tmpl: t})
			}
		case hasTemplate(c, 0):
			lp.elems = append(lp.elems, loopElem{node: c})
			l.loopTemplates(lp, c, name, env, s, 0)
		default:
			var val any
			l.decodeKey(c, &val, name)
			lp.elems = append(lp.elems, loopElem{value: val})
		}
	}
}

// loopTemplates compiles the templates nested in element n.
func (l *loader) loopTemplates(lp *Loop, n *yaml.Node, name string, env *eval.Env, s *Step, depth int) {
	n = arg.Resolve(n)
	if n == nil || depth > 64 {
		return
	}
	if arg.IsTemplateScalar(n) {
		if l.usesLoopNamesIn(n) {
			return
		}
		if t := l.template(n, name, env, s); t != nil {
			if lp.templates == nil {
				lp.templates = map[diag.Pos]*eval.Template{}
			}
			lp.templates[l.pos(n)] = t
		}
		return
	}
	for _, c := range n.Content {
		l.loopTemplates(lp, c, name, env, s, depth+1)
	}
}

// usesLoopNamesIn reports item or loop_index in any {{ }} of scalar n.
func (l *loader) usesLoopNamesIn(n *yaml.Node) bool {
	found := false
	for _, part := range templateParts(n.Value) {
		if l.usesLoopNames(n.Value, part.off, part.src, textPos{l.d.ValuePos(n), l.d.ValuePositions(n)}) {
			found = true
		}
	}
	return found
}

// hasTemplate reports whether n holds a templated string at any depth.
func hasTemplate(n *yaml.Node, depth int) bool {
	n = arg.Resolve(n)
	if n == nil || depth > 64 {
		return false
	}
	if arg.IsTemplateScalar(n) {
		return true
	}
	for _, c := range n.Content {
		if hasTemplate(c, depth+1) {
			return true
		}
	}
	return false
}

// flowText is a list as YAML writes it on one line: [a, '{{ x }}', {k: v}].
func flowText(n *yaml.Node) string {
	c := *n
	c.Style = yaml.FlowStyle
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "[…]"
	}
	return strings.Join(strings.Fields(string(b)), " ")
}
