package modules

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/runbookhq/runbook/modules/arg"
)

// Arg documents one argument of a module, as `runbook doc MODULE` shows it.
type Arg struct {
	Name     string // the YAML key; below a section, its path: "http.url"
	Type     string // for people: "duration", "command (string or list)"
	Required bool   // within its section, for an argument below one
	Default  string // the `default` tag; in angle brackets when the module computes it
	Doc      string
}

// DocTyper is implemented by an argument type of a module's own (check's http
// status: one int or a list) to name its type in `runbook doc`.
type DocTyper interface{ DocType() string }

// Args lists the arguments of info's module in the order its struct declares
// them, each section followed by the arguments inside it.
func Args(info Info) []Arg { return ArgsOf(info.New()) }

// ArgsOf lists the arguments of an argument struct (or a pointer to one), for
// structs that are not a module's own, such as the service module's per-host
// definitions.
func ArgsOf(v any) []Arg {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	return appendArgs(nil, t, "")
}

func appendArgs(out []Arg, t reflect.Type, prefix string) []Arg {
	for i := range t.NumField() {
		f := t.Field(i)
		if isInline(f) && isArgStruct(f.Type) {
			// The decoder reads an inline struct's keys as its parent's.
			out = appendArgs(out, f.Type, prefix)
			continue
		}
		name := yamlKey(f)
		if !f.IsExported() || name == "" {
			continue
		}
		a := Arg{
			Name:     prefix + name,
			Type:     typeName(f.Type),
			Required: f.Tag.Get("runbook") == "required",
			Default:  f.Tag.Get("default"),
			Doc:      f.Tag.Get("doc"),
		}
		out = append(out, a)
		st := f.Type
		if isSection(st) {
			st = st.Elem()
		}
		if isArgStruct(st) {
			out = appendArgs(out, st, a.Name+".")
		}
	}
	return out
}

func isInline(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return strings.Contains(","+opts+",", ",inline,")
}

// yamlKey returns the key of an argument field, or "" for a field that is not one.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

var docTyperType = reflect.TypeFor[DocTyper]()

func typeName(t reflect.Type) string {
	if t.Implements(docTyperType) {
		return reflect.Zero(t).Interface().(DocTyper).DocType()
	}
	if reflect.PointerTo(t).Implements(docTyperType) {
		return reflect.New(t).Interface().(DocTyper).DocType()
	}
	switch t {
	case durationType:
		return "duration"
	case fileModeType:
		return "file mode (octal)"
	case exprType:
		return "expression"
	case quotaType:
		return "count or percent"
	case reflect.TypeFor[arg.Argv]():
		return "command (string or list)"
	case reflect.TypeFor[arg.StringList]():
		return "string or list of strings"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Map:
		return "map"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case reflect.Pointer:
		if isSection(t) {
			return "section"
		}
		return typeName(t.Elem())
	case reflect.Struct:
		return "section"
	}
	return t.String()
}

// WriteDoc writes the text of `runbook doc MODULE`: summary, description, the
// arguments as an aligned table, what automatic rollback does, and the example.
func WriteDoc(w io.Writer, info Info) error {
	ew := &errWriter{w: w}
	ew.printf("%s: %s\n", info.Name, info.Doc.Summary)
	if d := strings.TrimSpace(info.Doc.Description); d != "" {
		ew.printf("\n%s\n", d)
	}
	if args := Args(info); len(args) > 0 {
		ew.printf("\nArguments:\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		for _, a := range args {
			var note string
			switch {
			case a.Required:
				note = "required"
			case a.Default != "":
				note = "default " + a.Default
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Name, a.Type, note, a.Doc)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	undo := strings.TrimSpace(info.Doc.Undo)
	if undo == "" {
		undo = "none: automatic rollback leaves this step as it is."
	}
	ew.printf("\nUndo:\n%s\n", indent(undo, "  "))
	if ex := strings.Trim(info.Doc.Example, "\n"); strings.TrimSpace(ex) != "" {
		ew.printf("\nExample:\n%s\n", indent(ex, "  "))
	}
	return ew.err
}

// WriteList writes the `runbook modules` table: each module's name and summary.
func WriteList(w io.Writer, reg *Registry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, info := range reg.All() {
		if _, err := fmt.Fprintf(tw, "%s\t%s\n", info.Name, info.Doc.Summary); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func indent(s, pre string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = pre + l
		} else {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// errWriter keeps the first write error, so WriteDoc reads as the text it writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
