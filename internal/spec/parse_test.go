package spec

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"empty", "", "f.yml: the file is empty; a runbook needs at least the keys runbook, hosts and steps"},
		{"comments only", "# x\n", "f.yml: the file is empty; a runbook needs at least the keys runbook, hosts and steps"},
		{"scanner error on line 1", "a: b: c\n", "f.yml:1:1: invalid YAML: mapping values are not allowed in this context"},
		{"scanner error later", "a: 1\nb: 2\nc: d: e\n", "f.yml:3:1: invalid YAML: mapping values are not allowed in this context"},
		{"parser error", "a: 1\nb: 2\n- c\n", "f.yml:3:1: invalid YAML: did not find expected key"},
		{"unclosed flow", "a: 1\nb: [1,\nc: 3\n", "f.yml:2:1: invalid YAML: did not find expected ',' or ']'"},
		{"error at the end", "a: [\n", "f.yml:1:1: invalid YAML: did not find expected node content"},
		{"tab", "a: 1\n\tb: 2\n", "f.yml:2:1: invalid YAML: found a tab character that violates indentation"},
		{"unknown anchor", "a: 1\nb: [x, *nope]\n", `f.yml:2:8: unknown anchor "nope"; define it first with &nope`},
		{"second document", "a: 1\n---\nb: 2\n", "f.yml:2:1: the file holds a second YAML document; a runbook is one document; remove the --- line or move the rest to its own file"},
		{"broken second document", "a: 1\n---\nb: [\n", "f.yml:3:1: invalid YAML: did not find expected node content"},
		{"one document with a start marker", "---\na: 1\n...\n", ""},
		{"only a start marker", "---\n", "f.yml: the file is empty; a runbook needs at least the keys runbook, hosts and steps"},
		{"a trailing start marker", "a: 1\n---\n", ""},
		{"control character", "a: 1\nb: x\x01\n", "f.yml:2:5: invalid YAML: control characters are not allowed"},
		{"invalid UTF-8", "a: 1\nb: \xff\n", "f.yml:2:4: invalid YAML: invalid leading UTF-8 octet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := Parse("f.yml", []byte(tt.src))
			var got []string
			for _, d := range ds {
				got = append(got, d.Error())
			}
			if strings.Join(got, "\n") != tt.want {
				t.Errorf("got  %q\nwant %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}
