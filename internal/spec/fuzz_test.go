package spec

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
)

// FuzzLoad checks properties of Load on any input: it does not panic, every
// diagnostic is in the file (line 0 for the whole file, else at most one past
// its last line), a runbook comes back exactly when there is no error, and
// loading is deterministic. Seeds are the runbooks under testdata.
func FuzzLoad(f *testing.F) {
	valid, _ := filepath.Glob("testdata/valid/*.yml")
	for _, file := range valid {
		rb, ds := Load(file, testRegistry(), LoadOptions{})
		if rb == nil {
			f.Fatalf("seed %s: %v", file, ds.Err())
		}
		f.Add(rb.Source)
	}
	cases, _ := filepath.Glob("testdata/errors/*.txtar")
	for _, file := range cases {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range ar.Files {
			if af.Name == "runbook.yml" {
				f.Add(af.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		lines := bytes.Count(src, []byte("\n")) + 1
		for _, opts := range []LoadOptions{{}, {Vars: map[string]any{"etcd_version": "3.7.3"}}} {
			rb, ds := LoadBytes("fuzz.yml", src, testRegistry(), opts)
			for _, d := range ds {
				if d.Pos.File != "fuzz.yml" || d.Pos.Line < 0 || d.Pos.Line > lines+1 || d.Pos.Col < 0 {
					t.Errorf("diagnostic outside the file (%d lines): %s", lines, d.Error())
				}
				if d.Summary == "" {
					t.Errorf("diagnostic without a message at %s", d.Pos)
				}
			}
			if (rb == nil) != ds.HasErrors() {
				t.Errorf("runbook %v with diagnostics %v", rb != nil, ds.Err())
			}
			_, again := LoadBytes("fuzz.yml", src, testRegistry(), opts)
			if !reflect.DeepEqual(ds, again) {
				t.Errorf("Load is not deterministic:\n%v\nthen\n%v", ds, again)
			}
			if rb != nil {
				exerciseSteps(t, rb)
			}
		}
	})
}

// exerciseSteps builds every step's arguments for a host, which must not
// panic whatever the templates render to.
func exerciseSteps(t *testing.T, rb *Runbook) {
	scope := &eval.Scope{Vars: rb.Vars, Host: eval.Host{Name: "h1", Addr: "127.0.0.1"}}
	for _, s := range rb.AllSteps() {
		if s.IsBlock() {
			continue
		}
		args, err := s.NewArgs(testRegistry(), scope)
		if err != nil {
			if ds, ok := diag.As(err); ok {
				for _, d := range ds {
					if d.Pos.File != rb.File {
						t.Errorf("NewArgs diagnostic outside the file: %s", d.Error())
					}
				}
			}
			continue
		}
		if args == nil {
			t.Errorf("%s: NewArgs returned no arguments and no error", s.ID)
		}
	}
}
