package modules_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// The marker module is the README's example of a module, kept here so that
// it compiles and runs. A real module is a package of its own under modules/
// that calls modules.Register(markerInfo) in its init; this one registers in
// a registry of its own, so that the built-in modules stay as they are.

// Marker leaves a file on the host saying a change is under way, and takes it
// away on rollback.
type Marker struct {
	Path string       `yaml:"path" runbook:"required" doc:"absolute path of the file to write"`
	Text string       `yaml:"text" default:"a change is under way" doc:"what the file says"`
	Mode arg.FileMode `yaml:"mode" default:"0644" doc:"permissions of the file"`
}

// Defaults returns the arguments as Run sees them: the default tags applied.
func (m *Marker) Defaults() *Marker { return modules.WithDefaults(m) }

// Validate runs at load when the arguments are literal, per host otherwise.
func (m *Marker) Validate() error {
	if !path.IsAbs(m.Path) {
		return &modules.FieldError{Field: "path", Msg: "must be an absolute path, got " + strconv.Quote(m.Path)}
	}
	return nil
}

// Run writes the file; its Result is what Undo gets, even after a resume.
func (m *Marker) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	if err := h.Conn.Put(ctx, strings.NewReader(d.Text+"\n"), d.Path, d.Mode.Perm()); err != nil {
		return modules.Result{}, fmt.Errorf("marker: writing %s: %w", d.Path, err)
	}
	return modules.Result{Changed: true, Data: map[string]any{"path": d.Path}}, nil
}

// Undo removes the file that Run wrote.
func (m *Marker) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	p, _ := done.Data["path"].(string)
	if p == "" {
		return errors.New("marker: the result names no file to remove")
	}
	_, err := h.Conn.Run(ctx, conn.Cmd{Argv: []string{"rm", "-f", "--", p}, Become: h.Become, BecomeUser: h.BecomeUser})
	return err
}

var markerInfo = modules.Info{
	Name: "marker",
	New:  func() modules.Module { return new(Marker) },
	Doc: modules.Doc{
		Summary:     "leave a file on the host saying a change is under way",
		Description: "Writes text to path, atomically. Rollback removes the file.",
		Example:     "- marker: { path: /var/tmp/etcd-upgrade, text: 'etcd upgrade under way' }",
		Undo:        "removes the file",
	},
}

var (
	_ modules.Validator = (*Marker)(nil)
	_ modules.Undoer    = (*Marker)(nil)
)

// TestMarkerModule loads a runbook using the example module, runs the step on
// this machine and rolls it back, and shows the loader's diagnostic for a
// FieldError of its Validate.
func TestMarkerModule(t *testing.T) {
	reg := &modules.Registry{}
	reg.Register(markerInfo)
	for _, a := range modules.Args(markerInfo) {
		if a.Doc == "" {
			t.Errorf("argument %s has no doc tag", a.Name)
		}
	}

	file := filepath.Join(t.TempDir(), "etcd-upgrade")
	src := "runbook: mark\nhosts: etcd\nsteps:\n  - marker: { path: " + strconv.Quote(file) + ", text: 'etcd upgrade' }\n"
	rb, ds := spec.LoadBytes("rb.yml", []byte(src), reg, spec.LoadOptions{})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	m, err := rb.Steps[0].NewArgs(reg, &eval.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := &modules.Host{Name: "etcd-1", Conn: local.New()}
	res, err := m.Run(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != "etcd upgrade\n" {
		t.Fatalf("after Run the file holds %q (%v), want %q", got, err, "etcd upgrade\n")
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("after Run the file's mode is %v (%v), want the default 0644", st.Mode().Perm(), err)
	}
	u, ok := m.(modules.Undoer)
	if !ok {
		t.Fatal("marker is not an Undoer")
	}
	if err := u.Undo(ctx, h, res); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Undo, stat = %v, want the file gone", err)
	}

	bad := "runbook: mark\nhosts: etcd\nsteps:\n  - marker: { path: var/tmp/x }\n"
	_, ds = spec.LoadBytes("rb.yml", []byte(bad), reg, spec.LoadOptions{})
	want := `rb.yml:4:15: marker: path: must be an absolute path, got "var/tmp/x"`
	if len(ds) != 1 || ds[0].Error() != want {
		t.Errorf("diagnostics = %v, want %q", ds, want)
	}
}
