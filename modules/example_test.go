package modules_test

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// stepFields are the common fields of a step (runbook-format.md), which an
// example may use beside its module key.
var stepFields = []string{"name", "when", "retries", "delay", "until", "timeout", "register",
	"failed_when", "changed_when", "ignore_errors", "run_once", "delegate_to", "become", "no_log", "tags", "ahead"}

// TestExamplesDecode loads every module's Doc.Example as the loader would: each
// step's arguments decode strictly into a fresh value of its module, and those
// without templates pass Validate. Documentation that drifts from the schema
// fails here.
func TestExamplesDecode(t *testing.T) {
	for _, info := range modules.Default.All() {
		t.Run(info.Name, func(t *testing.T) {
			file := info.Name + "-example.yml"
			src := []byte(info.Doc.Example)
			root, ds := spec.Parse(file, src)
			if ds.HasErrors() {
				t.Fatalf("example does not parse:\n%v", ds.Err())
			}
			if root.Kind != yaml.SequenceNode || len(root.Content) == 0 {
				t.Fatalf("example is not a list of steps")
			}
			uses := false
			for _, step := range root.Content {
				name, args := moduleOf(t, step)
				uses = uses || name == info.Name
				stepInfo, _ := modules.Default.Lookup(name)
				m := stepInfo.New()
				templated := false
				d := &arg.Decoder{File: file, Source: src, Context: name,
					OnTemplate: func(*yaml.Node) { templated = true }}
				var ds diag.Diags
				d.Decode(args, m, &ds)
				if len(ds) > 0 {
					t.Errorf("step at line %d does not decode:\n%v", step.Line, ds.Err())
					continue
				}
				if v, ok := m.(modules.Validator); ok && !templated {
					if err := v.Validate(); err != nil {
						t.Errorf("step at line %d: Validate: %v", step.Line, err)
					}
				}
			}
			if !uses {
				t.Errorf("no step of the example uses %s", info.Name)
			}
		})
	}
}

// moduleOf returns the one module key of a step and its arguments, failing t on
// any key that is neither a module nor a common step field.
func moduleOf(t *testing.T, step *yaml.Node) (string, *yaml.Node) {
	t.Helper()
	if step.Kind != yaml.MappingNode {
		t.Fatalf("line %d: a step is a mapping", step.Line)
	}
	var name string
	var args *yaml.Node
	for i := 0; i < len(step.Content); i += 2 {
		key := step.Content[i].Value
		switch _, isModule := modules.Default.Lookup(key); {
		case isModule && name != "":
			t.Fatalf("line %d: two modules, %s and %s", step.Line, name, key)
		case isModule:
			name, args = key, step.Content[i+1]
		case !slices.Contains(stepFields, key):
			t.Fatalf("line %d: %q is neither a module nor a step field", step.Content[i].Line, key)
		}
	}
	if name == "" {
		t.Fatalf("line %d: no module in the step", step.Line)
	}
	return name, args
}

// TestDecodeArgs decodes step arguments written as YAML, as the loader does, to
// show that the schemas and their own decoders (check's http.status) catch what
// an example or a runbook can get wrong.
func TestDecodeArgs(t *testing.T) {
	tests := []struct {
		module string
		yaml   string
		want   string // the first diagnostic, or "" for none
	}{
		{"stop", "{ service: etcd, wait: 30s }", ""},
		{"stop", "{ servce: etcd }", `args.yml:1:3: unknown key "servce" in stop; did you mean "service"?`},
		{"start", "{ service: etcd, ready: { tcp: '127.0.0.1:2379' } }", ""},
		{"start", "{ service: etcd, ready: { grpc: x } }", `args.yml:1:27: unknown key "grpc" in start.ready`},
		{"check", "{ http: { url: 'http://a', status: 204 } }", ""},
		{"check", "{ http: { url: 'http://a', status: [200, 204] } }", ""},
		{"check", "{ http: { url: 'http://a', status: '{{ code }}' } }", ""},
		{"check", "{ http: { url: 'http://a', status: [200, '{{ code }}'] } }", ""},
		{"check", "{ http: { url: 'http://a', status: [200, 2040] } }", `args.yml:1:42: "http.status[1]" must be an HTTP status code from 100 to 599, got "2040"`},
		{"check", "{ http: { url: 'http://a', status: '200' } }", `args.yml:1:36: "http.status" must be an HTTP status code from 100 to 599, got "200"`},
		{"check", "{ http: { url: 'http://a', status: [] } }", `args.yml:1:36: "http.status" is an empty list`},
		{"check", "{ http: { url: 'http://a', status: { ok: 200 } } }", `args.yml:1:36: "http.status" must be a status code or a list of them`},
		{"check", "{ tcp: { closed: true } }", `args.yml:1:8: missing required key "addr" in check.tcp`},
		{"swap", "{ src: a, dest: /b, mode: '0755' }", ""},
		{"command", "{ cmd: 'a \"b' }", `args.yml:1:11: "cmd" has an unbalanced " quote`},
	}
	for _, tt := range tests {
		t.Run(tt.module+" "+tt.yaml, func(t *testing.T) {
			root, ds := spec.Parse("args.yml", []byte(tt.yaml))
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			info, _ := modules.Default.Lookup(tt.module)
			d := &arg.Decoder{File: "args.yml", Context: tt.module, OnTemplate: func(*yaml.Node) {}}
			d.Decode(root, info.New(), &ds)
			got := ""
			if len(ds) > 0 {
				got = ds[0].Error()
			}
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("diagnostics = %v, want %q", ds, tt.want)
			}
		})
	}
}
