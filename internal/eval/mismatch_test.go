package eval

import (
	"slices"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
)

// TestMismatch: a number given as text, compared with a number, is reported
// at the var with where it was set and the fix; other type errors keep
// expr's message.
func TestMismatch(t *testing.T) {
	origin := func(name string) string {
		switch name {
		case "max_p99":
			return "-e"
		case "quoted":
			return "inv.yml:4:12"
		}
		return ""
	}
	vars := map[string]any{"max_p99": "0", "quoted": "0.5", "word": "fast", "n": 3, "f": 0.5}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"from -e", "f < max_p99", []string{
			`rb.yml:12:13: max_p99 is the string "0" (set by -e), but < needs a number here; -e k=v always gives a string; give a number as JSON: -e '{"max_p99": 0}'`}},
		{"on the left, with arithmetic", "max_p99 * 2 > 1", []string{
			`rb.yml:12:9: max_p99 is the string "0" (set by -e), but * needs a number here; -e k=v always gives a string; give a number as JSON: -e '{"max_p99": 0}'`}},
		{"quoted in a file", "n > quoted", []string{
			`rb.yml:12:13: quoted is the string "0.5" (set at inv.yml:4:12), but > needs a number here; it is quoted, so it is a string; write 0.5 without quotes`}},
		{"not a number: expr's message", "n > word", []string{
			`rb.yml:12:11: invalid operation: > (mismatched types int and string)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &Env{Vars: vars, Strict: true, VarOrigin: origin}
			_, ds := Compile(tt.src, at, env, Bool)
			if got := lines(ds); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCompileMapped: positions in a text laid out otherwise in the file (a
// folded scalar) come from the table, in expressions and in templates.
func TestCompileMapped(t *testing.T) {
	// when: >-
	//   n > 1 &&
	//   host.nmae == "x"
	src := `n > 1 && host.nmae == "x"`
	var pos []diag.Pos
	for i := range []rune(src) {
		if i < 9 {
			pos = append(pos, diag.Pos{File: "rb.yml", Line: 5, Col: 5 + i})
		} else {
			pos = append(pos, diag.Pos{File: "rb.yml", Line: 6, Col: 5 + i - 9})
		}
	}
	_, ds := CompileMapped(src, pos, &Env{Vars: map[string]any{"n": 1}}, Bool)
	want := []string{`rb.yml:6:10: host has no field "nmae"; it has name, addr, groups, vars`}
	if got := lines(ds); !slices.Equal(got, want) {
		t.Errorf("expression:\n got %q\nwant %q", got, want)
	}
	tsrc := `x {{ host.nmae }}`
	var tpos []diag.Pos
	for i := range []rune(tsrc) {
		tpos = append(tpos, diag.Pos{File: "rb.yml", Line: 9 + i/5, Col: 3 + i%5})
	}
	_, ds = ParseTemplateMapped(tsrc, tpos, &Env{})
	// "host.nmae" starts at rune 5, the field at rune 10: line 11, column 3.
	want = []string{`rb.yml:11:3: host has no field "nmae"; it has name, addr, groups, vars`}
	if got := lines(ds); !slices.Equal(got, want) {
		t.Errorf("template:\n got %q\nwant %q", got, want)
	}
}

// TestCheckVars: a program compiled against one host's types is compiled
// again for a host whose values have other types.
func TestCheckVars(t *testing.T) {
	env := &Env{Vars: map[string]any{"limit": 0.5, "any": nil}, Strict: true, Result: true}
	p, ds := Compile("result.ok == true && 1.5 > limit && any != 1", at, env, Bool)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	origin := func(string) string { return "inv.yml:8:20" }
	tests := []struct {
		name string
		vars map[string]any
		want []string
	}{
		{"the same types", map[string]any{"limit": 0.9, "any": "x"}, nil},
		{"an int for a float: still a number", map[string]any{"limit": 1}, nil},
		{"a string", map[string]any{"limit": "0.5"}, []string{
			`rb.yml:12:36: limit is the string "0.5" (set at inv.yml:8:20), but > needs a number here; it is quoted, so it is a string; write 0.5 without quotes`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(p.CheckVars(tt.vars, origin)); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	if p.VarTypes(map[string]any{"limit": 0.9}) != p.VarTypes(map[string]any{"limit": 0.1}) ||
		p.VarTypes(map[string]any{"limit": 0.9}) == p.VarTypes(map[string]any{"limit": "0.9"}) {
		t.Error("VarTypes does not key by type")
	}
}
