package eval

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestFunctionsDocumented(t *testing.T) {
	docs := Functions()
	ours := 0
	for i, f := range docs {
		if i > 0 && docs[i-1].Name >= f.Name {
			t.Errorf("Functions not sorted or duplicated at %q", f.Name)
		}
		if !strings.HasPrefix(f.Signature, f.Name+"(") || f.Doc == "" || f.Example == "" {
			t.Errorf("%s: incomplete doc %+v", f.Name, f)
		}
		_, isBuiltin := builtinNames[f.Name]
		if f.Builtin != isBuiltin {
			t.Errorf("%s: Builtin = %v, but expr built-in = %v (ours must not duplicate one)", f.Name, f.Builtin, isBuiltin)
		}
		if !f.Builtin {
			ours++
		}
		t.Run(f.Name, func(t *testing.T) {
			p, ds := Compile(f.Example, at, testEnv(true), Any)
			if ds.HasErrors() {
				t.Fatalf("example %q: %v", f.Example, lines(ds))
			}
			if _, err := p.Eval(testScope()); err != nil {
				t.Errorf("example %q: %v", f.Example, err)
			}
		})
	}
	if ours != len(functions) {
		t.Errorf("Functions lists %d of our %d functions", ours, len(functions))
	}
}

func TestDoc(t *testing.T) {
	got := Doc()
	golden := filepath.Join("testdata", "doc.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Doc() differs from %s; run go test -update and review the diff", golden)
	}
	var b strings.Builder
	if err := WriteDoc(&b); err != nil || b.String() != got {
		t.Errorf("WriteDoc wrote %d bytes, %v; want Doc()", b.Len(), err)
	}
	// The examples of the text itself must compile.
	for _, src := range []string{
		`group("etcd") | map(#.vars.etcd_url) | join(",")`,
		`filter(group("etcd"), #.name != host.name)`,
		`let n = len(group("etcd")); n >= 3`,
	} {
		p, ds := Compile(src, at, testEnv(true), Any)
		if ds.HasErrors() {
			t.Errorf("%q: %v", src, lines(ds))
			continue
		}
		if _, err := p.Eval(testScope()); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
	for _, src := range []string{`dest: 'backups/{{ host.name }}-{{ run.id }}.db'`, `{{ "}}" }}`, `{{ {"a": {"b": 1}}.a.b }}`} {
		if _, ds := ParseTemplate(src, at, testEnv(true)); ds.HasErrors() {
			t.Errorf("%q: %v", src, lines(ds))
		}
	}
}
