package plan

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/internal/spec"
)

// add records err, found for t on step s. names are what the failing
// expression reads, when the caller knows; otherwise the names of the
// template at the error's position.
func (c *checker) add(s *spec.Step, eff inherited, err error, t *target, names []string) {
	var ee *eval.Error
	inside := errors.As(err, &ee) // an error inside a template, not about its value
	c.addDiags(s, eff, errDiags(s, err), t, names, inside)
}

// addDiags records diagnostics found for t on step s; see add.
func (c *checker) addDiags(s *spec.Step, eff inherited, ds diag.Diags, t *target, names []string, inside bool) {
	for _, d := range ds {
		if eff.noLog {
			// Its values may be secrets: say where, never what, as the run does.
			d.Summary = fmt.Sprintf("%s: a value here is not valid (%s)", s.Module, redact.CensoredError)
			d.Detail = ""
		}
		read := names
		if read == nil {
			read = templateNames(s, d.Pos, inside)
		}
		f := c.found[d]
		if f == nil {
			f = &finding{}
			c.found[d] = f
			c.order = append(c.order, d)
		}
		f.ctrl = t.ctrl
		if !slices.Contains(f.hosts, t.label) {
			f.hosts = append(f.hosts, t.label)
		}
		for _, o := range t.origins(read) {
			if !slices.Contains(f.origins, o) {
				f.origins = append(f.origins, o)
			}
		}
	}
}

// origins says where each var among names was set, and through a var
// written as a template, where the vars it reads were set:
// "state_dir is set at rb.yml:15:3 from demo_root, set by -e".
func (t *target) origins(names []string) []string {
	var out []string
	seen := map[string]bool{}
	var from func(name string, depth int) string
	from = func(name string, depth int) string {
		seen[name] = true
		text := name
		if w := where(t.origin(name)); w == "" && depth == 0 {
			text = name + " is a var"
		} else if depth == 0 {
			text = name + " is set " + w
		} else if w != "" {
			text = name + ", set " + w
		}
		if depth > 4 {
			return text
		}
		var parts []string
		for _, dep := range templateVars(t.raw[name]) {
			if _, isVar := t.vars[dep]; isVar && !seen[dep] {
				parts = append(parts, from(dep, depth+1))
			}
		}
		if len(parts) > 0 {
			text += " from " + strings.Join(parts, " and ")
		}
		return text
	}
	for _, n := range names {
		if _, isVar := t.vars[n]; isVar && !seen[n] {
			out = append(out, from(n, 0))
		}
	}
	return out
}

// templateVars returns the names the templates inside a var's value read.
func templateVars(v any) []string {
	set := map[string]bool{}
	walkStrings(v, func(s string) {
		if !eval.IsTemplate(s) {
			return
		}
		if t, _ := eval.ParseTemplate(s, diag.Pos{}, nil); t != nil {
			for _, n := range t.Names() {
				set[n] = true
			}
		}
	})
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func where(p diag.Pos) string {
	switch {
	case strings.HasPrefix(p.File, "-e "):
		return "by -e"
	case p.Line == 0:
		return "" // not known to the line: say nothing rather than something vague
	}
	return "at " + p.String()
}

// templateNames returns what the argument template at pos reads: an error
// in a rendered value points at the template it came from, an error of
// rendering (inside) at a place in it.
func templateNames(s *spec.Step, pos diag.Pos, inside bool) []string {
	if t := s.Templates[pos]; t != nil {
		return t.Names()
	}
	if inside {
		// The template that starts last at or before pos, and spans it.
		var in *eval.Template
		for _, t := range s.Templates {
			last := t.Pos.Line + strings.Count(t.Src, "\n")
			if t.Pos.File == pos.File && !pos.Before(t.Pos) && pos.Line <= last && (in == nil || in.Pos.Before(t.Pos)) {
				in = t
			}
		}
		if in == nil {
			return nil
		}
		return in.Names()
	}
	// An error about a key (Validate names the argument) is at the key: the
	// template is its value, the first one after it on the line, or the
	// first one below it.
	var best *eval.Template
	var bestPos diag.Pos
	for p, t := range s.Templates {
		if p.File != pos.File || p.Before(pos) {
			continue
		}
		if best == nil || p.Before(bestPos) {
			best, bestPos = t, p
		}
	}
	if best == nil || bestPos.Line > pos.Line+1 {
		return nil
	}
	return best.Names()
}

// errDiags turns an error of rendering or decoding into diagnostics at their
// place in the runbook.
func errDiags(s *spec.Step, err error) diag.Diags {
	if ds, ok := diag.As(err); ok {
		return ds.Errors()
	}
	var ee *eval.Error
	if errors.As(err, &ee) {
		msg := ee.Err.Error()
		if ee.Name != "" {
			msg = fmt.Sprintf("%q: %s", ee.Name, msg)
		}
		if src := strings.Join(strings.Fields(ee.Src), " "); src != "" {
			msg += fmt.Sprintf(" (in `%s`)", src)
		}
		pos := ee.Pos
		if !pos.IsValid() {
			pos = s.Pos
		}
		return diag.Diags{{Severity: diag.Error, Pos: pos, Summary: msg}}
	}
	return diag.Diags{{Severity: diag.Error, Pos: s.Pos, Summary: err.Error()}}
}

// diags are the findings, each naming the hosts it was found for and where
// the variables it read were set.
func (c *checker) diags() diag.Diags {
	var out diag.Diags
	for _, d := range c.order {
		f := c.found[d]
		var extra []string
		switch {
		case !f.ctrl:
			extra = append(extra, "for "+strings.Join(f.hosts, ", "))
		case len(f.hosts) == 1:
			extra = append(extra, fmt.Sprintf("for the %s, with the vars of %s", spec.Controller, f.hosts[0]))
		default:
			extra = append(extra, fmt.Sprintf("for the %s, with the vars of %s (the first host, decided when the run starts)",
				spec.Controller, strings.Join(f.hosts, " or ")))
		}
		extra = append(extra, f.origins...)
		if d.Detail != "" {
			d.Detail += "; "
		}
		d.Detail += strings.Join(extra, "; ")
		out = append(out, d)
	}
	out.Sort()
	return out
}
