package eval

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/runbookhq/runbook/internal/diag"
)

// FuzzTemplate checks that any string either fails to parse with every
// diagnostic inside the string, or renders (a run-time error is allowed, with
// its position inside the string too), and that nothing panics.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"plain", "{{ host.name }}", "a {{ count }} b {{ tags }}", `{{ "}}" }}`, `{{ "{{" }}`,
		`{{ {"a": {"b": 1}}.a.b }}`, "{{ x", "{{ }}", "{{ 'a\\'}}' }}", "{{ count /* }} */ }}",
		"{{ count // c }}", "{{\n  host.nmae\n}}", "é{{ grup(1) }}", "{{ group('etcd') | map(#.name) }}",
		"{{ 1..3 }}", "}} {{ {", "{{ `}}` }}", "{{ semver_lt('1', 'x') }}",
		"a\r\n{{ host.nmae }}", "\xff{{ \xfe }}", "{{ limits.cpu.x }}", "x\n\n  {{ count +\n }}",
	} {
		f.Add(s)
	}
	pos := diag.Pos{File: "rb.yml", Line: 3, Col: 5}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		inside := func(p diag.Pos) bool {
			n := p.Line - pos.Line
			if p.File != pos.File || n < 0 || n >= len(lines) {
				return false
			}
			return p.Col >= pos.Col && p.Col <= pos.Col+utf8.RuneCountInString(lines[n])
		}
		tpl, ds := ParseTemplate(s, pos, testEnv(false))
		for _, d := range ds {
			if !inside(d.Pos) {
				t.Fatalf("ParseTemplate(%q): diagnostic outside the string: %v", s, d)
			}
		}
		if ds.HasErrors() {
			if tpl != nil {
				t.Fatalf("ParseTemplate(%q): a template and errors", s)
			}
			return
		}
		if tpl == nil {
			t.Fatalf("ParseTemplate(%q): no template and no error", s)
		}
		v, err := tpl.Render(testScope())
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !inside(e.Pos) {
				t.Fatalf("Render(%q): error without a position inside the string: %v", s, err)
			}
			return
		}
		if !IsTemplate(s) && v != s {
			t.Fatalf("Render(%q) = %#v, want the string itself", s, v)
		}
	})
}
