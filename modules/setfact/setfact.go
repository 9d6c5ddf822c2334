// Package setfact is the set_fact module: variables for the host's later
// steps, as Ansible's set_fact.
package setfact

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/anyval"
)

func init() {
	modules.Register(modules.Info{
		Name: "set_fact",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "set variables for the host's later steps, as Ansible's set_fact",
			Description: `Each key is a variable name, each value (rendered like any argument) its
value, seen by the later steps of the same host (and by its rollback
steps) as a var: over the runbook's and the inventory's vars, and under
-e, as in Ansible. Later steps are compiled knowing the names, and their
templates that read one wait for the run. The values are in the step's
result (ansible_facts) and the journal, redacted as every result: a
resumed run sets them again from there, so a value that held a secret of
the run reads <redacted> after a resume (and a no_log set_fact sets
nothing after a resume): compute such values again in a later step.`,
			Example: `- command: etcdctl endpoint status -w json
  register: status
- set_fact:
    leader_id: '{{ fromJSON(status.stdout)[0].Status.leader }}'
    upgraded: true
- debug: { var: leader_id }`,
		},
	})
}

// Module holds the variables to set.
type Module struct {
	// Vars is decoded by DecodeNode: its tag only names it in runbook doc.
	Vars map[string]any `yaml:"VAR" doc:"each key is a variable to set and its value (rendered like any argument) the value"`
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// DecodeNode takes every key of the mapping as a variable.
func (m *Module) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind != yaml.MappingNode {
		ds.Errorf(d.Pos(n), "set_fact must be a mapping of variable names to values, got %s", arg.Describe(n))
		return
	}
	m.Vars = map[string]any{}
	keys, values := d.Pairs(n, ds)
	for i, k := range keys {
		if !identRe.MatchString(k.Value) {
			ds.Errorf(d.Pos(k), "set_fact: %q is not a variable name; use letters, digits and _, not starting with a digit", k.Value)
			continue
		}
		d.Within(k.Value, func() { m.Vars[k.Value] = anyval.Decode(d, values[i], ds) })
	}
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return m }

// Validate wants at least one variable.
func (m *Module) Validate() error {
	if len(m.Vars) == 0 {
		return fmt.Errorf("sets nothing; give variable: value pairs")
	}
	return nil
}

// SetsVars names the variables, for the loader.
func (m *Module) SetsVars() []string { return slices.Sorted(maps.Keys(m.Vars)) }

// Run returns the values; the runner sets them.
func (m *Module) Run(context.Context, *modules.Host) (modules.Result, error) {
	return modules.Result{Data: map[string]any{modules.FactsKey: maps.Clone(m.Vars)}}, nil
}

// Check sets them too: later steps judged in --check need them.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Run(ctx, h)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.VarSetter = (*Module)(nil)
)
