package promql

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// SyntaxError is a query that does not parse. Offset is the byte offset of
// the error in the query, so that a caller can point at its place in a file.
type SyntaxError struct {
	Query  string
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("PromQL syntax error at %s: %s", e.where(), e.Msg)
}

// where is "line L, column C" inside the query, or "column C" on one line.
func (e *SyntaxError) where() string {
	line, col := LineCol(e.Query, e.Offset)
	if strings.Contains(e.Query, "\n") {
		return fmt.Sprintf("line %d, column %d of the query", line, col)
	}
	return fmt.Sprintf("column %d of the query", col)
}

// LineCol returns the 1-based line and column (in runes) of byte offset off in s.
func LineCol(s string, off int) (line, col int) {
	line, col = 1, 1
	for i, r := range s {
		if i >= off {
			break
		}
		if r == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return line, col
}

var parse = parser.NewParser(parser.Options{})

// Check parses query as PromQL; nil means it parses. It does not know which
// metrics exist: only the server does.
func Check(query string) error {
	if strings.TrimSpace(query) == "" {
		return &SyntaxError{Query: query, Msg: "the query is empty"}
	}
	_, err := parse.ParseExpr(query)
	if err == nil {
		return nil
	}
	var errs parser.ParseErrors
	if errors.As(err, &errs) && len(errs) > 0 {
		return syntaxError(query, int(errs[0].PositionRange.Start), errs[0].Err.Error())
	}
	var one *parser.ParseErr
	if errors.As(err, &one) {
		return syntaxError(query, int(one.PositionRange.Start), one.Err.Error())
	}
	return &SyntaxError{Query: query, Msg: err.Error()}
}

func syntaxError(query string, off int, msg string) *SyntaxError {
	// The lexer reports a ) too many after it, where every other error is
	// at its character: point at the parenthesis itself.
	if strings.HasPrefix(msg, "unexpected right parenthesis") && off > 0 && off <= len(query) && query[off-1] == ')' {
		off--
	}
	return &SyntaxError{Query: query, Offset: off, Msg: msg}
}

// CheckTemplated checks a query that may hold {{ }} templates, before they
// are rendered. A template inside a quoted string (a label value) is replaced
// by as many x's, so offsets stay those of the original text. A template
// elsewhere may stand for any part of the syntax: such a query is not
// checked (ok false) and must be checked once rendered.
func CheckTemplated(query string) (ok bool, err error) {
	if !strings.Contains(query, "{{") {
		return true, Check(query)
	}
	var b strings.Builder
	var quote byte
	for i := 0; i < len(query); {
		if strings.HasPrefix(query[i:], "{{") {
			end := strings.Index(query[i:], "}}")
			if end < 0 || quote == 0 {
				return false, nil
			}
			b.WriteString(strings.Repeat("x", end+2))
			i += end + 2
			continue
		}
		c := query[i]
		switch {
		case quote != 0 && c == '\\' && quote != '`' && i+1 < len(query):
			b.WriteByte(c)
			b.WriteByte(query[i+1])
			i += 2
			continue
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\'' || c == '`'):
			quote = c
		}
		b.WriteByte(c)
		i++
	}
	err = Check(b.String())
	var se *SyntaxError
	if errors.As(err, &se) {
		se.Query = query
	}
	return true, err
}

// MetricNames returns the metric names that query's selectors name, sorted
// and once each: foo in foo{a="b"}, or {__name__="foo"}.
func MetricNames(query string) ([]string, error) {
	e, err := parse.ParseExpr(query)
	if err != nil {
		return nil, Check(query)
	}
	seen := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			seen[vs.Name] = true
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" && m.Type == labels.MatchEqual {
				seen[m.Value] = true
			}
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
