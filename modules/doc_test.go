package modules_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	_ "github.com/runbookhq/runbook/modules/builtin"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestWriteDoc(t *testing.T) {
	for _, name := range []string{"check", "swap", "stop", "template"} {
		t.Run(name, func(t *testing.T) {
			info, ok := modules.Default.Lookup(name)
			if !ok {
				t.Fatalf("module %s is not registered", name)
			}
			var buf bytes.Buffer
			if err := modules.WriteDoc(&buf, info); err != nil {
				t.Fatal(err)
			}
			golden(t, "doc-"+name+".golden", buf.Bytes())
		})
	}
}

func TestWriteList(t *testing.T) {
	var buf bytes.Buffer
	if err := modules.WriteList(&buf, modules.Default); err != nil {
		t.Fatal(err)
	}
	golden(t, "list.golden", buf.Bytes())
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, os.ErrClosed
	}
	w.n--
	return len(p), nil
}

func TestWriteDocReportsWriteErrors(t *testing.T) {
	info, _ := modules.Default.Lookup("swap")
	for n := range 4 {
		if err := modules.WriteDoc(&failWriter{n: n}, info); err == nil {
			t.Errorf("WriteDoc with a writer failing after %d writes returned nil", n)
		}
	}
	if err := modules.WriteList(&failWriter{}, modules.Default); err == nil {
		t.Error("WriteList with a failing writer returned nil")
	}
}

func TestBuiltinRegistersTheCoreModules(t *testing.T) {
	want := []string{"analysis", "assert", "assert-metric", "check", "command", "copy", "debug", "etcd-move-leader", "fail", "file", "lineinfile", "pause", "restart", "set_fact", "shell", "snapshot", "start", "stop", "swap", "template", "wait"}
	if got := modules.Default.Names(); !slices.Equal(got, want) {
		t.Errorf("registered modules = %v, want %v", got, want)
	}
}

// TestModulesAreDocumented holds every registered module to the documentation
// rules: a doc line on every argument, and a summary, description and example.
func TestModulesAreDocumented(t *testing.T) {
	for _, info := range modules.Default.All() {
		t.Run(info.Name, func(t *testing.T) {
			d := info.Doc
			if d.Summary == "" || strings.HasSuffix(d.Summary, ".") || unicode.IsUpper([]rune(d.Summary)[0]) {
				t.Errorf("summary %q: want one lower-case line without a final period", d.Summary)
			}
			if strings.TrimSpace(d.Description) == "" || strings.TrimSpace(d.Example) == "" {
				t.Error("description or example is empty")
			}
			_, undoer := info.New().(modules.Undoer)
			if undoer != (d.Undo != "") {
				t.Errorf("Undoer = %v but Doc.Undo = %q; they must agree", undoer, d.Undo)
			}
			args := modules.Args(info)
			if len(args) == 0 {
				t.Fatal("no arguments")
			}
			for _, a := range args {
				if a.Doc == "" {
					t.Errorf("argument %s has no doc tag", a.Name)
				}
				if a.Required && a.Default != "" {
					t.Errorf("argument %s is required and has a default", a.Name)
				}
			}
			checkTags(t, reflect.TypeOf(info.New()).Elem(), "")
		})
	}
}

// checkTags fails for an exported field without a yaml key: the decoder would
// never fill it, so it could only be a forgotten tag.
func checkTags(t *testing.T, st reflect.Type, prefix string) {
	t.Helper()
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			checkTags(t, f.Type, prefix)
			continue
		}
		if key == "" || key == "-" {
			t.Errorf("field %s%s has no yaml key", prefix, f.Name)
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "github.com/runbookhq/runbook/modules/arg" {
			checkTags(t, ft, key+".")
		}
	}
}

// TestDefaultsApplyTheTags checks that each module's Defaults method applies every
// literal default its tags document, without changing the decoded value.
func TestDefaultsApplyTheTags(t *testing.T) {
	for _, info := range modules.Default.All() {
		t.Run(info.Name, func(t *testing.T) {
			m := info.New()
			defaults := reflect.ValueOf(m).MethodByName("Defaults")
			if !defaults.IsValid() {
				t.Fatal("no Defaults method")
			}
			allocSections(reflect.ValueOf(m).Elem())
			before := reflect.ValueOf(m).Elem().Interface()
			got := defaults.Call(nil)[0]
			if !reflect.DeepEqual(before, reflect.ValueOf(m).Elem().Interface()) {
				t.Error("Defaults changed the decoded value")
			}
			for _, a := range modules.Args(info) {
				if a.Default == "" || modules.IsComputedDefault(a.Default) || a.Type == "expression" {
					continue
				}
				if v := fieldByKey(got.Elem(), a.Name); !v.IsValid() || v.IsZero() {
					t.Errorf("%s: documented default %q is not applied", a.Name, a.Default)
				}
			}
		})
	}
}

