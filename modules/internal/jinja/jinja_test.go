package jinja

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestAnsibleTemplate renders a template shaped as an Ansible role's: the
// want file is what Python's Jinja2 renders with the settings of Ansible's
// template module (trim_blocks, the final newline kept).
func TestAnsibleTemplate(t *testing.T) {
	src, err := os.ReadFile("testdata/nginx.conf.j2")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/nginx.conf.want")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/nginx.json")
	if err != nil {
		t.Fatal(err)
	}
	var vars map[string]any
	if err := json.Unmarshal(b, &vars); err != nil {
		t.Fatal(err)
	}
	tm, err := Compile("nginx.conf.j2", string(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.Render(vars)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("rendered:\n%s\nwant (Python Jinja2 as Ansible sets it):\n%s", got, want)
	}
}

func TestRender(t *testing.T) {
	vars := map[string]any{
		"port": 8080, "n": "42", "flag": true, "names": []string{"a", "b"},
		"u64": uint64(7), "path": "/etc/nginx/nginx.conf", "s": "yes",
		"m": map[string]any{"k": []any{1, 2}},
	}
	for _, tt := range []struct {
		name, src, want, err string
	}{
		{name: "variables of every Go type", src: "{{ port }} {{ u64 }} {{ n | int + 1 }}", want: "8080 7 43"},
		{name: "default", src: "{{ missing | default('x') }} {{ port | default(1) }}", want: "x 8080"},
		{name: "join and upper", src: "{{ names | join(', ') | upper }}", want: "A, B"},
		{name: "for with loop", src: "{% for x in names %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", want: "1a,2b"},
		{name: "if elif else", src: "{% if not flag %}no{% elif port > 80 %}high{% else %}low{% endif %}", want: "high"},
		{name: "ternary", src: "{{ flag | ternary('on', 'off') }}", want: "on"},
		{name: "bool", src: "{{ s | bool }}", want: "True"},
		{name: "to_json", src: "{{ m | to_json }}", want: `{"k":[1,2]}`},
		{name: "regex_replace with a group", src: "{{ 'web-01' | regex_replace('web-(\\\\d+)', 'app-\\\\1') }}", want: "app-01"},
		{name: "basename and dirname", src: "{{ path | basename }} {{ path | dirname }}", want: "nginx.conf /etc/nginx"},
		{name: "b64", src: "{{ 'hi' | b64encode }} {{ 'aGk=' | b64decode }}", want: "aGk= hi"},
		{name: "mandatory", src: "{{ missing | mandatory }}", err: "mandatory value is undefined"},
		{name: "mandatory with a message", src: "{{ missing | mandatory('set missing') }}", err: "set missing"},
		{name: "the final newline is kept", src: "a\n", want: "a\n"},
		{name: "a block tag's newline is trimmed", src: "{% if flag %}\nyes\n{% endif %}\n", want: "yes\n"},
		{name: "an unknown filter", src: "{{ port | nope }}", err: `unknown filter "nope"`},
		{name: "an unclosed block", src: "{% for x in names %}", err: "unclosed for"},
		{name: "a var shadows a filter of ours", src: "{{ basename }}", want: "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := vars
			if tt.name == "a var shadows a filter of ours" {
				v = map[string]any{"basename": 1}
			}
			tm, err := Compile("t.j2", tt.src)
			var got string
			if err == nil {
				got, err = tm.Render(v)
			}
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "t.j2: ") {
					t.Errorf("error = %v, want one starting with t.j2: containing %q", err, tt.err)
				}
			case err != nil:
				t.Errorf("error = %v", err)
			case got != tt.want:
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
