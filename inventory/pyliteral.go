package inventory

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pyLiteral evaluates s the way Ansible's INI plugin does with Python's
// ast.literal_eval: 22 is an int, True a bool, '22' (quoted) a string, [1, 2] a
// list. ok is false when s is not such a literal; the INI plugin then keeps s,
// unchanged, as a string, and so do we. Tuples and sets become lists; complex
// numbers and integers beyond 64 bits are kept as their text.
func pyLiteral(s string) (v any, ok bool) {
	p := &pyParser{s: strings.TrimLeft(s, " \t")}
	v, ok = p.expr(0)
	if !ok {
		return nil, false
	}
	p.skipSpace(false)
	if p.i < len(p.s) && p.s[p.i] == '#' {
		p.i = len(p.s)
	}
	if p.i != len(p.s) {
		return nil, false
	}
	return v, true
}

type pyParser struct {
	s string
	i int
}

// maxPyDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxPyDepth = 50

func (p *pyParser) skipSpace(inBrackets bool) {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\f':
			p.i++
		case inBrackets && (c == '\n' || c == '\r'):
			p.i++
		case inBrackets && c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) expr(depth int) (any, bool) {
	if depth > maxPyDepth {
		return nil, false
	}
	p.skipSpace(depth > 0)
	c := p.peek()
	switch {
	case c == '[':
		p.i++
		items, ok := p.items(']', depth)
		return items, ok
	case c == '(':
		p.i++
		start := p.i
		p.skipSpace(true)
		if p.peek() == ')' {
			p.i++
			return []any{}, true
		}
		p.i = start
		first, ok := p.expr(depth + 1)
		if !ok {
			return nil, false
		}
		p.skipSpace(true)
		if p.peek() == ')' { // a parenthesised value, not a tuple
			p.i++
			return first, true
		}
		if p.peek() != ',' {
			return nil, false
		}
		p.i++
		rest, ok := p.items(')', depth)
		if !ok {
			return nil, false
		}
		return append([]any{first}, rest...), true
	case c == '{':
		p.i++
		return p.dictOrSet(depth)
	case c == '+' || c == '-':
		p.i++
		p.skipSpace(depth > 0)
		v, ok := p.number()
		if !ok {
			return nil, false
		}
		if c == '-' {
			switch n := v.(type) {
			case int64:
				if n == math.MinInt64 {
					return nil, false
				}
				return int(-n), true
			case float64:
				return -n, true
			}
		}
		if n, isInt := v.(int64); isInt {
			return int(n), true
		}
		return v, true
	case c >= '0' && c <= '9' || c == '.':
		v, ok := p.number()
		if n, isInt := v.(int64); isInt {
			return int(n), ok
		}
		return v, ok
	case c == '\'' || c == '"' || isIdentStart(c):
		if v, ok, isStr := p.stringConcat(); isStr {
			return v, ok
		}
		start := p.i
		for p.i < len(p.s) && isIdentChar(p.s[p.i]) {
			p.i++
		}
		switch p.s[start:p.i] {
		case "True":
			return true, true
		case "False":
			return false, true
		case "None":
			return nil, true
		}
		return nil, false
	}
	return nil, false
}

// items parses "a, b, c" up to closer (already past the opener); a trailing comma is allowed.
func (p *pyParser) items(closer byte, depth int) ([]any, bool) {
	out := []any{}
	for {
		p.skipSpace(true)
		if p.peek() == closer {
			p.i++
			return out, true
		}
		v, ok := p.expr(depth + 1)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		p.skipSpace(true)
		switch p.peek() {
		case ',':
			p.i++
		case closer:
			p.i++
			return out, true
		default:
			return nil, false
		}
	}
}

func (p *pyParser) dictOrSet(depth int) (any, bool) {
	p.skipSpace(true)
	if p.peek() == '}' {
		p.i++
		return map[string]any{}, true
	}
	first, ok := p.expr(depth + 1)
	if !ok {
		return nil, false
	}
	p.skipSpace(true)
	if p.peek() != ':' { // a set: a list for us, as JSON has no sets
		if p.peek() == '}' {
			p.i++
			return []any{first}, true
		}
		if p.peek() != ',' {
			return nil, false
		}
		p.i++
		rest, ok := p.items('}', depth)
		if !ok {
			return nil, false
		}
		return append([]any{first}, rest...), true
	}
	out := map[string]any{}
	key := first
	for {
		p.i++ // the ':'
		v, ok := p.expr(depth + 1)
		if !ok {
			return nil, false
		}
		k, ok := pyKey(key)
		if !ok {
			return nil, false
		}
		out[k] = v
		p.skipSpace(true)
		switch p.peek() {
		case '}':
			p.i++
			return out, true
		case ',':
			p.i++
		default:
			return nil, false
		}
		p.skipSpace(true)
		if p.peek() == '}' {
			p.i++
			return out, true
		}
		if key, ok = p.expr(depth + 1); !ok {
			return nil, false
		}
		p.skipSpace(true)
		if p.peek() != ':' {
			return nil, false
		}
	}
}

