// Package debug is the debug module: a value printed in the run's output,
// redacted as all output is, as Ansible's debug prints it.
package debug

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/anyval"
)

func init() {
	modules.Register(modules.Info{
		Name: "debug",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "print a message or a variable's value, as Ansible's debug",
			Description: `msg is printed under the step's line (a string, or any value rendered
from a lone {{ }}, printed as JSON); var names a variable, a registered
result or a path into one (out.stdout), printed as NAME = VALUE. What is
printed goes through the run's redaction as all output does: a -e value,
a vault value or what a no_log step registered shows as <redacted>, and
a no_log debug step prints nothing. The result holds msg (or the var under
its name) and the printed text as debug. It changes nothing, so it runs
in --check too.`,
			Example: `- debug: { msg: 'upgrading {{ host.name }} to {{ etcd_target }}' }
- command: etcdctl endpoint status -w json
  register: status
- debug: { var: status.stdout }`,
		},
	})
}

// Module holds the debug module's arguments: msg or var.
type Module struct {
	Msg anyval.Value `yaml:"msg" doc:"what to print: text, or any value (a list of lines, a map, a lone {{ }})"`
	Var string       `yaml:"var" doc:"a variable or registered result to print, with a path into it: out.stdout"`
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate wants exactly one of msg and var.
func (m *Module) Validate() error {
	switch {
	case m.Msg.Get() != nil && m.Var != "":
		return &modules.FieldError{Field: "var", Msg: "is given with msg; give one of them"}
	case m.Var != "" && !validPath(m.Var):
		return &modules.FieldError{Field: "var", Msg: fmt.Sprintf("%q is not a name or a path of names (out.stdout)", m.Var)}
	}
	return nil
}

func validPath(p string) bool {
	for _, part := range strings.Split(p, ".") {
		if part == "" || strings.ContainsAny(part, " {}()[]'\"") {
			return false
		}
	}
	return true
}

// Run prints the message or the variable.
func (m *Module) Run(_ context.Context, h *modules.Host) (modules.Result, error) {
	if m.Var != "" {
		v, ok := lookup(h.Scope.Values(), m.Var)
		text := m.Var + " = " + show(v)
		if !ok {
			text = m.Var + " is not defined"
			v = nil
		}
		return modules.Result{Data: map[string]any{m.Var: v, "debug": text}}, nil
	}
	msg := m.Msg.Get()
	if msg == nil {
		msg = "Hello world!" // Ansible's default
	}
	return modules.Result{Data: map[string]any{"msg": msg, "debug": show(msg)}}, nil
}

// Check prints as Run does: printing changes nothing.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Run(ctx, h)
}

// lookup follows the dotted path p through maps.
func lookup(vals map[string]any, p string) (any, bool) {
	var cur any = vals
	for _, part := range strings.Split(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// show is v as text: a string as it is, anything else as indented JSON.
func show(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
