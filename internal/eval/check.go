package eval

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/promql"
)

// callChecker is run by expr over the syntax tree before type checking. It
// finds what expr lets through when unknown names are allowed (a misspelt
// function is then just an unknown name) and checks literal arguments that
// expr cannot (a version or a time window written in the expression), so that
// they fail at load rather than on the first host.
type callChecker struct {
	env    *compileEnv
	src    string
	origin origin
	diags  diag.Diags
	// unknown bare names and let-declared names, to warn about likely typos
	// once the whole tree is seen (a let is visited after its uses).
	unknown  []*ast.IdentifierNode
	declared map[string]bool
	callees  map[*ast.IdentifierNode]bool // reported as functions, not names
	// loopUses are item and loop_index outside a loop, reported by finish.
	loopUses []*ast.IdentifierNode
}

func (c *callChecker) pos(n ast.Node) diag.Pos {
	return c.origin.atOffset(c.src, n.Location().From)
}

func (c *callChecker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.VariableDeclaratorNode:
		if c.declared == nil {
			c.declared = map[string]bool{}
		}
		c.declared[n.Name] = true
	case *ast.IdentifierNode:
		if !c.env.known(n.Value) && n.Value != "$env" {
			c.unknown = append(c.unknown, n)
		}
		if !c.env.loop && isLoopName(n.Value) {
			c.loopUses = append(c.loopUses, n)
		}
	case *ast.CallNode:
		c.call(n)
	}
}

func (c *callChecker) call(n *ast.CallNode) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	name := id.Value
	if c.callees == nil {
		c.callees = map[*ast.IdentifierNode]bool{}
	}
	c.callees[id] = true
	if !c.env.known(name) {
		c.diags.Add(c.pos(id), fmt.Sprintf("unknown function %q", name), diag.Suggest(name, c.env.functionNames()))
		return
	}
	f := c.env.funcs[name]
	if f == nil || f.literal == nil {
		return
	}
	for i, a := range n.Arguments {
		s, ok := a.(*ast.StringNode)
		if !ok {
			continue
		}
		if err := f.literal(i, s.Value); err != nil {
			pos := c.pos(a)
			// A PromQL error points at its character in the file, as an
			// analysis' query does, not at the string's opening quote.
			var se *promql.SyntaxError
			if from := a.Location().From; errors.As(err, &se) {
				if off, ok := literalRuneOffset(c.src, from, se.Offset); ok {
					pos = c.origin.atOffset(c.src, from+off)
				}
			}
			c.diags.Add(pos, err.Error(), "")
		}
	}
}

// finish reports item and loop_index used outside a step with loop:, once
// the whole tree is seen. A let of them is refused by expr itself: they are
// declared in every env.
func (c *callChecker) finish() {
	for _, id := range c.loopUses {
		if c.declared[id.Value] {
			continue
		}
		c.diags.Add(c.pos(id), fmt.Sprintf("%s is only set inside a step with loop:", id.Value),
			`add loop: to the step (such as loop: '{{ group("etcd") }}'), or use another name`)
	}
}

// reported reports whether an error was already recorded at pos.
func (c *callChecker) reported(pos diag.Pos) bool {
	for _, d := range c.diags {
		if d.Severity == diag.Error && d.Pos == pos {
			return true
		}
	}
	return false
}

// warnings returns a warning for each unknown name that looks like a typo of
// a name in scope. Without an inventory unknown names are allowed, since they
// may be host vars, but one that is a letter away from a known name is most
// likely a mistake that would only show at run time.
func (c *callChecker) warnings() diag.Diags {
	var ds diag.Diags
	if c.env.strict {
		return nil
	}
	for _, id := range c.unknown {
		if c.declared[id.Value] || c.callees[id] {
			continue
		}
		if s := diag.Suggest(id.Value, c.env.names()); s != "" {
			ds = append(ds, diag.Diag{
				Severity: diag.Warning,
				Pos:      c.pos(id),
				Summary:  fmt.Sprintf("unknown name %q in expression", id.Value),
				Detail:   s + " (it may still come from the inventory)",
			})
		}
	}
	return ds
}

