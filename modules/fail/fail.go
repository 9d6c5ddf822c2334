// Package fail is the fail module: a step that always fails with a message, for
// a guarded refusal ("the cluster version already moved: do not swap back").
package fail

import (
	"context"
	"errors"

	"github.com/runbookhq/runbook/modules"
)

func init() {
	modules.Register(modules.Info{
		Name: "fail",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "stop the host with a message, as Ansible's fail does",
			Description: `Fails the step with msg. Guard it with when: it is how a runbook refuses
to go on, or refuses to roll back, and tells the operator what to do instead.
It touches nothing, so it is safe anywhere, --check included.`,
			Example: `- name: never swap etcd back after the cluster version moved
  fail:
    msg: 'the cluster runs {{ etcd.cluster_version }} now; use the downgrade procedure'
  when: 'etcd.cluster_version == "3.7.0"'`,
		},
	})
}

// Module holds the fail module's arguments.
type Module struct {
	Msg string `yaml:"msg" runbook:"required" doc:"the message the step fails with"`
}

// Defaults returns the arguments as Run sees them; fail has no defaults.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate wants a message: a failure nobody can read helps no one.
func (m *Module) Validate() error {
	if m.Msg == "" {
		return &modules.FieldError{Field: "msg", Msg: "is empty; say why the run stops and what to do"}
	}
	return nil
}

// Run fails with the message.
func (m *Module) Run(context.Context, *modules.Host) (modules.Result, error) {
	return modules.Result{Data: map[string]any{"msg": m.Msg}}, errors.New(m.Msg)
}

// Check fails too: --check shows that the run would stop here.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Run(ctx, h)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
