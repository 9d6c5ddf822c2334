package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runbookhq/runbook/internal/diag"
)

// Template is a string with {{ expr }} parts. A literal "{{" is written as an
// expression that gives it: {{ "{{" }}. A "}}" outside a part is plain text.
type Template struct {
	Src string
	Pos diag.Pos
	// Name says what the string is for (dest, url) in run-time errors; the
	// loader may set it after ParseTemplate.
	Name string

	parts  []part
	single bool // exactly one {{ }} with only blanks around it: the value keeps its type
}

// part is literal text (prog == nil) or a compiled {{ }} expression.
type part struct {
	lit  string
	prog *Program
}

// IsTemplate reports whether s contains a {{ }} part. An unclosed "{{" counts,
// so that ParseTemplate reports it instead of the text going out as it is.
func IsTemplate(s string) bool { return strings.Contains(s, "{{") }

// ParseTemplate splits s into literal text and {{ }} expressions and compiles each;
// pos is where s starts in the file, mapped as in Compile.
func ParseTemplate(s string, pos diag.Pos, env *Env) (*Template, diag.Diags) {
	return parseTemplate(s, origin{pos: pos, firstCol: pos.Col, laterCol: pos.Col}, env)
}

// ParseTemplateMapped is ParseTemplate for a text laid out otherwise in the
// file (a folded scalar); at holds the file position of each rune of s.
func ParseTemplateMapped(s string, at []diag.Pos, env *Env) (*Template, diag.Diags) {
	return parseTemplate(s, mappedOrigin(s, at), env)
}

func parseTemplate(s string, whole origin, env *Env) (*Template, diag.Diags) {
	pos := whole.pos
	at := func(off int) diag.Pos {
		line0, col0 := lineCol(s, off)
		return whole.at(line0, col0)
	}
	spans, serr := scanTemplate(s)
	if serr != nil {
		var ds diag.Diags
		ds.Add(at(serr.at), serr.summary, serr.detail)
		return nil, ds
	}

	t := &Template{Src: s, Pos: pos}
	var ds diag.Diags
	last := 0
	for _, sp := range spans {
		if sp.open > last {
			t.parts = append(t.parts, part{lit: s[last:sp.open]})
		}
		last = sp.close
		src := s[sp.start:sp.end]
		trimmed := strings.TrimLeft(src, " \t\r\n")
		start := sp.start + len(src) - len(trimmed)
		trimmed = strings.TrimRight(trimmed, " \t\r\n")
		if trimmed == "" {
			ds.Add(at(sp.open), "empty {{ }}", `write an expression inside, or {{ "{{" }} for a literal {{`)
			continue
		}
		p := at(start)
		o := origin{pos: p, firstCol: p.Col, laterCol: pos.Col}
		switch {
		case whole.mapped != nil:
			o = whole.sub(utf8.RuneCountInString(s[:start]), trimmed)
		case !pos.IsValid():
			o = origin{pos: pos}
		}
		prog, pds := compile(trimmed, o, env, Any)
		ds.Append(pds)
		if prog != nil {
			t.parts = append(t.parts, part{prog: prog})
		}
	}
	if last < len(s) {
		t.parts = append(t.parts, part{lit: s[last:]})
	}
	if ds.HasErrors() {
		ds.Sort()
		return nil, ds
	}
	t.single = len(spans) == 1 &&
		strings.TrimSpace(s[:spans[0].open]) == "" && strings.TrimSpace(s[spans[0].close:]) == ""
	if t.single {
		// The blanks around a lone {{ }} are layout, not text.
		for _, p := range t.parts {
			if p.prog != nil {
				t.parts = []part{p}
				break
			}
		}
	}
	return t, ds
}

// MaxRendered is the most text one template may render to. A command line,
// a file's content or a URL built from vars is kilobytes; a string of
// megabytes is a mistake (a loop over the wrong list, a var holding a whole
// file), and it would be held in memory, sent to hosts and journaled.
const MaxRendered = 1 << 20

// Render evaluates the template. A string that is exactly one {{ }} keeps the
// value's type (a list stays a list, a number a number); otherwise the parts are
// formatted and joined into a string. A string longer than MaxRendered is an
// error at the template's position.
func (t *Template) Render(s *Scope) (any, error) {
	var env map[string]any
	if len(t.parts) > 1 || len(t.parts) == 1 && t.parts[0].prog != nil {
		env = s.env()
	}
	if t.single {
		p := t.parts[0].prog
		v, err := p.exec(env, t.Name)
		if str, ok := v.(string); ok && len(str) > MaxRendered {
			return nil, t.tooLarge(p, len(str))
		}
		if err == nil {
			s.rendered(v)
		}
		return v, err
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.prog.exec(env, t.Name)
		if err != nil {
			return nil, err
		}
		s.rendered(v)
		str, err := Format(v)
		if err != nil {
			return nil, p.prog.errorAt(p.prog.Pos, t.Name, err)
		}
		if b.Len()+len(str) > MaxRendered {
			return nil, t.tooLarge(p.prog, b.Len()+len(str))
		}
		b.WriteString(str)
	}
	return b.String(), nil
}

