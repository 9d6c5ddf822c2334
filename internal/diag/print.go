package diag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sources maps a file name, as it appears in Pos.File, to its content, so that
// printers can show the offending line.
type Sources map[string][]byte

// WriteText prints each diagnostic as FILE:LINE:COL: message, followed, when
// the source is known, by the line and a caret under the column:
//
//	upgrade.yml:14:7: unknown key "servce" in stop; did you mean "service"?
//	   14 |   - stop: { servce: etcd }
//	      |             ^
//
// Control characters in the message and the source line are shown escaped
// (Visible): a runbook holding terminal escape sequences must not drive the
// operator's terminal when its errors are printed.
func WriteText(w io.Writer, ds Diags, src Sources) error {
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, Visible(d.Error(), true)); err != nil {
			return err
		}
		line, ok := sourceLine(src, d)
		if !ok {
			if err := writeChain(w, d); err != nil {
				return err
			}
			continue
		}
		gutter := fmt.Sprintf("%5d | ", d.Pos.Line)
		fmt.Fprintf(w, "%s%s\n", gutter, Visible(line, false))
		if d.Pos.Col > 0 {
			// Keep tabs so the caret lines up under tab-indented text;
			// an escaped character is as wide as its escape.
			pad := []rune(Visible(runePrefix(line, d.Pos.Col-1), false))
			for i, r := range pad {
				if r != '\t' {
					pad[i] = ' '
				}
			}
			fmt.Fprintf(w, "%s%s^\n", strings.Repeat(" ", len(gutter)-2)+"| ", string(pad))
		}
		if err := writeChain(w, d); err != nil {
			return err
		}
	}
	return nil
}

func writeChain(w io.Writer, d Diag) error {
	for _, p := range d.Chain() {
		if _, err := fmt.Fprintf(w, "      imported at %s\n", Visible(p, false)); err != nil {
			return err
		}
	}
	return nil
}

// Visible returns s with its control characters escaped as Go does in a
// quoted string (\x1b, \u009b, \x7f), tabs kept, and newlines kept when
// keepNewlines (a message of several lines). Invalid UTF-8 is shown as \x..
// too, byte by byte.
func Visible(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if mustEscape(r, keepNewlines) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case mustEscape(r, keepNewlines):
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u009b'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// runePrefix is the first n characters of s, an invalid byte counting as one.
func runePrefix(s string, n int) string {
	i := 0
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

func mustEscape(r rune, keepNewlines bool) bool {
	switch {
	case r == '\t', r == '\n' && keepNewlines:
		return false
	case r == utf8.RuneError:
		return true
	}
	// C0, DEL, C1, and the bidirectional overrides that reorder what is shown.
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

func sourceLine(src Sources, d Diag) (string, bool) {
	p := d.Pos
	if p.Line <= 0 || src == nil || d.HideSource {
		return "", false
	}
	data, ok := src[p.File]
	if !ok {
		return "", false
	}
	lines := bytes.Split(data, []byte("\n"))
	if p.Line > len(lines) {
		return "", false
	}
	return strings.TrimRight(string(lines[p.Line-1]), "\r"), true
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
}

type jsonDiag struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	Snippet  *snippet   `json:"snippet,omitempty"`
	// ImportedFrom is Diag.ImportedFrom as FILE:LINE:COL.
	ImportedFrom []string `json:"imported_from,omitempty"`
}

type snippet struct {
	Code      string `json:"code"`
	StartLine int    `json:"start_line"`
}

// WriteJSON prints the diagnostics in the shape Terraform uses for its JSON output:
// {"valid": false, "error_count": N, "warning_count": M, "diagnostics": [...]}.
func WriteJSON(w io.Writer, ds Diags, src Sources) error {
	out := struct {
		Valid        bool       `json:"valid"`
		ErrorCount   int        `json:"error_count"`
		WarningCount int        `json:"warning_count"`
		Diagnostics  []jsonDiag `json:"diagnostics"`
	}{Valid: !ds.HasErrors(), Diagnostics: []jsonDiag{}}
	for _, d := range ds {
		if d.Severity == Error {
			out.ErrorCount++
		} else {
			out.WarningCount++
		}
		jd := jsonDiag{Severity: d.Severity.String(), Summary: d.Summary, Detail: d.Detail}
		if d.Pos.File != "" || d.Pos.Line > 0 {
			jd.Range = &jsonRange{Filename: d.Pos.File, Start: jsonPos{Line: d.Pos.Line, Column: d.Pos.Col}}
		}
		jd.ImportedFrom = d.Chain()
		if line, ok := sourceLine(src, d); ok {
			jd.Snippet = &snippet{Code: line, StartLine: d.Pos.Line}
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
