package spec

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// TestFoldedPositions: each rune of a folded scalar's value is found at its
// line and column in the source, across the joined lines, blank lines and
// more-indented lines.
func TestFoldedPositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// rune offsets in the value and where they must be: "line:col"
		want map[int]string
	}{
		{
			name: "two lines joined",
			src:  "expect: >-\n  a > 1 &&\n  limit\n",
			// value: "a > 1 && limit"
			want: map[int]string{0: "2:3", 7: "2:10", 8: "2:11", 9: "3:3", 13: "3:7"},
		},
		{
			name: "a blank line",
			src:  "expect: >\n  a\n\n  b\n",
			// value: "a\nb\n"
			want: map[int]string{0: "2:3", 2: "4:3"},
		},
		{
			name: "more indented lines keep their breaks",
			src:  "expect: >-\n  a\n    b\n  c\n",
			// value: "a\n  b\nc"
			want: map[int]string{0: "2:3", 2: "3:3", 4: "3:5", 6: "4:3"},
		},
		{
			name: "deeper in the file",
			src:  "step:\n  expect: >-\n    x ==\n      y\n",
			want: map[int]string{0: "3:5", 5: "4:5", 7: "4:7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
				t.Fatal(err)
			}
			n := findFolded(&doc)
			if n == nil {
				t.Fatal("no folded scalar")
			}
			d := &Decoder{File: "rb.yml", Source: []byte(tt.src)}
			at := d.FoldedPositions(n)
			if len(at) != len([]rune(n.Value)) {
				t.Fatalf("%d positions for %d runes of %q", len(at), len([]rune(n.Value)), n.Value)
			}
			for off, want := range tt.want {
				p := at[off]
				if got := p.String(); got != "rb.yml:"+want {
					t.Errorf("rune %d (%q) of %q at %s, want %s", off, []rune(n.Value)[off], n.Value, got, want)
				}
			}
		})
	}
	// Every other scalar has no table: ValuePos is exact for it.
	var doc yaml.Node
	src := "a: |\n  x\nb: 'y'\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	d := &Decoder{File: "rb.yml", Source: []byte(src)}
	for _, n := range doc.Content[0].Content {
		if d.FoldedPositions(n) != nil {
			t.Errorf("a table for %q", n.Value)
		}
	}
}

func findFolded(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Style&yaml.FoldedStyle != 0 {
		return n
	}
	for _, c := range n.Content {
		if f := findFolded(c); f != nil {
			return f
		}
	}
	return nil
}
