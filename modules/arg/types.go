package arg

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
)

// NodeDecoder is implemented by types that decode themselves from a YAML node,
// usually because they accept several shapes (serial: 2 | "25%" | [1, "50%"]).
// A decoder records every problem in ds, with the node's position, and keeps
// going. The Decoder calls it on a pointer, never with an alias node, a null
// value, or (in template mode) a templated string; items of a list it walks
// itself must be checked with d.Templated and Resolve.
type NodeDecoder interface {
	DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags)
}

// Duration is a positive duration written as Go writes them: "90s", "1m30s", "250ms".
type Duration time.Duration

// Std returns the duration as a time.Duration.
func (v Duration) Std() time.Duration { return time.Duration(v) }

func (v Duration) String() string { return time.Duration(v).String() }

// MarshalText writes the duration as it is written in a runbook: "1m30s".
func (v Duration) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// DecodeNode implements NodeDecoder.
func (v *Duration) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	want := fmt.Sprintf("%s must be a positive duration like \"90s\", got %s", d.Name(), Describe(n))
	if n.Kind != yaml.ScalarNode {
		ds.Add(d.Pos(n), want, "")
		return
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
		// A bare number is the most common mistake; seconds is almost always meant.
		ds.Add(d.Pos(n), want, fmt.Sprintf("add a unit: \"%ss\"", n.Value))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		ds.Add(d.Pos(n), want, "units are ms, s, m and h")
		return
	case dur <= 0:
		ds.Add(d.Pos(n), want, "")
		return
	}
	*v = Duration(dur)
}

// FileMode is a permission mode, always read in octal: "0755", 0755, "755" and
// "0o755" all mean rwxr-xr-x. Modes are octal by nature, and reading an
// unquoted 755 as decimal (as YAML would) silently gives a wrong mode.
type FileMode fs.FileMode

// Perm returns the mode as an fs.FileMode.
func (v FileMode) Perm() fs.FileMode { return fs.FileMode(v) }

func (v FileMode) String() string { return fmt.Sprintf("%04o", uint32(v)) }

// MarshalText writes the mode in octal: "0755".
func (v FileMode) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// DecodeNode implements NodeDecoder.
func (v *FileMode) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	bad := func() {
		ds.Errorf(d.Pos(n), "%s must be an octal file mode like \"0755\", at most \"7777\", got %s", d.Name(), Describe(n))
	}
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!str") {
		bad()
		return
	}
	text := strings.TrimPrefix(strings.TrimPrefix(n.Value, "0o"), "0O")
	if text == "" || len(text) > 5 {
		bad()
		return
	}
	m, err := strconv.ParseUint(text, 8, 32)
	if err != nil || m > 0o7777 {
		bad()
		return
	}
	*v = FileMode(m)
}

// Quota is a count of hosts: 3, or a percent of some total: "25%".
type Quota struct {
	Count     int
	Percent   float64 // used when IsPercent
	IsPercent bool
	Pos       diag.Pos
}

// Of returns how many hosts the quota allows out of total: the count, or the
// percent of total rounded down (so max_fail "10%" of 5 hosts tolerates none).
func (q Quota) Of(total int) int {
	if !q.IsPercent {
		return q.Count
	}
	return int(math.Floor(float64(total)*q.Percent/100 + 1e-9))
}

func (q Quota) String() string {
	if q.IsPercent {
		return strconv.FormatFloat(q.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(q.Count)
}

// MarshalJSON writes a count as a number and a percent as "25%".
func (q Quota) MarshalJSON() ([]byte, error) {
	if q.IsPercent {
		return json.Marshal(q.String())
	}
	return json.Marshal(q.Count)
}

// DecodeNode implements NodeDecoder: a whole number ≥ 0 or "N%" with 0 < N ≤ 100.
func (q *Quota) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	if v, ok := decodeQuota(d, n, 0, ds); ok {
		*q = v
	}
}

// decodeQuota reads a count (at least min) or a percentage.
func decodeQuota(d *Decoder, n *yaml.Node, min int, ds *diag.Diags) (Quota, bool) {
	pos := d.Pos(n)
	shape := func() {
		ds.Errorf(pos, "%s must be a number of hosts or a percentage like \"25%%\", got %s", d.Name(), Describe(n))
	}
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!str") {
		shape()
		return Quota{}, false
	}
	if p, ok := strings.CutSuffix(strings.TrimSpace(n.Value), "%"); ok && tag == "!!str" {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) {
			shape()
			return Quota{}, false
		}
		if f <= 0 || f > 100 {
			ds.Errorf(pos, "%s must be a percentage above 0%% and at most 100%%, got %s", d.Name(), Describe(n))
			return Quota{}, false
		}
		return Quota{Percent: f, IsPercent: true, Pos: pos}, true
	}
	// A count in quotes is accepted: the percent form makes this a string-ish value.
	c, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 0)
	if tag == "!!int" && err != nil {
		var v int64
		if n.Decode(&v) == nil {
			c, err = v, nil
		}
	}
	switch {
	case err != nil:
		shape()
		return Quota{}, false
	case c < 0:
		ds.Errorf(pos, "%s must not be negative, got %s", d.Name(), n.Value)
		return Quota{}, false
	case c < int64(min):
		ds.Add(pos, fmt.Sprintf("%s must be at least %d, got %s", d.Name(), min, n.Value),
			"a batch needs at least one host")
		return Quota{}, false
	}
	return Quota{Count: int(c), Pos: pos}, true
}

// Serial is a list of batch sizes; the last one repeats: 2, "25%" or [1, "50%", "100%"].
// Empty means all hosts in one batch.
type Serial []Quota

