// Package diag holds diagnostics: problems in user input as values with a source
// position, collected so that every error of a file is reported in one go.
package diag

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/exitcode"
)

// Severity says whether a diagnostic stops the run (Error) or only informs (Warning).
type Severity int

const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Pos is a position in a source file. Line and Col are 1-based, as yaml.Node
// reports them; a zero Line means "the file as a whole".
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"column"`
}

// String formats the position as FILE:LINE:COL, leaving out the parts that are unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// IsValid reports whether the position names a line.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Before reports whether p comes before q: by file, then line, then column.
func (p Pos) Before(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// Diag is one problem: where it is, what is wrong (Summary) and, when we know,
// what would be right (Detail).
type Diag struct {
	Severity Severity
	Pos      Pos
	Summary  string
	Detail   string
	// HideSource keeps the source line out of the printed diagnostic: the
	// line holds a secret (a password in an inventory, say).
	HideSource bool
	// ImportedFrom is the chain of imports that led to the file of Pos, the
	// nearest first: where each file was imported, as FILE:LINE:COL lines.
	// A string, so that a Diag stays comparable.
	ImportedFrom string
}

// Chain returns the positions of ImportedFrom.
func (d Diag) Chain() []string {
	if d.ImportedFrom == "" {
		return nil
	}
	return strings.Split(d.ImportedFrom, "\n")
}

// Message is the summary and the detail joined as they are printed after the position.
func (d Diag) Message() string {
	if d.Detail == "" {
		return d.Summary
	}
	return d.Summary + "; " + d.Detail
}

// Error formats the diagnostic as FILE:LINE:COL: message.
func (d Diag) Error() string {
	prefix := ""
	if d.Severity == Warning {
		prefix = "warning: "
	}
	if d.Pos.File == "" && d.Pos.Line == 0 {
		return prefix + d.Message()
	}
	return d.Pos.String() + ": " + prefix + d.Message()
}

// Diags is a list of diagnostics. The zero value is ready to use.
type Diags []Diag

// Add records an error at pos.
func (ds *Diags) Add(pos Pos, summary, detail string) {
	*ds = append(*ds, Diag{Severity: Error, Pos: pos, Summary: summary, Detail: detail})
}

// AddSecret records an error at pos whose source line is not shown: the
// value there is a secret.
func (ds *Diags) AddSecret(pos Pos, summary, detail string) {
	*ds = append(*ds, Diag{Severity: Error, Pos: pos, Summary: summary, Detail: detail, HideSource: true})
}

// Errorf records an error at pos with a formatted summary and no detail.
func (ds *Diags) Errorf(pos Pos, format string, args ...any) {
	ds.Add(pos, fmt.Sprintf(format, args...), "")
}

// Warnf records a warning at pos.
func (ds *Diags) Warnf(pos Pos, format string, args ...any) {
	*ds = append(*ds, Diag{Severity: Warning, Pos: pos, Summary: fmt.Sprintf(format, args...)})
}

// Append adds all of other.
func (ds *Diags) Append(other Diags) { *ds = append(*ds, other...) }

// HasErrors reports whether any diagnostic is an error.
func (ds Diags) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the errors.
func (ds Diags) Errors() Diags {
	var out Diags
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders diagnostics by file, line and column, keeping the order of equal ones,
// and drops exact duplicates (the same message at the same place).
func (ds *Diags) Sort() {
	sort.SliceStable(*ds, func(i, j int) bool { return (*ds)[i].Pos.Before((*ds)[j].Pos) })
	out := (*ds)[:0]
	for i, d := range *ds {
		if i > 0 && d == (*ds)[i-1] {
			continue
		}
		out = append(out, d)
	}
	*ds = out
}

// Err returns nil when there is no error, and otherwise an *Error holding all diagnostics.
func (ds Diags) Err() error {
	if !ds.HasErrors() {
		return nil
	}
	return &DiagsError{Diags: ds}
}

// DiagsError is the error form of Diags. Programs that end on it exit with
// code 2: the input was invalid and nothing was touched.
type DiagsError struct{ Diags Diags }

func (e *DiagsError) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// ExitCode is 2: invalid input.
func (e *DiagsError) ExitCode() int { return exitcode.Invalid }

// As returns the diagnostics held by err, if it is or wraps a *DiagsError.
func As(err error) (Diags, bool) {
	var de *DiagsError
	if errors.As(err, &de) {
		return de.Diags, true
	}
	return nil, false
}
