package spec

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules/arg"
)

// window reads a `window:` value (the runbook's or a step's) with the parser
// of in_window, so both say the same of a window.
func (l *loader) window(n *yaml.Node, key string) *eval.Window {
	if n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		l.ds.Add(l.pos(n), fmt.Sprintf("%q must be a window like \"Mon-Fri 02:00-05:00 UTC\", got %s", key, arg.Describe(n)),
			"write DAYS HH:MM-HH:MM ZONE, as in_window takes it")
		return nil
	}
	var s string
	l.decodeKey(n, &s, key)
	if strings.Contains(s, "{{") {
		l.ds.Add(l.pos(n), fmt.Sprintf("%q cannot be a template", key),
			"the window is checked before anything is rendered; write it out, such as \"Mon-Fri 02:00-05:00 UTC\"")
		return nil
	}
	w, err := eval.ParseWindow(s)
	if err != nil {
		l.ds.Add(l.pos(n), fmt.Sprintf("%q: %v", key, err), "")
		return nil
	}
	return w
}
