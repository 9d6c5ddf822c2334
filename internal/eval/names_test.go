package eval

import (
	"reflect"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
)

func TestTemplateNames(t *testing.T) {
	env := &Env{Vars: map[string]any{"a": "x", "b": 1, "c": []any{}, "root": "/"}, Strict: true}
	tests := []struct {
		src  string
		want []string
	}{
		{"plain text", []string{}},
		{"{{ a }}/{{ root }}", []string{"a", "root"}},
		{"{{ b + 1 }}-{{ host.name }}", []string{"b", "host"}},
		{`{{ c | map(# + a) | join(",") }}`, []string{"a", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tpl, ds := ParseTemplate(tt.src, diag.Pos{File: "f", Line: 1, Col: 1}, env)
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			if got := tpl.Names(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Names() = %v, want %v", got, tt.want)
			}
		})
	}
}
