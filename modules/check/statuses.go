package check

import (
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// DecodeNode accepts one status code or a list of them, each reported at its
// own line and column when it is not a code.
func (s *Statuses) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	switch n.Kind {
	case yaml.ScalarNode:
		if code, ok := statusCode(d, n, d.Name(), ds); ok {
			*s = Statuses{code}
		}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			ds.Errorf(d.Pos(n), "%s is an empty list; give the codes that pass, or leave it out for 200", d.Name())
			return
		}
		out := make(Statuses, 0, len(n.Content))
		for i, c := range n.Content {
			c = arg.Resolve(c)
			if d.Templated(c) {
				continue
			}
			if code, ok := statusCode(d, c, itemName(d.Name(), i), ds); ok {
				out = append(out, code)
			}
		}
		*s = out
	default:
		ds.Errorf(d.Pos(n), "%s must be a status code or a list of them, like [200, 204]", d.Name())
	}
}

// itemName names item i of the list named name as the decoder names list items:
// "http.status[1]".
func itemName(name string, i int) string {
	if path, err := strconv.Unquote(name); err == nil {
		return strconv.Quote(path + "[" + strconv.Itoa(i) + "]")
	}
	return name + "[" + strconv.Itoa(i) + "]"
}

func statusCode(d *arg.Decoder, n *yaml.Node, name string, ds *diag.Diags) (int, bool) {
	code, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil || code < 100 || code > 599 {
		ds.Errorf(d.Pos(n), "%s must be an HTTP status code from 100 to 599, got %q", name, n.Value)
		return 0, false
	}
	return code, true
}

var _ arg.NodeDecoder = (*Statuses)(nil)
