package eval

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// maxWhyValue bounds one value in an explanation: a list of members is
// evidence, a megabyte of it is noise.
const maxWhyValue = 120

// Why says which part of a guard that evaluated false in s made it false,
// and the values it saw there: for `a && b && c`, the first conjunct that
// is false; for a comparison, the values of its operands:
//
//	delta("etcd_server_slow_apply_total") == 0: was 3
//	etcd.member.version == etcd_target: was "3.6.16" == "3.7.3"
//
// An operator acts on the one clause that failed, and a long gate printed
// whole (and cut) hides it. Why evaluates the parts again, so it must only
// be called with the scope the program was judged in, and only for
// programs whose functions read without changing anything. It returns ""
// when it cannot say more than the whole expression does (the expression
// holds, declares variables, or a part cannot be compiled alone).
func (p *Program) Why(s *Scope) string {
	if p == nil || p.ce == nil || p.why == nil {
		return ""
	}
	p.why.once.Do(func() { p.why.root = p.clauses() })
	if p.why.root == nil {
		return ""
	}
	env := s.env()
	v, err := p.why.root.eval(env)
	if err != nil || v != false {
		return ""
	}
	return p.why.root.explain(env)
}

// whyTree is a Program's clauses, compiled on the first Why: most guards
// never fail, and compiling their parts at load would be wasted.
type whyTree struct {
	once sync.Once
	root *clause
}

// clause is a part of a guard, with its own program.
type clause struct {
	src         string
	op          string    // "&&", "||", "!", a comparison, or "" for anything else
	parts       []*clause // the operands of && and ||, the operand of !
	left, right *clause   // a comparison's operands
	literal     bool      // a constant: its value says nothing new
	prog        *vm.Program
}

// clauses parses the program's source again (the compiled tree is
// optimized, and its parts no longer read as written) and compiles each
// part in the program's own env.
func (p *Program) clauses() *clause {
	tree, err := parser.Parse(p.Src)
	if err != nil {
		return nil
	}
	c := p.clause(tree.Node)
	if c == nil || c.prog == nil {
		return nil
	}
	return c
}

func (p *Program) clause(n ast.Node) *clause {
	c := &clause{src: n.String()}
	prog, err := expr.Compile(c.src, p.ce.options()...)
	if err != nil {
		return nil
	}
	c.prog = prog
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and", "||", "or":
			c.op = map[string]string{"and": "&&", "or": "||"}[x.Operator]
			if c.op == "" {
				c.op = x.Operator
			}
			// a && b && c is (a && b) && c: flatten it into its conjuncts.
			for _, side := range []ast.Node{x.Left, x.Right} {
				sub := p.clause(side)
				if sub == nil {
					return &clause{src: c.src, prog: c.prog}
				}
				if sub.op == c.op {
					c.parts = append(c.parts, sub.parts...)
				} else {
					c.parts = append(c.parts, sub)
				}
			}
		case "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startsWith", "endsWith", "matches":
			l, r := p.clause(x.Left), p.clause(x.Right)
			if l != nil && r != nil {
				c.op, c.left, c.right = x.Operator, l, r
			}
		}
	case *ast.UnaryNode:
		if x.Operator == "!" || x.Operator == "not" {
			if sub := p.clause(x.Node); sub != nil {
				c.op, c.parts = "!", []*clause{sub}
			}
		}
		if x.Operator == "-" || x.Operator == "+" {
			_, c.literal = x.Node.(*ast.IntegerNode)
			if _, ok := x.Node.(*ast.FloatNode); ok {
				c.literal = true
			}
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode, *ast.NilNode:
		c.literal = true
	}
	return c
}

func (c *clause) eval(env map[string]any) (any, error) { return expr.Run(c.prog, env) }

// explain says why c, which is false in env, is false.
func (c *clause) explain(env map[string]any) string {
	switch c.op {
	case "&&":
		for _, part := range c.parts {
			v, err := part.eval(env)
			switch {
			case err != nil:
				return fmt.Sprintf("%s: %v", part.src, err)
			case v == false:
				return part.explain(env)
			}
		}
	case "||":
		// Every alternative is false: each says why.
		var why []string
		for _, part := range c.parts {
			why = append(why, part.explain(env))
		}
		return strings.Join(why, "; and ")
	case "!":
		return fmt.Sprintf("%s: %s was true", c.src, c.parts[0].src)
	case "":
		return c.src + " was false"
	}
	// A comparison: its operands' values, the constant ones left out.
	l, lerr := c.left.eval(env)
	r, rerr := c.right.eval(env)
	switch {
	case lerr != nil:
		return fmt.Sprintf("%s: %s: %v", c.src, c.left.src, lerr)
	case rerr != nil:
		return fmt.Sprintf("%s: %s: %v", c.src, c.right.src, rerr)
	case c.right.literal && !c.left.literal:
		return fmt.Sprintf("%s: was %s", c.src, whyValue(l))
	case c.left.literal && !c.right.literal:
		return fmt.Sprintf("%s: was %s", c.src, whyValue(r))
	}
	return fmt.Sprintf("%s: was %s %s %s", c.src, whyValue(l), c.op, whyValue(r))
}

// whyValue shows a value as an expression would write it: strings quoted,
// numbers short, NaN as NaN.
func whyValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	case float64:
		if math.IsNaN(x) {
			return "NaN (no observations)"
		}
		// Six significant digits: 0.07168, not 0.0716800000000003.
		s = strconv.FormatFloat(x, 'g', 6, 64)
	case nil:
		return "nil"
	default:
		var err error
		if s, err = Format(v); err != nil {
			s = fmt.Sprint(v)
		}
	}
	if r := []rune(s); len(r) > maxWhyValue {
		s = string(r[:maxWhyValue-1]) + "…"
	}
	return s
}
