package eval

import (
	"reflect"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
)

func TestParams(t *testing.T) {
	pos := diag.Pos{File: "lib.yml", Line: 3, Col: 10}
	outerEnv := &Env{Vars: map[string]any{"version": "3.6.0", "port": 0}, Strict: true}
	mustTemplate := func(src string, env *Env) *Template {
		t.Helper()
		tp, ds := ParseTemplate(src, pos, env)
		if ds.HasErrors() {
			t.Fatalf("%s: %v", src, ds)
		}
		return tp
	}
	// An import inside an import: the inner param uses the outer one.
	outerParams := map[string]Param{"svc": {Value: "etcd"}}
	nested := &Env{Vars: outerEnv.Vars, Strict: true, Params: outerParams}
	params := map[string]Param{
		"service": {Value: "nginx"},
		"count":   {Value: 3},
		"names":   {Value: []any{"a", "b"}},
		"bin":     {Template: mustTemplate("/opt/{{ version }}/bin", outerEnv)},
		"p":       {Template: mustTemplate("{{ port + 1 }}", outerEnv)},
		"unit":    {Template: mustTemplate("{{ svc }}.service", nested)},
	}
	env := &Env{Vars: outerEnv.Vars, Strict: true, Params: params}
	scope := &Scope{Vars: map[string]any{"version": "3.7.3", "port": 2379}}
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`service + "-x"`, "nginx-x"},
		{`count * 2`, 6},
		{`len(names)`, 2},
		{`bin`, "/opt/3.7.3/bin"},
		{`p`, 2380},
		{`unit`, "etcd.service"},
		{`{"service": service}.service`, "nginx"},
	} {
		p, ds := Compile(tc.src, pos, env, Any)
		if ds.HasErrors() {
			t.Errorf("%s: %v", tc.src, ds)
			continue
		}
		got, err := p.Eval(scope)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.src, got, tc.want)
		}
		if names := p.Names(); strings.Contains(strings.Join(names, " "), "service") {
			t.Errorf("%s: the param is still a name the program reads: %v", tc.src, names)
		}
	}
	// A type error in a use is reported, at the use.
	if _, ds := Compile(`count + "x" == 1`, pos, env, Bool); !ds.HasErrors() {
		t.Error("int + string compiled")
	}
	// Still strict about names that are neither vars nor params.
	if _, ds := Compile(`servce == "x"`, pos, env, Bool); !ds.HasErrors() {
		t.Error("unknown name compiled")
	}
	tp := mustTemplate("unit {{ unit }} on {{ service }}", env)
	if got, err := tp.Render(scope); err != nil || got != "unit etcd.service on nginx" {
		t.Errorf("template = %v, %v", got, err)
	}
}
