package arg

import (
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
)

// parse reads src as one YAML document and returns its root node, as the
// runbook loader's parser does for the valid documents these tests use.
func parse(file string, src []byte) (*yaml.Node, diag.Diags) {
	var ds diag.Diags
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		ds.Errorf(diag.Pos{File: file, Line: 1, Col: 1}, "%v", err)
		return nil, ds
	}
	if len(doc.Content) != 1 {
		ds.Errorf(diag.Pos{File: file, Line: 1, Col: 1}, "the file is empty")
		return nil, ds
	}
	return doc.Content[0], ds
}