var (
	reUnknownName = regexp.MustCompile(`^unknown name (\S+)$`)
	reNoField     = regexp.MustCompile(`^type (\S+) has no (field|method) (\S+)$`)
	reArgType     = regexp.MustCompile(`^cannot use (\S+) as argument \(type (\S+)\) to call (\S+)$`)
	reArgCount    = regexp.MustCompile(`^(not enough|too many) arguments to call (\S+)$`)
)

// members lists what the types of our own names offer, for "it has ..." hints.
var members = map[string]struct{ name, fields string }{
	"eval.Host": {"host", "name, addr, groups, vars"},
	"eval.Run":  {"run", "id, batch, started, resumed"},
}

// translate turns a compile error of expr into a diagnostic in the file, with
// a message that names things as the runbook writes them.
func (ce *compileEnv) translate(err error, src string, o origin) diag.Diag {
	d := diag.Diag{Severity: diag.Error, Pos: o.at(0, 0)}
	var fe *file.Error
	if !errors.As(err, &fe) {
		d.Summary = err.Error()
		return d
	}
	if fe.Line > 0 {
		d.Pos = o.at(fe.Line-1, fe.Column)
	} else {
		d.Pos = o.atOffset(src, fe.From)
	}
	d.Summary, d.Detail = ce.explain(strings.TrimSpace(fe.Message))
	return d
}

func (ce *compileEnv) explain(msg string) (summary, detail string) {
	if m := reUnknownName.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown name %q in expression", m[1]), diag.Suggest(m[1], ce.names())
	}
	if m := reNoField.FindStringSubmatch(msg); m != nil {
		if t, ok := members[m[1]]; ok {
			return fmt.Sprintf("%s has no %s %q", t.name, m[2], m[3]), "it has " + t.fields
		}
		return fmt.Sprintf("a value of type %s has no %s %q", m[1], m[2], m[3]), ""
	}
	if m := reArgType.FindStringSubmatch(msg); m != nil {
		fn := m[3]
		summary = fmt.Sprintf("%s: cannot use %s as an argument of type %s", fn, m[1], m[2])
		if f := ce.funcs[fn]; f != nil {
			detail = "want " + f.doc.Signature
		}
		if strings.HasPrefix(fn, "semver_") && (m[1] == "float64" || m[1] == "int") {
			detail = `a version is a string: quote it in YAML ("3.6"), or it is read as a number`
		}
		return summary, detail
	}
	if msg == `unexpected token Operator("=")` {
		return "unexpected =", "use == to compare"
	}
	if m := reArgCount.FindStringSubmatch(msg); m != nil {
		if f := ce.funcs[m[2]]; f != nil {
			return msg, "want " + f.doc.Signature
		}
	}
	return msg, ""
}

// literalRuneOffset maps byte offset valueOff of a string literal's value
// to the offset, in runes from the literal's opening quote at rune from of
// src, of the character that wrote it: escapes take more than one. ok is
// false when src does not hold a quoted literal there.
func literalRuneOffset(src string, from, valueOff int) (int, bool) {
	runes := []rune(src)
	if from < 0 || from >= len(runes) {
		return 0, false
	}
	quote := runes[from]
	if quote != '"' && quote != '\'' && quote != '`' {
		return 0, false
	}
	decoded := 0
	for i := from + 1; i < len(runes); {
		r := runes[i]
		if decoded >= valueOff || r == quote {
			return i - from, true
		}
		if r != '\\' || quote == '`' {
			decoded += utf8.RuneLen(r)
			i++
			continue
		}
		if i+1 >= len(runes) {
			return 0, false
		}
		switch esc := runes[i+1]; {
		case esc == 'u':
			decoded += utf8.RuneLen(hexRune(runes, i+2, 4))
			i += 6
		case esc == 'U':
			decoded += utf8.RuneLen(hexRune(runes, i+2, 8))
			i += 10
		case esc == 'x':
			decoded++
			i += 4
		case esc >= '0' && esc <= '7':
			decoded++
			i += 4
		default:
			decoded++
			i += 2
		}
	}
	return 0, false
}

// hexRune reads n hex digits of runes at i as a rune; utf8.RuneError when
// they are not there.
func hexRune(runes []rune, i, n int) rune {
	if i+n > len(runes) {
		return utf8.RuneError
	}
	v, err := strconv.ParseUint(string(runes[i:i+n]), 16, 32)
	if err != nil || !utf8.ValidRune(rune(v)) {
		return utf8.RuneError
	}
	return rune(v)
}
