package analysis

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

var update = flag.Bool("update", false, "rewrite the want sections under testdata/")

// TestLoad loads each testdata/load/*.txtar as runbook validate would: its
// runbook.yml must give exactly the diagnostics in its want section.
func TestLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "load", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var rbSrc []byte
			want := -1
			for i, f := range ar.Files {
				switch f.Name {
				case "runbook.yml":
					rbSrc = f.Data
				case "want":
					want = i
				default:
					t.Fatalf("unexpected section %q", f.Name)
				}
			}
			if rbSrc == nil || want < 0 {
				t.Fatal("need runbook.yml and want sections")
			}
			rb, ds := spec.LoadBytes("runbook.yml", rbSrc, modules.Default, spec.LoadOptions{Vars: map[string]any{"prometheus_url": "http://127.0.0.1:9090", "window": "1m"}})
			var got bytes.Buffer
			for _, d := range ds {
				got.WriteString(d.Error())
				got.WriteByte('\n')
			}
			if *update {
				ar.Files[want].Data = got.Bytes()
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got.String() != string(ar.Files[want].Data) {
				t.Errorf("diagnostics differ\ngot:\n%s\nwant:\n%s", got.String(), ar.Files[want].Data)
			}
			if (rb == nil) != ds.HasErrors() {
				t.Errorf("LoadBytes returned runbook %v with errors %v", rb != nil, ds.HasErrors())
			}
		})
	}
}

// TestRenderedQueryChecked: a query whose template stands for part of the
// syntax is checked once rendered, and the error names its place.
func TestRenderedQueryChecked(t *testing.T) {
	const rbSrc = `runbook: canary
hosts: web
steps:
  - name: analysis
    analysis:
      prometheus: http://127.0.0.1:9090
      metrics:
        - name: rate
          query: 'rate(x[{{ window }}])'
          failure: 'result > 0'
`
	rb, ds := spec.LoadBytes("rb.yml", []byte(rbSrc), modules.Default, spec.LoadOptions{Vars: map[string]any{"window": "1m"}})
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ window, want string }{{"1m", ""}, {"1m)", `rb.yml:9:18: metrics[0].query: PromQL syntax error in the rendered query "rate(x[1m)])" at column 10: unexpected ")"`}} {
		scope := &eval.Scope{Vars: map[string]any{"window": tt.window}, Host: eval.Host{Name: "web-1"}}
		args, err := rb.Steps[0].NewArgs(modules.Default, scope)
		if tt.want == "" {
			if err != nil {
				t.Fatal(err)
			}
			if q := args.(*Module).Metrics[0].Query; q != "rate(x[1m])" {
				t.Errorf("rendered query %q", q)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("rendering with window %q: error %v, want %q", tt.window, err, tt.want)
		}
	}
}
