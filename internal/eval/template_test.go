package eval

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/diag"
)

func TestIsTemplate(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"plain", false},
		{"a } b }}", false},
		{"{ a }", false},
		{"{{ x }}", true},
		{"a {{ unclosed", true},
	}
	for _, tt := range tests {
		if got := IsTemplate(tt.s); got != tt.want {
			t.Errorf("IsTemplate(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name, src string
		want      any
	}{
		{"no parts", "plain text }} here", "plain text }} here"},
		{"joined", "backups/{{ host.name }}-{{ run.id }}.db", "backups/etcd-1-r-20250106.db"},
		{"lone part keeps a list", `{{ group("etcd") | map(#.vars.etcd_url) }}`, []any{"https://10.0.0.3:2379", "https://10.0.0.1:2379", "https://10.0.0.2:2379"}},
		{"blanks around a lone part", "  {{ count }}\n", 3},
		{"lone part keeps nil", "{{ etcd_data_dir }}", nil},
		{"lone part keeps a bool", "{{ count > 1 }}", true},
		{"int joined", "n={{ count }}", "n=3"},
		{"float without trailing zeros", "{{ ratio * 2 }}x {{ ratio }} {{ 1.0 * 3 }}", "1x 0.5 3"},
		{"nil joined", "[{{ etcd_data_dir }}]", "[]"},
		{"list joined as JSON", "tags: {{ tags }}", `tags: ["a","b"]`},
		{"map joined as JSON", "limits: {{ limits }}", `limits: {"cpu":2}`},
		{"hosts joined as JSON", "{{ group('web') }}.", `[{"name":"web-1","addr":"10.0.1.1","groups":["web"],"vars":null}].`},
		{"JSON keeps & and <", "{{ ['a&b<c'] }}!", `["a&b<c"]!`},
		{"duration joined", "wait {{ duration('90s') }}", "wait 1m30s"},
		{"time joined", "at {{ run.started }}", "at 2025-01-06T03:00:00Z"},
		{"nested braces", `{{ {"a": {"b": 1}}.a.b }}`, 1},
		{"nested braces joined", `x{{ {"a": {"b": 1}}.a.b }}y`, "x1y"},
		{"closing braces in a string", `{{ "}}" }}`, "}}"},
		{"escape for a literal {{", `{{ "{{" }} host.name }}`, "{{ host.name }}"},
		{"quotes of each kind", "{{ '}}' + \"'\" + `\"}}` }}", "}}'\"}}"},
		{"escaped quote", `{{ "a\"}}" }}`, `a"}}`},
		{"block comment", "{{ count /* }} */ }}", 3},
		{"line comment ends at }}", "{{ count // the count }}!", "3!"},
		{"pipe", "{{ etcd_version | semver_minor_of() }}", "3.6"},
		{"multi-line part", "a {{\n  host.name\n}} b", "a etcd-1 b"},
		{"adjacent parts", "{{ count }}{{ count }}", "33"},
		{"unicode around", "é{{ host.name }}ü", "éetcd-1ü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, ds := ParseTemplate(tt.src, at, testEnv(true))
			if ds.HasErrors() {
				t.Fatalf("ParseTemplate: %v", lines(ds))
			}
			got, err := tpl.Render(testScope())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Render = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		name, src string
		pos       diag.Pos
		want      []string
	}{
		{
			name: "unclosed", src: "dist/etcd-{{ etcd_version", pos: at,
			want: []string{`rb.yml:12:19: "{{" has no closing "}}"; end the expression with "}}", or write {{ "{{" }} for a literal {{`},
		},
		{
			name: "unclosed after a good part", src: "{{ count }} and {{ count }", pos: at,
			want: []string{`rb.yml:12:25: "{{" has no closing "}}"; end the expression with "}}", or write {{ "{{" }} for a literal {{`},
		},
		{
			name: "unclosed string", src: `a {{ "}} }}`, pos: at,
			want: []string{`rb.yml:12:11: "{{" has no closing "}}"; a string in it, opened with ", is not closed`},
		},
		{
			name: "unclosed brace", src: `{{ {"a": 1 }}`, pos: at,
			want: []string{`rb.yml:12:9: "{{" has no closing "}}"; check the { } in it: only a "}}" outside them ends the part`},
		},
		{
			name: "unclosed brace at the end", src: `{{ {"a": {"b": 1}`, pos: at,
			want: []string{`rb.yml:12:9: "{{" has no closing "}}"; a "{" in it is not closed`},
		},
		{
			name: "unclosed comment", src: `{{ 1 /* }}`, pos: at,
			want: []string{`rb.yml:12:9: "{{" has no closing "}}"; a /* comment in it is not closed`},
		},
		{
			name: "unclosed on a later line", src: "line one\n  {{ x", pos: diag.Pos{File: "rb.yml", Line: 5, Col: 7},
			want: []string{`rb.yml:6:9: "{{" has no closing "}}"; end the expression with "}}", or write {{ "{{" }} for a literal {{`},
		},
		{
			name: "empty part", src: "a {{  }} b", pos: at,
			want: []string{`rb.yml:12:11: empty {{ }}; write an expression inside, or {{ "{{" }} for a literal {{`},
		},
		{
			name: "field typo in the second part", src: "{{ host.name }}:{{ host.adr }}", pos: at,
			want: []string{`rb.yml:12:33: host has no field "adr"; it has name, addr, groups, vars`},
		},
		{
			name: "every part is checked", src: "{{ host.nmae }}/{{ grup('x') }}", pos: at,
			want: []string{
				`rb.yml:12:17: host has no field "nmae"; it has name, addr, groups, vars`,
				`rb.yml:12:28: unknown function "grup"; did you mean "group"?`,
			},
		},
		{
			// dest: |
			//   backups/
			//   {{ host.nmae }}
			name: "part on a later line", src: "backups/\n{{ host.nmae }}", pos: diag.Pos{File: "rb.yml", Line: 3, Col: 3},
			want: []string{`rb.yml:4:11: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			name: "later line of a part", src: "x {{ count +\n  host.nmae }}", pos: diag.Pos{File: "rb.yml", Line: 3, Col: 3},
			want: []string{`rb.yml:4:10: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			name: "part after a blank line inside it", src: "{{\n\n  host.nmae }}", pos: diag.Pos{File: "rb.yml", Line: 3, Col: 3},
			want: []string{`rb.yml:5:10: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			name: "unknown name, strict", src: "v{{ etcd_versoin }}", pos: at,
			want: []string{`rb.yml:12:13: unknown name "etcd_versoin" in expression; did you mean "etcd_version"?`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, ds := ParseTemplate(tt.src, tt.pos, testEnv(true))
			if tpl != nil {
				t.Errorf("got a template, want errors")
			}
			if got := lines(ds); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tpl, ds := ParseTemplate("url: {{ host.name }}:{{ semver_major(v) }}", at, &Env{Extra: map[string]any{"v": nil}, Strict: true})
	if ds.HasErrors() {
		t.Fatal(lines(ds))
	}
	tpl.Name = "url"
	_, err := tpl.Render(&Scope{Extra: map[string]any{"v": "x"}})
	want := "rb.yml:12:33: url: semver_major: \"x\" is not a version; write one such as 3.6.16 or v3.6.16 (in `semver_major(v)`)"
	if err == nil || err.Error() != want {
		t.Errorf("Render error:\n got %v\nwant %s", err, want)
	}
	tpl, _ = ParseTemplate("x {{ v }}", at, &Env{Extra: map[string]any{"v": nil}, Strict: true})
	_, err = tpl.Render(&Scope{Extra: map[string]any{"v": []any{math.NaN()}}})
	want = "rb.yml:12:14: cannot write []interface {} as text: json: unsupported value: NaN (in `v`)"
	if err == nil || err.Error() != want {
		t.Errorf("Render error:\n got %v\nwant %s", err, want)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, ""},
		{"s", "s"},
		{[]byte("b"), "b"},
		{true, "true"},
		{42, "42"},
		{int64(-7), "-7"},
		{uint8(7), "7"},
		{3.0, "3"},
		{2.50, "2.5"},
		{float32(0.1), "0.1"},
		{1e21, "1e+21"},
		{1e-7, "1e-07"},
		{0.0, "0"},
		{90 * time.Second, "1m30s"},
		{time.Date(2025, 1, 6, 3, 0, 0, 5, time.UTC), "2025-01-06T03:00:00.000000005Z"},
		{[]any{1, "a", nil}, `[1,"a",null]`},
		{map[string]any{"b": 1, "a": []string{"x"}}, `{"a":["x"],"b":1}`},
		{map[any]any{"k": map[any]any{1: "v"}}, `{"k":{"1":"v"}}`},
		{Run{ID: "r", Batch: 1, Started: started}, `{"id":"r","batch":1,"started":"2025-01-06T03:00:00Z"}`},
	}
	for _, tt := range tests {
		got, err := Format(tt.v)
		if err != nil || got != tt.want {
			t.Errorf("Format(%#v) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
}

// TestRenderReportsParts: Rendered sees the value of each {{ }} part, with its
// type, and never the template's literal text.
func TestRenderReportsParts(t *testing.T) {
	tests := []struct {
		src  string
		want []any
	}{
		{"plain text", nil},
		{"restart {{ host.name }} member", []any{"etcd-1"}},
		{"{{ count }}", []any{3}},
		{"{{ count }}-{{ tags }}", []any{3, []any{"a", "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tpl, ds := ParseTemplate(tt.src, at, testEnv(true))
			if ds.HasErrors() {
				t.Fatalf("ParseTemplate: %v", lines(ds))
			}
			var got []any
			s := testScope()
			s.Rendered = func(v any) { got = append(got, v) }
			if _, err := tpl.Render(s); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Rendered saw %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRenderBudget(t *testing.T) {
	big := strings.Repeat("a", MaxRendered/2+1)
	tests := []struct {
		name, src string
		vars      map[string]any
		err       bool
	}{
		{"half fits", "x {{ v }}", map[string]any{"v": big}, false},
		{"lone part at the limit", "{{ v }}", map[string]any{"v": strings.Repeat("a", MaxRendered)}, false},
		{"lone part over", "{{ v }}", map[string]any{"v": strings.Repeat("a", MaxRendered+1)}, true},
		{"two halves over", "{{ v }}{{ v }}", map[string]any{"v": big}, true},
		{"built by the expression", "{{ v + v }}", map[string]any{"v": big}, true},
		{"a list written as JSON", "x {{ v }}", map[string]any{"v": []any{big, big}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, ds := ParseTemplate(tt.src, at, &Env{Extra: map[string]any{"v": nil}, Strict: true})
			if ds.HasErrors() {
				t.Fatal(lines(ds))
			}
			tpl.Name = "content"
			_, err := tpl.Render(&Scope{Extra: tt.vars})
			if !tt.err {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			// The template's own position, and what the limit is.
			if want := at.String() + ": content: the template renders to more than 1048576 bytes"; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %.200s\nwant prefix %s", err, want)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("the error holds the text: %d bytes", len(err.Error()))
			}
		})
	}
}
