package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"

	"github.com/runbookhq/runbook/internal/diag"
)

var reMismatch = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types (\S+) and (\S+)\)$`)

// mismatch explains a comparison or arithmetic between a var and a value of
// another type, the usual cause being a number given as text (every -e k=v
// is a string): it points at the var, says where its value was set and how
// to give it the type the expression needs. ok is false when the error is
// not about a var.
func (ce *compileEnv) mismatch(err error, src string, o origin, env *Env) (diag.Diag, bool) {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return diag.Diag{}, false
	}
	m := reMismatch.FindStringSubmatch(strings.TrimSpace(fe.Message))
	if m == nil {
		return diag.Diag{}, false
	}
	tree, perr := parser.Parse(src)
	if perr != nil {
		return diag.Diag{}, false
	}
	op, leftType, rightType := m[1], m[2], m[3]
	var found *ast.IdentifierNode
	var other string
	var best int
	ast.Walk(&tree.Node, visitor(func(n ast.Node) {
		b, isBin := n.(*ast.BinaryNode)
		if !isBin || b.Operator != op {
			return
		}
		for _, side := range []struct {
			id        ast.Node
			own, with string
		}{{b.Left, leftType, rightType}, {b.Right, rightType, leftType}} {
			id, isID := side.id.(*ast.IdentifierNode)
			if !isID || !isVar(id.Value, env) || typeName(reflect.TypeOf(env.Vars[id.Value])) != side.own {
				continue
			}
			// The operator the error names first, then the var whose value
			// is a string (the one most likely given wrong).
			score := 1
			if b.Location().From == fe.From {
				score += 2
			}
			if _, isStr := env.Vars[id.Value].(string); isStr {
				score++
			}
			if score > best {
				best, found, other = score, id, side.with
			}
		}
	}))
	if found == nil {
		return diag.Diag{}, false
	}
	name := found.Value
	v := env.Vars[name]
	// Only a number written as text is surely the var's fault; otherwise the
	// other side may be what is wrong, and expr's own message stands.
	str, isStr := v.(string)
	f, numErr := strconv.ParseFloat(strings.TrimSpace(str), 64)
	if !isStr || numErr != nil || math.IsInf(f, 0) || math.IsNaN(f) || (other != "int" && other != "float64") {
		return diag.Diag{}, false
	}
	from := ""
	if env.VarOrigin != nil {
		from = env.VarOrigin(name)
	}
	d := diag.Diag{Severity: diag.Error, Pos: o.atOffset(src, found.Location().From)}
	set := ""
	switch {
	case from == "-e":
		set = " (set by -e)"
	case from != "":
		set = " (set at " + from + ")"
	}
	d.Summary = fmt.Sprintf("%s is %s%s, but %s needs %s here", name, theValue(v), set, op, article(other))
	num := strconv.FormatFloat(f, 'g', -1, 64)
	if from == "-e" {
		j, _ := json.Marshal(map[string]json.RawMessage{name: json.RawMessage(num)})
		d.Detail = fmt.Sprintf("-e k=v always gives a string; give a number as JSON: -e '%s'", strings.ReplaceAll(string(j), `":`, `": `))
	} else {
		d.Detail = fmt.Sprintf("it is quoted, so it is a string; write %s without quotes", num)
	}
	return d, true
}

// isVar reports whether name is a var of the env, not shadowed by a name
// that expressions give a value of their own.
func isVar(name string, env *Env) bool {
	if _, ok := env.Vars[name]; !ok {
		return false
	}
	for _, r := range env.Registered {
		if r == name {
			return false
		}
	}
	if _, ok := env.Extra[name]; ok {
		return false
	}
	switch name {
	case "host", "run", "result", "failed", "completed", "item", "loop_index":
		return false
	}
	return true
}

// theValue names a var's value with its type: the string "0", the number 0.5.
func theValue(v any) string {
	switch x := v.(type) {
	case string:
		return "the string " + strconv.Quote(shorten(x))
	case int, float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return strconv.FormatBool(x)
	}
	return describe(v)
}

func article(typ string) string {
	switch typ {
	case "int", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a value of type " + typ
}

type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }
