package spec

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/errors/*.txtar")

// TestErrors loads each testdata/errors/*.txtar: its runbook.yml must give
// exactly the diagnostics in its want section. An optional vars.yml section
// is passed as LoadOptions.Vars (as an inventory would), which makes unknown
// names errors.
func TestErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.txtar")
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
			var src []byte
			var opts LoadOptions
			wantIdx := -1
			for i, f := range ar.Files {
				switch f.Name {
				case "runbook.yml":
					src = f.Data
				case "vars.yml":
					if err := yaml.Unmarshal(f.Data, &opts.Vars); err != nil {
						t.Fatalf("vars.yml: %v", err)
					}
					if opts.Vars == nil {
						opts.Vars = map[string]any{}
					}
				case "want":
					wantIdx = i
				default:
					t.Fatalf("unexpected section %q", f.Name)
				}
			}
			if src == nil || wantIdx < 0 {
				t.Fatal("need runbook.yml and want sections")
			}
			rb, ds := LoadBytes("runbook.yml", src, testRegistry(), opts)
			var got bytes.Buffer
			for _, d := range ds {
				got.WriteString(d.Error())
				got.WriteByte('\n')
			}
			if *update {
				ar.Files[wantIdx].Data = got.Bytes()
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(ar.Files[wantIdx].Data); got.String() != want {
				t.Errorf("diagnostics differ\ngot:\n%s\nwant:\n%s", got.String(), want)
			}
			if !ds.HasErrors() {
				t.Errorf("an error case loaded without errors")
			}
			if rb != nil {
				t.Errorf("LoadBytes returned a runbook along with errors")
			}
		})
	}
}

// TestValid loads each testdata/valid/*.yml, which must give no diagnostic at all.
func TestValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			rb, ds := Load(file, testRegistry(), LoadOptions{})
			for _, d := range ds {
				t.Error(d.Error())
			}
			if rb == nil {
				t.Fatal("no runbook")
			}
		})
	}
}
