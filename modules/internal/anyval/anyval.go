// Package anyval decodes an argument that takes any value (set_fact's
// values, debug's msg) scalar by scalar, so that a template nested in a
// list or a map is compiled at load and rendered at run time as one at the
// top is: the decoder reads a value of type any as plain data and would
// keep a nested '{{ x }}' as text.
package anyval

import (
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// Decode returns n as plain data: strings, numbers, bools, nil, []any and
// map[string]any.
func Decode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) any {
	n = arg.Resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		keys, values := d.Pairs(n, ds)
		for i, k := range keys {
			d.Within(k.Value, func() { out[k.Value] = Decode(d, values[i], ds) })
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			out[i] = Decode(d, c, ds)
		}
		return out
	}
	var v any
	d.DecodeValue(n, &v, ds)
	return v
}

// Value is an argument of any value, decoded with Decode.
type Value struct{ v any }

// Get returns the value; nil when the argument was not given.
func (v Value) Get() any { return v.v }

// DecodeNode implements arg.NodeDecoder.
func (v *Value) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) { v.v = Decode(d, n, ds) }

// DocType names the type in runbook doc.
func (Value) DocType() string { return "any value" }
