package spec

import (
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/runbookhq/runbook/internal/diag"
)

// ident is a bare name used in an expression, at a rune offset of its text.
type ident struct {
	name string
	off  int
}

// identifiers returns the bare names src uses (not fields after a dot), in
// order. An expression that does not parse has none here: its compile error
// says what is wrong.
func identifiers(src string) []ident {
	tree, err := parser.Parse(src)
	if err != nil || tree == nil {
		return nil
	}
	c := &identCollector{}
	ast.Walk(&tree.Node, c)
	return c.out
}

type identCollector struct{ out []ident }

func (c *identCollector) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		c.out = append(c.out, ident{name: id.Value, off: id.Location().From})
	}
}

// templatePart is the text of one {{ }} part and its rune offset in the template.
type templatePart struct {
	src string
	off int
}

// templateParts splits out the {{ }} parts of s, skipping quoted strings
// inside a part so that "}}" in a string does not end it. An unclosed part is
// left out: the template's compile error reports it.
func templateParts(s string) []templatePart {
	var out []templatePart
	for i := 0; i < len(s); {
		open := strings.Index(s[i:], "{{")
		if open < 0 {
			break
		}
		start := i + open + 2
		end := -1
		for j := start; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"' || c == '\'' || c == '`':
				for j++; j < len(s) && s[j] != c; j++ {
					if s[j] == '\\' && c != '`' {
						j++
					}
				}
			case c == '}' && j+1 < len(s) && s[j+1] == '}':
				end = j
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 {
			break
		}
		out = append(out, templatePart{src: s[start:end], off: utf8.RuneCountInString(s[:start])})
		i = end + 2
	}
	return out
}

// textPos is where a scalar's text is in the file: its start, and when the
// text is laid out otherwise (Decoder.ValuePositions) each rune's position.
type textPos struct {
	start diag.Pos
	at    []diag.Pos
}

// of is the file position of rune offset off of text.
func (t textPos) of(text string, off int) diag.Pos {
	if t.at != nil {
		return t.at[min(off, len(t.at)-1)]
	}
	return offsetPos(text, off, t.start)
}

// offsetPos maps rune offset off of text, which starts at pos, to the file:
// on the first line the column counts from pos; on later lines the line
// counts from pos and the column from pos's column (a block scalar's indent),
// as eval maps its own errors.
func offsetPos(text string, off int, pos diag.Pos) diag.Pos {
	line0, col0, n := 0, 0, 0
	for _, r := range text {
		if n == off {
			break
		}
		if r == '\n' {
			line0++
			col0 = 0
		} else {
			col0++
		}
		n++
	}
	if !pos.IsValid() {
		return pos
	}
	pos.Line += line0
	pos.Col += col0
	return pos
}
