// Package template is the template module: it renders a Jinja2 file from
// the controller with the host's variables and installs the result on the
// host as swap installs a file, validated first when asked.
package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
	"github.com/runbookhq/runbook/modules/internal/jinja"
)

func init() {
	modules.Register(modules.Info{
		Name: "template",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "render a Jinja2 template to a file on the host, validated, with a diff and a backup",
			Description: `Renders src, a Jinja2 template on the controller (relative to the
runbook's folder), with what the step's {{ }} see: the host's merged vars,
registered results, facts, host (name, addr, groups, vars), run, and
item in a loop; inventory_hostname and group_names as Ansible sets them.
Jinja2's statements (if, for, set, macro), tests and filters work, with
Ansible's most used filters besides (mandatory, ternary, bool, to_json,
to_nice_json, regex_replace, basename, dirname, b64encode, b64decode);
see the README for how it differs from Ansible's engine.

The rendered file is installed as swap installs one: staged beside dest
under a random name, given its mode and owner, its sha256 checked on the
host, validate run on it (as Ansible's: 'nginx -t -c %s'), the replaced
file kept at backup, then renamed over dest; nothing is written when dest
has the content, mode and owner already. A symbolic link at dest is
refused, not followed (neither read for the diff nor kept as backup), and
one planted at the staging or backup path is never followed.
With --diff, and in every --check run, the result's diff is the unified
diff of dest, shown under the step and redacted as all output is (a
secret the template rendered shows as <redacted>). --check renders and
compares only; it does not run validate, which needs a staged file.`,
			Example: `- name: nginx.conf from the team's template, checked by nginx before it is installed
  template:
    src: templates/nginx.conf.j2
    dest: '{{ nginx_conf }}'
    mode: "0644"
    validate: 'nginx -t -q -c %s'
  register: conf`,
			Undo: `put the replaced file back from backup, or remove the file if the step
created it; refuses when the file changed since, or when the backup no
longer holds the replaced file.`,
		},
	})
}

// Module holds the template module's arguments.
type Module struct {
	Src           string `yaml:"src" runbook:"required" doc:"Jinja2 template on the controller, relative to the runbook's folder"`
	hostfile.Args `yaml:",inline"`
}

// MaxTemplate bounds a template file and what it renders, as every input
// file of a run is bounded.
const MaxTemplate = 4 << 20

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate checks the paths and the validate command.
func (m *Module) Validate() error {
	if m.Src == "" {
		return &modules.FieldError{Field: "src", Msg: "is empty; give the template's file, relative to the runbook's folder"}
	}
	return m.Args.Check()
}

// Run renders src and installs it at dest.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.do(ctx, h, false)
}

// Check renders src and reports whether dest would change, with its diff.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.do(ctx, h, true)
}

func (m *Module) do(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	d := m.Defaults()
	out, err := d.render(h)
	if err != nil {
		return modules.Result{}, err
	}
	res, err := hostfile.Put(ctx, h, d.Want("template", "the rendered template"), []byte(out), d.ValidateCmd, dry)
	if res.Data != nil {
		res.Data["src"] = d.Src
	}
	return res, err
}

// render reads and renders the template on the controller.
func (m *Module) render(h *modules.Host) (string, error) {
	p := m.Src
	if !filepath.IsAbs(p) {
		p = filepath.Join(h.RunbookDir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("src: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTemplate+1))
	if err != nil {
		return "", fmt.Errorf("src: reading %s: %w", p, err)
	}
	if len(b) > MaxTemplate {
		return "", fmt.Errorf("src: %s is over %d MiB", p, MaxTemplate>>20)
	}
	t, err := jinja.Compile(m.Src, string(b))
	if err != nil {
		return "", err
	}
	out, err := t.Render(h.Scope.Values())
	if err != nil {
		return "", err
	}
	if len(out) > MaxTemplate {
		return "", fmt.Errorf("%s renders %d bytes, over %d MiB", m.Src, len(out), MaxTemplate>>20)
	}
	return out, nil
}

// Undo puts back the file the step replaced, or removes the one it created.
func (m *Module) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if !done.Changed {
		return nil
	}
	d := m.Defaults()
	data, err := hostfile.Unredact("template", done.Data, d.UndoPaths(done.Data))
	if err != nil {
		return err
	}
	if data == nil {
		return errors.New("cannot undo the template: no recorded result")
	}
	return hostfile.Undo(ctx, h, "template", data)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.Undoer    = (*Module)(nil)
)
