package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"gopkg.in/yaml.v3"
)

// TestImports loads runbook.yml of each testdata/imports/*.txtar with the
// archive's other files beside it: the want section holds the diagnostics
// with their import chains, or "ok" and the loaded steps (ID, name, file).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("testdata/imports/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var want string
			var opts LoadOptions
			for _, f := range ar.Files {
				switch f.Name {
				case "want":
					want = string(f.Data)
					continue
				case "vars.yml":
					if err := yaml.Unmarshal(f.Data, &opts.Vars); err != nil {
						t.Fatal(err)
					}
					continue
				}
				p := filepath.Join(dir, f.Name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			file, _ := filepath.Abs(file)
			t.Chdir(dir)
			opts.ImportPath = []string{"shared"}
			rb, ds := Load("runbook.yml", testRegistry(), opts)
			var got bytes.Buffer
			for _, d := range ds {
				got.WriteString(d.Error() + "\n")
				for _, c := range d.Chain() {
					got.WriteString("  imported at " + c + "\n")
				}
			}
			if rb != nil {
				got.WriteString("ok\n")
				var walk func(ss []*Step, indent string)
				walk = func(ss []*Step, indent string) {
					for _, s := range ss {
						got.WriteString(indent + s.ID + " " + s.Name + " @" + s.Pos.String() + "\n")
						walk(s.Block, indent+"  ")
						if s.Rollback != nil {
							walk(s.Rollback.Steps, indent+"  rollback ")
						}
					}
				}
				walk(rb.Steps, "")
			}
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "want" {
						ar.Files[i].Data = got.Bytes()
					}
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got.String() != want {
				t.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
			}
		})
	}
}
