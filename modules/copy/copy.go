// Package copy is the copy module: a file from the controller, or inline
// content, installed on the host as swap installs a file.
package copy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

func init() {
	modules.Register(modules.Info{
		Name: "copy",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "put a file from the controller, or inline content, on the host, with a diff and a backup",
			Description: `Installs src (a file on the controller, relative to the runbook's folder)
or content (text given in the step) at dest, as the template module does:
staged beside dest under a random name, its mode and owner set, its sha256
checked on the host, validate run on it when given, the replaced file kept
at backup, then renamed over dest; nothing is written when dest has the
content, mode and owner already. A symbolic link at dest is refused. With
--diff, and in --check, the result's diff is the unified diff of dest
(a binary file or one over 256 KiB is named, not shown).`,
			Example: `- name: the release notes beside the binary
  copy:
    content: 'etcd {{ etcd_target }}, upgraded by run {{ run.id }}\n'
    dest: /var/lib/etcd/UPGRADED
    mode: "0644"
- name: the logrotate rule
  copy: { src: files/etcd.logrotate, dest: /etc/logrotate.d/etcd }`,
			Undo: `put the replaced file back from backup, or remove the file if the step
created it; refuses when the file changed since, or when the backup no
longer holds the replaced file.`,
		},
	})
}

// Module holds the copy module's arguments: src or content, and the file's.
type Module struct {
	Src           string  `yaml:"src" doc:"file on the controller, relative to the runbook's folder"`
	Content       *string `yaml:"content" doc:"the file's content, instead of src"`
	hostfile.Args `yaml:",inline"`
}

// MaxSrc bounds the file copied: copy reads it whole, for its diff; swap
// installs large files such as binaries.
const MaxSrc = 64 << 20

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate wants exactly one of src and content.
func (m *Module) Validate() error {
	switch {
	case m.Src == "" && m.Content == nil:
		return &modules.FieldError{Field: "src", Msg: "is required without content; give the file on the controller, or content"}
	case m.Src != "" && m.Content != nil:
		return &modules.FieldError{Field: "content", Msg: "is given with src; give one of them"}
	}
	return m.Args.Check()
}

// Run installs the content at dest.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.do(ctx, h, false)
}

// Check reports whether dest would change, with its diff.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.do(ctx, h, true)
}

func (m *Module) do(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	d := m.Defaults()
	b, of, err := d.content(h)
	if err != nil {
		return modules.Result{}, err
	}
	res, err := hostfile.Put(ctx, h, d.Want("copy", of), b, d.ValidateCmd, dry)
	if res.Data != nil && d.Src != "" {
		res.Data["src"] = d.Src
	}
	return res, err
}

func (m *Module) content(h *modules.Host) ([]byte, string, error) {
	if m.Content != nil {
		return []byte(*m.Content), "content", nil
	}
	p := m.Src
	if !filepath.IsAbs(p) {
		p = filepath.Join(h.RunbookDir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, "", fmt.Errorf("src: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("src: %s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSrc+1))
	if err != nil {
		return nil, "", fmt.Errorf("src: reading %s: %w", p, err)
	}
	if len(b) > MaxSrc {
		return nil, "", fmt.Errorf("src: %s is over %d MiB; install large files with swap", p, MaxSrc>>20)
	}
	return b, "src", nil
}

// Undo puts back the file the step replaced, or removes the one it created.
func (m *Module) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if !done.Changed {
		return nil
	}
	d := m.Defaults()
	data, err := hostfile.Unredact("copy", done.Data, d.UndoPaths(done.Data))
	if err != nil {
		return err
	}
	return hostfile.Undo(ctx, h, "copy", data)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.Undoer    = (*Module)(nil)
)
