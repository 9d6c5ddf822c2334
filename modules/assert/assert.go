// Package assert is the assert module: expressions that must all hold, as
// Ansible's assert.
package assert

import (
	"context"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

func init() {
	modules.Register(modules.Info{
		Name: "assert",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "fail unless every expression holds, as Ansible's assert",
			Description: `that is one expression or a list of them, compiled at load like every
expression (vars, registered results, facts, host, run). They are judged
in order; the first that is false fails the step with fail_msg (or the
expression and why it is false: the values it compared). When all hold,
the result's msg is success_msg. It changes nothing, so it runs in
--check too.`,
			Example: `- command: etcdctl version
  register: v
- assert:
    that:
      - 'v.rc == 0'
      - 'v.stdout contains etcd_target'
    fail_msg: 'etcd on {{ host.name }} is not {{ etcd_target }}'
    success_msg: 'etcd {{ etcd_target }} installed'`,
		},
	})
}

// Module holds the assert module's arguments.
type Module struct {
	That       Conds  `yaml:"that" runbook:"required" doc:"expressions that must all be true"`
	FailMsg    string `yaml:"fail_msg" doc:"the failure's message"`
	SuccessMsg string `yaml:"success_msg" default:"All assertions passed" doc:"the result's msg when all hold"`
}

// Conds is one expression or a list of them.
type Conds []arg.Expr

// DocType names the type in runbook doc.
func (Conds) DocType() string { return "expression or list of expressions" }

// DecodeNode implements arg.NodeDecoder.
func (c *Conds) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind != yaml.SequenceNode {
		var e arg.Expr
		e.DecodeNode(d, n, ds)
		*c = Conds{e}
		return
	}
	out := make(Conds, len(n.Content))
	for i, child := range n.Content {
		out[i].DecodeNode(d, arg.Resolve(child), ds)
	}
	*c = out
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate wants at least one expression.
func (m *Module) Validate() error {
	if len(m.That) == 0 {
		return &modules.FieldError{Field: "that", Msg: "is empty; give the expressions that must hold"}
	}
	return nil
}

// Run judges each expression in order.
func (m *Module) Run(_ context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	for i, e := range d.That {
		if e.Program == nil {
			return modules.Result{}, fmt.Errorf("that[%d]: %q was not compiled", i, e.Src)
		}
		ok, err := e.Program.Bool(h.Scope)
		if err != nil {
			return modules.Result{}, fmt.Errorf("that[%d]: %w", i, err)
		}
		if !ok {
			msg := d.FailMsg
			if msg == "" {
				msg = fmt.Sprintf("assertion `%s` is false", e.Src)
				if why := e.Program.Why(h.Scope); why != "" {
					msg += ": " + why
				}
			}
			return modules.Result{Data: map[string]any{"assertion": e.Src, "evaluated_to": false, "msg": msg}}, errors.New(msg)
		}
	}
	return modules.Result{Data: map[string]any{"msg": d.SuccessMsg}}, nil
}

// Check judges as Run does: it reads only.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Run(ctx, h)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