func (s *Scope) rendered(v any) {
	if s != nil && s.Rendered != nil {
		s.Rendered(v)
	}
}

func (t *Template) tooLarge(p *Program, n int) error {
	return p.errorAt(t.Pos, t.Name, fmt.Errorf("the template renders to more than %d bytes (%d so far), the limit for one rendered string; is a var holding more than meant?", MaxRendered, n))
}

// Format turns a value into the text a template puts in its place: strings as
// they are, numbers without trailing zeros, nil as "", durations as 1m30s,
// times in RFC 3339, and lists, maps and hosts as JSON.
func Format(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int8, int16, int32, int64:
		return fmt.Sprint(x), nil
	case uint, uint8, uint16, uint32, uint64, uintptr:
		return fmt.Sprint(x), nil
	case float64:
		return formatFloat(x, 64), nil
	case float32:
		return formatFloat(float64(x), 32), nil
	case time.Duration:
		return x.String(), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // URLs and shell text keep their & < >
	if err := enc.Encode(jsonable(v)); err != nil {
		return "", fmt.Errorf("cannot write %T as text: %w", v, err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func formatFloat(f float64, bits int) string {
	if a := math.Abs(f); a != 0 && (a >= 1e21 || a < 1e-6) {
		return strconv.FormatFloat(f, 'g', -1, bits)
	}
	return strconv.FormatFloat(f, 'f', -1, bits)
}

// jsonable converts the map[any]any that YAML decoding can produce, which
// encoding/json rejects, into map[string]any, at any depth.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			s, err := Format(k)
			if err != nil {
				s = fmt.Sprint(k)
			}
			m[s] = jsonable(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = jsonable(e)
		}
		return l
	}
	return v
}

// span is one {{ }} of a template, as byte offsets in it: "{{" at open, the
// expression from start to end, and the text after "}}" from close.
type span struct{ open, start, end, close int }

type scanError struct {
	at              int // byte offset of the problem
	summary, detail string
}

// scanTemplate finds the {{ }} parts of s. The expression inside a part is
// read as expr's lexer reads it, so that a "}}" inside a string or a comment,
// or the braces of a map literal, do not end the part.
func scanTemplate(s string) ([]span, *scanError) {
	var spans []span
	for i := 0; ; {
		k := strings.Index(s[i:], "{{")
		if k < 0 {
			return spans, nil
		}
		open := i + k
		end, err := scanExpr(s, open)
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{open: open, start: open + 2, end: end, close: end + 2})
		i = end + 2
	}
}

// scanExpr returns the offset of the "}}" that closes the part opened at open.
func scanExpr(s string, open int) (int, *scanError) {
	unclosed := func(detail string) *scanError {
		return &scanError{at: open, summary: `"{{" has no closing "}}"`, detail: detail}
	}
	depth, braces := 0, false
	for i := open + 2; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := skipQuoted(s, i)
			if j < 0 {
				return -1, unclosed(fmt.Sprintf("a string in it, opened with %c, is not closed", c))
			}
			i = j
			continue
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return -1, unclosed("a /* comment in it is not closed")
			}
			i += 2 + j + 2
			continue
		case c == '/' && strings.HasPrefix(s[i:], "//"):
			// A line comment ends at the end of the line, or at the "}}" that
			// ends the part: expr never sees what follows it.
			for ; i < len(s) && s[i] != '\n'; i++ {
				if depth == 0 && strings.HasPrefix(s[i:], "}}") {
					return i, nil
				}
			}
			continue
		case c == '{':
			depth++
			braces = true
		case c == '}':
			if depth > 0 {
				depth--
			} else if strings.HasPrefix(s[i:], "}}") {
				return i, nil
			}
		}
		i++
	}
	if depth > 0 {
		return -1, unclosed(`a "{" in it is not closed`)
	}
	if braces {
		return -1, unclosed(`check the { } in it: only a "}}" outside them ends the part`)
	}
	return -1, unclosed(`end the expression with "}}", or write {{ "{{" }} for a literal {{`)
}

// skipQuoted returns the offset after the string literal that starts at i, or
// -1 if it is not closed. Backquoted strings have no escapes, as in expr.
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			return j + 1
		}
	}
	return -1
}

// lineCol returns the 0-based line and rune column of byte offset off in s.
func lineCol(s string, off int) (line, col int) {
	start := strings.LastIndexByte(s[:off], '\n') + 1
	return strings.Count(s[:off], "\n"), utf8.RuneCountInString(s[start:off])
}
