package diag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
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
func WriteText(w io.Writer, ds Diags, src Sources) error {
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, d.Error()); err != nil {
			return err
		}
		line, ok := sourceLine(src, d.Pos)
		if !ok {
			continue
		}
		gutter := fmt.Sprintf("%5d | ", d.Pos.Line)
		fmt.Fprintf(w, "%s%s\n", gutter, line)
		if d.Pos.Col > 0 {
			// Keep tabs so the caret lines up under tab-indented text.
			pad := []rune(line)
			if d.Pos.Col-1 < len(pad) {
				pad = pad[:d.Pos.Col-1]
			}
			for i, r := range pad {
				if r != '\t' {
					pad[i] = ' '
				}
			}
			fmt.Fprintf(w, "%s%s^\n", strings.Repeat(" ", len(gutter)-2)+"| ", string(pad))
		}
	}
	return nil
}

func sourceLine(src Sources, p Pos) (string, bool) {
	if p.Line <= 0 || src == nil {
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
		if line, ok := sourceLine(src, d.Pos); ok {
			jd.Snippet = &snippet{Code: line, StartLine: d.Pos.Line}
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