// DecodeNode implements NodeDecoder: one quota, or a non-empty list of them;
// counts must be at least 1.
func (s *Serial) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind != yaml.SequenceNode {
		if q, ok := decodeQuota(d, n, 1, ds); ok {
			*s = Serial{q}
		}
		return
	}
	if len(n.Content) == 0 {
		ds.Add(d.Pos(n), fmt.Sprintf("%s must not be an empty list", d.Name()),
			"write a batch size like 1 or \"25%\", or a list of them")
		return
	}
	out := make(Serial, 0, len(n.Content))
	for i, c := range n.Content {
		d.within(fmt.Sprintf("[%d]", i), false, func() {
			if q, ok := decodeQuota(d, Resolve(c), 1, ds); ok {
				out = append(out, q)
			}
		})
	}
	if len(out) == len(n.Content) {
		*s = out
	}
}

// Batches splits n hosts into batch sizes the way Ansible's serial does: each
// entry in turn, the last one repeating until every host is placed; a percent is
// of n, rounded down but at least 1; the last batch takes what is left.
func (s Serial) Batches(n int) []int {
	if n <= 0 {
		return nil
	}
	if len(s) == 0 {
		return []int{n}
	}
	var out []int
	for i, left := 0, n; left > 0; i++ {
		size := s[min(i, len(s)-1)].Of(n)
		size = max(1, min(size, left))
		out = append(out, size)
		left -= size
	}
	return out
}

func (s Serial) String() string {
	parts := make([]string, len(s))
	for i, q := range s {
		parts[i] = q.String()
	}
	return strings.Join(parts, ", ")
}

// Argv is a command written as one string, split into words the way a shell
// would split it (quotes and backslashes respected, nothing expanded), or as a
// list of words. A templated string is rendered first and split after; write a
// list to keep a rendered value in one word whatever it contains.
type Argv []string

// DecodeNode implements NodeDecoder.
func (a *Argv) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	switch n.Kind {
	case yaml.ScalarNode:
		words, off, err := splitWords(n.Value)
		if err != nil {
			pos := d.ValuePos(n)
			if !strings.Contains(n.Value, "\n") && n.Style&(yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				pos.Col += utf8.RuneCountInString(n.Value[:off])
			}
			ds.Errorf(pos, "%s %v", d.Name(), err)
			return
		}
		if len(words) == 0 {
			ds.Errorf(d.Pos(n), "%s must not be empty", d.Name())
			return
		}
		*a = words
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			ds.Errorf(d.Pos(n), "%s must not be empty", d.Name())
			return
		}
		out := make(Argv, len(n.Content))
		for i, c := range n.Content {
			d.within(fmt.Sprintf("[%d]", i), false, func() {
				c = Resolve(c)
				if d.Templated(c) {
					return
				}
				if c.Kind != yaml.ScalarNode || c.ShortTag() == "!!null" {
					d.mismatch(c, "a string", ds)
					return
				}
				out[i] = c.Value
			})
		}
		*a = out
	default:
		d.mismatch(n, "a command (a string or a list of words)", ds)
	}
}

// splitWords splits s into words like a POSIX shell, without any expansion.
// On error it returns the byte offset of the culprit.
func splitWords(s string) ([]string, int, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, i, fmt.Errorf("has an unbalanced ' quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			start := i
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						cur.WriteByte(s[i])
					}
					continue
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, start, fmt.Errorf("has an unbalanced \" quote")
			}
			inWord = true
		case '\\':
			if i+1 == len(s) {
				return nil, i, fmt.Errorf("ends with a lone backslash")
			}
			i++
			if s[i] != '\n' { // backslash-newline continues the line
				cur.WriteByte(s[i])
				inWord = true
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, 0, nil
}

// StringList is one string or a list of strings (tags, when-lists).
type StringList []string

// DecodeNode implements NodeDecoder.
func (l *StringList) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = StringList{n.Value}
	case yaml.SequenceNode:
		out := make(StringList, len(n.Content))
		for i, c := range n.Content {
			d.within(fmt.Sprintf("[%d]", i), false, func() {
				c = Resolve(c)
				if d.Templated(c) {
					return
				}
				if c.Kind != yaml.ScalarNode || c.ShortTag() == "!!null" {
					d.mismatch(c, "a string", ds)
					return
				}
				out[i] = c.Value
			})
		}
		*l = out
	default:
		d.mismatch(n, "a string or a list of strings", ds)
	}
}

// Expr is an expr-lang expression that a module evaluates itself (check's
// `expect`, assert-metric's `expect`). The loader compiles it as a Bool with
// `result` in scope plus the names the module declares (modules.ExprNamer).
type Expr struct {
	Src     string
	Pos     diag.Pos
	Program *eval.Program
	// at is the position of each rune of Src when it is a folded scalar.
	at []diag.Pos
}

func (*Expr) rawScalar() {}

// Positions is where each rune of Src is in the file when it is a folded
// scalar (nil otherwise), so that an error inside the expression points at its
// text.
func (e *Expr) Positions() []diag.Pos { return e.at }

func (e Expr) String() string { return e.Src }

// MarshalText writes the expression's source.
func (e Expr) MarshalText() ([]byte, error) { return []byte(e.Src), nil }

// DecodeNode implements NodeDecoder. The text is taken as it is, never as a
// template; the Decoder's OnExpr compiles it.
func (e *Expr) DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, "an expression", ds)
		return
	}
	if strings.TrimSpace(n.Value) == "" {
		ds.Errorf(d.Pos(n), "%s must be an expression, got an empty string", d.Name())
		return
	}
	*e = Expr{Src: n.Value, Pos: d.ValuePos(n), at: d.ValuePositions(n)}
	if d.OnExpr != nil {
		d.OnExpr(e, d.Key())
	}
}
