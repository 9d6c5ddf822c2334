package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// Parse reads src as one YAML document and returns its root node (not the
// document node). Syntax errors become diagnostics with the file and line
// (column 1: yaml.v3 does not report one); an empty file and a second
// document are errors too.
func Parse(file string, src []byte) (*yaml.Node, diag.Diags) {
	var ds diag.Diags
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	err := decodeNode(dec, &doc)
	switch {
	case errors.Is(err, io.EOF):
		ds.Add(diag.Pos{File: file}, "the file is empty", "a runbook needs at least the keys runbook, hosts and steps")
		return nil, ds
	case err != nil:
		ds = append(ds, syntaxError(file, src, err))
		return nil, ds
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 || isEmpty(doc.Content[0]) {
			ds.Add(diag.Pos{File: file}, "the file is empty", "a runbook needs at least the keys runbook, hosts and steps")
			return nil, ds
		}
		root = doc.Content[0]
	}
	var next yaml.Node
	switch err := decodeNode(dec, &next); {
	case errors.Is(err, io.EOF):
	case err == nil && (len(next.Content) == 0 || isEmpty(next.Content[0])):
		// A trailing "---" with nothing after it loses nothing.
	case err != nil:
		ds = append(ds, syntaxError(file, src, err))
	default:
		ds.Add(secondDocPos(file, src, root, &next), "the file holds a second YAML document",
			"a runbook is one document; remove the --- line or move the rest to its own file")
	}
	return root, ds
}

// isEmpty reports whether a document's content is nothing at all.
func isEmpty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == "" && n.Anchor == ""
}

// decodeNode guards against a panic in the YAML library on hostile input: a
// crash in `runbook validate` would be worse than a vague message.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file (%v)", r)
		}
	}()
	return dec.Decode(n)
}

// secondDocPos finds the `---` that starts the second document, or else
// where its content starts.
func secondDocPos(file string, src []byte, first, second *yaml.Node) diag.Pos {
	lastLine := maxLine(first)
	for i, l := range strings.Split(string(src), "\n") {
		if i+1 > lastLine && strings.HasPrefix(l, "---") {
			return diag.Pos{File: file, Line: i + 1, Col: 1}
		}
	}
	n := arg.Resolve(second)
	if n != nil && n.Line > 0 {
		return diag.Pos{File: file, Line: n.Line, Col: n.Column}
	}
	return diag.Pos{File: file, Line: lastLine + 1, Col: 1}
}

func maxLine(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	m := n.Line
	for _, c := range n.Content {
		m = max(m, maxLine(c))
	}
	return m
}

var (
	lineRe   = regexp.MustCompile(`^line (\d+): `)
	anchorRe = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// scannerProblems are the messages of libyaml's scanner. yaml.v3 reports
// their line 1-based, but the parser's line 0-based (it adds one only for
// scanner errors), and leaves the line out altogether when it is the first.
var scannerProblems = []string{
	"block sequence entries are not allowed in this context",
	"could not find expected ':'",
	"could not find expected directive name",
	"did not find expected alphabetic or numeric character",
	"did not find expected comment or line break",
	"did not find expected digit or '.' character",
	"did not find expected hexdecimal number",
	"did not find expected version number",
	"did not find expected whitespace or line break",
	"did not find expected whitespace",
	"did not find the expected '>'",
	"found a tab character that violates indentation",
	"found a tab character where an indentation space is expected",
	"found an indentation indicator equal to 0",
	"found character that cannot start any token",
	"found extremely long version number",
	"found invalid Unicode character escape code",
	"found unexpected document indicator",
	"found unexpected end of stream",
	"found unexpected non-alphabetical character",
	"found unknown directive name",
	"found unknown escape character",
	"mapping keys are not allowed in this context",
	"mapping values are not allowed in this context",
}

// syntaxError turns a yaml.v3 error into a diagnostic, with the best line we
// can tell.
func syntaxError(file string, src []byte, err error) diag.Diag {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		scanner := false
		for _, p := range scannerProblems {
			if msg == p {
				scanner = true
			}
		}
		if !scanner {
			line++
		}
	} else if m := anchorRe.FindStringSubmatch(msg); m != nil {
		// The library does not say where; the first use of the alias does.
		if l, c, ok := findAlias(src, m[1]); ok {
			return diag.Diag{Pos: diag.Pos{File: file, Line: l, Col: c}, Summary: fmt.Sprintf("unknown anchor %q", m[1]),
				Detail: "define it first with &" + m[1]}
		}
	} else if strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters") {
		// The reader says what but not where; the first such byte is where.
		if l, c, ok := findBadChar(src); ok {
			return diag.Diag{Pos: diag.Pos{File: file, Line: l, Col: c}, Summary: "invalid YAML: " + msg}
		}
	} else if !strings.HasPrefix(msg, "cannot parse") {
		// A libyaml error without a line happened on the first line.
		line = 1
	}
	lines := bytes.Count(src, []byte("\n"))
	if len(src) > 0 && src[len(src)-1] != '\n' {
		lines++
	}
	line = min(line, max(lines, 1))
	pos := diag.Pos{File: file, Line: line}
	if line > 0 {
		pos.Col = 1
	}
	return diag.Diag{Pos: pos, Summary: "invalid YAML: " + msg}
}

// findAlias returns the line and column of the first `*name` in src.
func findAlias(src []byte, name string) (int, int, bool) {
	for i, l := range strings.Split(string(src), "\n") {
		for off := 0; ; {
			j := strings.Index(l[off:], "*"+name)
			if j < 0 {
				break
			}
			end := off + j + 1 + len(name)
			if end == len(l) || strings.ContainsRune(" ,]}\r\t#", rune(l[end])) {
				return i + 1, len([]rune(l[:off+j])) + 1, true
			}
			off = end
		}
	}
	return 0, 0, false
}

// findBadChar returns the line and column of the first byte YAML does not
// accept: invalid UTF-8, or a control character other than tab and line breaks.
func findBadChar(src []byte) (int, int, bool) {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		bad := r == utf8.RuneError && size <= 1 ||
			r < 0x20 && r != '\t' && r != '\n' && r != '\r' ||
			r >= 0x7f && r <= 0x9f && r != 0x85 ||
			r == 0xfffe || r == 0xffff
		if r == 0xfeff && i == 0 {
			bad = false // a byte order mark
		}
		if bad {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 0, 0, false
}
