package eval

import (
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// Param is a name an import binds for the steps of the imported file: a
// constant, or a template of the importing file compiled where the import
// is written. Binding happens when the imported steps are compiled: each use
// of the name is replaced by the value or by the template's expression, so
// the steps run with no notion of scopes, and a value that depends on a host
// is still read on that host when the step runs.
type Param struct {
	Value    any       // used when Template is nil
	Template *Template // compiled against the importing file's env
}

// paramText is the function a mixed template param ("a-{{ x }}") is joined
// with: it formats a part as a template does.
const paramText = "__param_text"

func paramTextFunc(args ...any) (any, error) { return Format(args[0]) }

// paramOptions are the expr options for an env with params: the
// substitution, after the call checker. A let cannot shadow a param: expr
// refuses to declare a name the env has.
func paramOptions(env *Env) []expr.Option {
	if len(env.Params) == 0 {
		return nil
	}
	return []expr.Option{
		expr.Function(paramText, paramTextFunc, new(func(any) string)),
		expr.Patch(paramBinder(env.Params)),
	}
}

type paramBinder map[string]Param

func (b paramBinder) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	p, ok := b[id.Value]
	if !ok {
		return
	}
	n := p.node()
	setLocation(n, id.Location())
	*node = n
}

// node is the syntax tree that stands for the param.
func (p Param) node() ast.Node {
	if p.Template == nil {
		if s, ok := p.Value.(string); ok {
			return &ast.StringNode{Value: s}
		}
		return &ast.ConstantNode{Value: p.Value}
	}
	var out ast.Node
	for _, pt := range p.Template.parts {
		var n ast.Node
		if pt.prog == nil {
			n = &ast.StringNode{Value: pt.lit}
		} else {
			n = pt.prog.tree()
			if !p.Template.single {
				n = &ast.CallNode{Callee: &ast.IdentifierNode{Value: paramText}, Arguments: []ast.Node{n}}
			}
		}
		if out == nil {
			out = n
		} else {
			out = &ast.BinaryNode{Operator: "+", Left: out, Right: n}
		}
	}
	if out == nil {
		return &ast.StringNode{}
	}
	return out
}

// tree parses the program's source again (a tree is changed by the checker,
// so one cannot be shared) and binds the params of the env it was compiled
// in, so that an import's param may use the params of the file importing it.
func (p *Program) tree() ast.Node {
	t, err := parser.Parse(p.Src)
	if err != nil {
		// It compiled once: it parses.
		return &ast.NilNode{}
	}
	if p.env != nil && len(p.env.Params) > 0 {
		ast.Walk(&t.Node, paramBinder(p.env.Params))
	}
	return t.Node
}

// setLocation points every node of n at loc, the use of the param, so that a
// type error in it is reported where the name was written.
func setLocation(n ast.Node, loc file.Location) {
	ast.Walk(&n, locationSetter(loc))
}

type locationSetter file.Location

func (l locationSetter) Visit(node *ast.Node) { (*node).SetLocation(file.Location(l)) }