func allocSections(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case !f.CanSet():
		case f.Kind() == reflect.Struct && f.Type().PkgPath() != "github.com/runbookhq/runbook/modules/arg":
			allocSections(f)
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct && f.IsNil():
			f.Set(reflect.New(f.Type().Elem()))
		}
	}
}

// fieldByKey finds the field at a dotted YAML path, looking through inline structs.
func fieldByKey(v reflect.Value, path string) reflect.Value {
	key, rest, nested := strings.Cut(path, ".")
	for i := range v.NumField() {
		k, opts, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if opts == "inline" {
			if f := fieldByKey(v.Field(i), path); f.IsValid() {
				return f
			}
			continue
		}
		if k == key {
			f := v.Field(i)
			if nested {
				return fieldByKey(reflect.Indirect(f), rest)
			}
			return f
		}
	}
	return reflect.Value{}
}

type status []int

func (status) DocType() string { return "int or list of ints" }

type section struct {
	URL string `yaml:"url" runbook:"required" doc:"where"`
}

type inlined struct {
	Flat string `yaml:"flat" doc:"read as the parent's key"`
}

type everyType struct {
	S       string            `yaml:"s"`
	B       bool              `yaml:"b"`
	I       int               `yaml:"i"`
	D       arg.Duration      `yaml:"d" default:"5s"`
	M       arg.FileMode      `yaml:"m"`
	E       arg.Expr          `yaml:"e"`
	Q       arg.Quota         `yaml:"q"`
	A       arg.Argv          `yaml:"a"`
	L       arg.StringList    `yaml:"l"`
	Strs    []string          `yaml:"strs"`
	Env     map[string]string `yaml:"env"`
	St      status            `yaml:"st"`
	Sec     *section          `yaml:"sec" doc:"a section"`
	Inline  inlined           `yaml:",inline"`
	Skipped string            `yaml:"-"`
	NoTag   string
	hidden  string //nolint:unused // unexported fields are not arguments
}

func TestArgsOf(t *testing.T) {
	want := []modules.Arg{
		{Name: "s", Type: "string"},
		{Name: "b", Type: "bool"},
		{Name: "i", Type: "int"},
		{Name: "d", Type: "duration", Default: "5s"},
		{Name: "m", Type: "file mode (octal)"},
		{Name: "e", Type: "expression"},
		{Name: "q", Type: "count or percent"},
		{Name: "a", Type: "command (string or list)"},
		{Name: "l", Type: "string or list of strings"},
		{Name: "strs", Type: "list of strings"},
		{Name: "env", Type: "map"},
		{Name: "st", Type: "int or list of ints"},
		{Name: "sec", Type: "section", Doc: "a section"},
		{Name: "sec.url", Type: "string", Required: true, Doc: "where"},
		{Name: "flat", Type: "string", Doc: "read as the parent's key"},
	}
	got := modules.ArgsOf(&everyType{})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ArgsOf:\ngot  %+v\nwant %+v", got, want)
	}
	if got := modules.ArgsOf(3); got != nil {
		t.Errorf("ArgsOf(3) = %v, want nil", got)
	}
}

// A module without arguments still renders; the table is left out.
type noArgs struct{}

func (*noArgs) Run(context.Context, *modules.Host) (modules.Result, error) {
	return modules.Result{}, nil
}

func TestWriteDocWithoutArguments(t *testing.T) {
	var buf bytes.Buffer
	info := modules.Info{Name: "noop", New: func() modules.Module { return new(noArgs) }, Doc: modules.Doc{Summary: "do nothing"}}
	if err := modules.WriteDoc(&buf, info); err != nil {
		t.Fatal(err)
	}
	want := "noop: do nothing\n\nUndo:\n  none: automatic rollback leaves this step as it is.\n"
	if buf.String() != want {
		t.Errorf("WriteDoc = %q, want %q", buf.String(), want)
	}
}
