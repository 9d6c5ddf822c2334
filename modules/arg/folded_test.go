package arg

import (
	"strings"
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
	flow := []struct {
		name string
		src  string
		want map[int]string
	}{
		{
			name: "a plain scalar over two lines",
			src:  "expect: a > 1 &&\n  limit\n",
			// value: "a > 1 && limit"
			want: map[int]string{0: "1:9", 7: "1:16", 8: "1:17", 9: "2:3", 14: "2:8"},
		},
		{
			name: "single quotes over two lines, with a doubled quote",
			src:  "expect: 'a == ''x'' &&\n    b'\n",
			// value: "a == 'x' && b"
			want: map[int]string{0: "1:10", 5: "1:15", 7: "1:18", 12: "2:5", 13: "2:6"},
		},
		{
			name: "double quotes with escapes",
			src:  "expect: \"a in [\\\"x\\\"]\"\n",
			// value: a in ["x"]
			want: map[int]string{0: "1:10", 6: "1:16", 7: "1:18", 8: "1:19", 9: "1:21", 10: "1:22"},
		},
	}
	for _, tt := range flow {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
				t.Fatal(err)
			}
			n := doc.Content[0].Content[1]
			d := &Decoder{File: "rb.yml", Source: []byte(tt.src)}
			at := d.ValuePositions(n)
			if len(at) != len([]rune(n.Value))+1 {
				t.Fatalf("%d positions for %d runes of %q (and its end)", len(at), len([]rune(n.Value)), n.Value)
			}
			for off, want := range tt.want {
				if got := at[off].String(); got != "rb.yml:"+want {
					t.Errorf("rune %d of %q at %s, want %s", off, n.Value, got, want)
				}
			}
		})
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
			at := d.ValuePositions(n)
			if len(at) != len([]rune(n.Value))+1 {
				t.Fatalf("%d positions for %d runes of %q (and its end)", len(at), len([]rune(n.Value)), n.Value)
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
	src := "a: |\n  x\nb: 'y'\nc: z == 1\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	d := &Decoder{File: "rb.yml", Source: []byte(src)}
	for _, n := range doc.Content[0].Content {
		if d.ValuePositions(n) != nil {
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

// TestValuePositionsBounded: on any scalar the table has a position for each
// rune and its end, all inside the file.
func TestValuePositionsBounded(t *testing.T) {
	for _, src := range []string{
		"a: \"x\\\n  y\"\n",
		"a: \"\\u00e9t\\x41\\U0001F600 z\"\n",
		"a: 'é\r\n  ü'\r\n",
		"a: x\n\n  y\n\n  z\n",
		"a: >\n  x\n\n\n  y\n",
		"a: >-\n\tx\n",
		"a: \"\"\n",
		"a: ''\n",
		"a: >\n\n",
		"a:  p  q  \n  r\n",
		"- \"a\n\n  b\"\n",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			continue
		}
		lines := strings.Count(src, "\n") + 1
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if n.Kind == yaml.ScalarNode {
				d := &Decoder{File: "rb.yml", Source: []byte(src)}
				at := d.ValuePositions(n)
				if at != nil && len(at) != len([]rune(n.Value))+1 {
					t.Errorf("%q: %d positions for %q", src, len(at), n.Value)
				}
				for _, p := range at {
					if p.Line < 1 || p.Line > lines || p.Col < 1 {
						t.Errorf("%q: position %v outside the file", src, p)
					}
				}
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(&doc)
	}
}
