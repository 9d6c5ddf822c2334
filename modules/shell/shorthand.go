package shell

import (
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// DecodeNode accepts the short form `shell: "etcdctl member list | wc -l"` as cmd;
// a mapping is decoded as usual.
func (m *Module) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	if r := arg.Resolve(n); r != nil && r.Kind == yaml.ScalarNode {
		d.DecodeValue(n, &m.Cmd, ds)
		return
	}
	type plain Module
	d.DecodeValue(n, (*plain)(m), ds)
}

var _ arg.NodeDecoder = (*Module)(nil)