// pyKey turns a dict key into a string as Python's json module does when it
// writes one; lists and dicts are not hashable, so not keys.
func pyKey(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, true
	case nil:
		return "null", true
	case bool:
		return strconv.FormatBool(k), true
	case int:
		return strconv.Itoa(k), true
	case float64:
		return pyFloat(k), true
	}
	return "", false
}

// number parses a Python int (decimal without leading zeros, 0x, 0o, 0b, with
// underscores) or float, returned as int64 or float64.
func (p *pyParser) number() (any, bool) {
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if isIdentChar(c) || c == '.' {
			p.i++
			continue
		}
		if (c == '+' || c == '-') && p.i > start && (p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E') && !isPrefixedInt(p.s[start:p.i]) {
			p.i++
			continue
		}
		break
	}
	tok := p.s[start:p.i]
	if tok == "" || strings.HasPrefix(tok, "_") || strings.HasSuffix(tok, "_") || strings.Contains(tok, "__") {
		return nil, false
	}
	if isPrefixedInt(tok) {
		n, err := strconv.ParseInt(tok, 0, 64)
		return n, err == nil
	}
	clean := strings.ReplaceAll(tok, "_", "")
	if isDigits(clean) {
		// Python 3 forbids leading zeros in decimal ints other than 0 itself (00 is 0).
		if len(clean) > 1 && clean[0] == '0' && strings.Trim(clean, "0") != "" {
			return nil, false
		}
		n, err := strconv.ParseInt(clean, 10, 64)
		return n, err == nil
	}
	if strings.ContainsAny(clean, "xXoObBjJ") || strings.Contains(tok, "_.") || strings.Contains(tok, "._") {
		return nil, false // complex, or a malformed literal
	}
	f, err := strconv.ParseFloat(clean, 64)
	if err != nil || strings.ContainsAny(clean, "pPnNiI") {
		return nil, false
	}
	return f, true
}

func isPrefixedInt(tok string) bool {
	if len(tok) < 2 || tok[0] != '0' {
		return false
	}
	switch tok[1] {
	case 'x', 'X', 'o', 'O', 'b', 'B':
		return true
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isIdentStart(c byte) bool { return c == '_' || isLetter(c) || c >= 0x80 }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

// stringConcat parses one or more adjacent string literals ('a' "b" is "ab"). isStr
// is false when the input is not a string literal at all (a name such as True).
func (p *pyParser) stringConcat() (v any, ok, isStr bool) {
	var b strings.Builder
	n := 0
	for {
		save := p.i
		if n > 0 {
			p.skipSpace(false)
		}
		s, ok, isStr := p.stringLit()
		if !isStr {
			p.i = save
			if n == 0 {
				return nil, false, false
			}
			return b.String(), true, true
		}
		if !ok {
			return nil, false, true
		}
		b.WriteString(s)
		n++
	}
}

func (p *pyParser) stringLit() (s string, ok, isStr bool) {
	start := p.i
	raw := false
	for p.i < len(p.s) && p.i-start < 2 {
		switch p.s[p.i] {
		case 'r', 'R':
			raw = true
		case 'u', 'U', 'b', 'B':
		default:
			goto quote
		}
		p.i++
	}
quote:
	q := p.peek()
	if q != '\'' && q != '"' {
		p.i = start
		return "", false, false
	}
	prefix := strings.ToLower(p.s[start:p.i])
	switch prefix {
	case "", "r", "u", "b", "br", "rb":
	default:
		p.i = start
		return "", false, false
	}
	triple := strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))
	if triple {
		p.i += 3
	} else {
		p.i++
	}
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", false, true
		}
		c := p.s[p.i]
		if c == q && (!triple || strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))) {
			if triple {
				p.i += 3
			} else {
				p.i++
			}
			return b.String(), true, true
		}
		if !triple && (c == '\n' || c == '\r') {
			return "", false, true
		}
		if c != '\\' {
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			b.WriteRune(r)
			p.i += size
			continue
		}
		if p.i+1 >= len(p.s) {
			return "", false, true
		}
		e := p.s[p.i+1]
		if raw {
			// A raw string keeps the backslash, even before the quote it protects.
			b.WriteByte('\\')
			b.WriteByte(e)
			p.i += 2
			continue
		}
		p.i += 2
		switch e {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if p.i+width > len(p.s) {
				return "", false, true
			}
			n, err := strconv.ParseUint(p.s[p.i:p.i+width], 16, 32)
			if err != nil || n > utf8.MaxRune {
				return "", false, true
			}
			b.WriteRune(rune(n))
			p.i += width
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := p.i - 1
			for j < len(p.s) && j < p.i+2 && p.s[j] >= '0' && p.s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(p.s[p.i-1:j], 8, 32)
			b.WriteRune(rune(n))
			p.i = j
		case 'N':
			return "", false, true // named escapes: rare enough to keep the text as it is
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
}
