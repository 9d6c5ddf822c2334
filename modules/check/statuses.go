package check

import (
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/spec"
)

// DecodeNode accepts one status code or a list of them; each code is decoded by
// d, so a wrong one is reported at its own line and column.
func (s *Statuses) DecodeNode(d *spec.Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind == yaml.SequenceNode {
		out := make(Statuses, len(n.Content))
		for i, item := range n.Content {
			d.Decode(item, &out[i], ds)
		}
		*s = out
		return
	}
	var code int
	d.Decode(n, &code, ds)
	*s = Statuses{code}
}

var _ spec.NodeDecoder = (*Statuses)(nil)
