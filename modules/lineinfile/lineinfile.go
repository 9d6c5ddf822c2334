// Package lineinfile is the lineinfile module: one line of a file on the
// host made present or absent, as Ansible's lineinfile does, the file
// installed again as swap installs one, so that the undo puts it back.
package lineinfile

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

func init() {
	modules.Register(modules.Info{
		Name: "lineinfile",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "make sure a line is in a file on the host, or is not, as Ansible's lineinfile",
			Description: `state: present (the default) replaces the last line that regexp matches
with line; when none matches and line is not in the file already, adds
line after the last line insertafter matches (EOF, the default: at the
end) or before the last line insertbefore matches (BOF: at the start), or
at the end when that pattern matches nothing. state: absent removes every
line regexp matches (without regexp: every line equal to line).
Patterns are Go regular expressions (RE2), which Ansible's simple ones are.

The file is read on the host, changed on the controller and installed as
the copy module installs a file (staged, sha256 checked, validate, the
old file kept at backup, an atomic rename), keeping its mode and owner
unless given. A missing file is an error, or with create: true a new one
holding line. A symbolic link at path is refused. With --diff, and in
--check, the result's diff is the unified diff of the file.`,
			Example: `- name: etcd logs as JSON
  lineinfile:
    path: /etc/default/etcd
    regexp: '^ETCD_LOG_FORMAT='
    line: ETCD_LOG_FORMAT=json
- name: no more debug logging
  lineinfile: { path: /etc/default/etcd, regexp: '^ETCD_DEBUG=', state: absent }`,
			Undo: `put the file back from backup, or remove it if the step created it;
refuses when it changed since, or when the backup no longer holds it.`,
		},
	})
}

// Module holds the lineinfile module's arguments.
type Module struct {
	Path         string       `yaml:"path" runbook:"required" doc:"absolute path of the file on the host"`
	Regexp       string       `yaml:"regexp" doc:"the line to replace (present) or remove (absent) is the one this matches"`
	Line         *string      `yaml:"line" doc:"the line that must be in the file (required with state: present)"`
	State        string       `yaml:"state" default:"present" doc:"present or absent"`
	InsertAfter  string       `yaml:"insertafter" default:"EOF" doc:"a new line goes after the last line this matches; EOF: at the end"`
	InsertBefore string       `yaml:"insertbefore" doc:"a new line goes before the last line this matches; BOF: at the start"`
	Create       bool         `yaml:"create" doc:"create the file when it is missing, instead of failing"`
	Mode         arg.FileMode `yaml:"mode" default:"<mode of the file, else 0644>" doc:"permissions of the file, in octal"`
	Owner        string       `yaml:"owner" default:"<owner of the file>" doc:"user that owns the file"`
	Group        string       `yaml:"group" default:"<group of the file>" doc:"group of the file"`
	Backup       string       `yaml:"backup" default:"<path>.runbook-prev.RANDOM" doc:"where the file as it was is kept on the host, for the undo"`
	ValidateCmd  arg.Argv     `yaml:"validate" doc:"command run on the staged file before it is installed, %s standing for its path"`
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate checks the combination of arguments and the patterns.
func (m *Module) Validate() error {
	d := m.Defaults()
	if err := argcheck.OneOf("state", d.State, "present", "absent"); err != nil {
		return &modules.FieldError{Field: "state", Msg: err.Error()}
	}
	switch {
	case d.State == "present" && m.Line == nil:
		return &modules.FieldError{Field: "line", Msg: "is required with state: present; give the line the file must hold"}
	case d.State == "absent" && m.Line == nil && m.Regexp == "":
		return errors.New("nothing to remove; give regexp or line")
	case m.InsertAfter != "" && m.InsertBefore != "":
		return &modules.FieldError{Field: "insertbefore", Msg: "is given with insertafter; give one of them"}
	case m.Line != nil && strings.Contains(*m.Line, "\n"):
		return &modules.FieldError{Field: "line", Msg: "holds a newline; lineinfile manages one line (use copy or template for more)"}
	}
	for _, f := range []struct{ name, re string }{{"regexp", m.Regexp}, {"insertafter", m.InsertAfter}, {"insertbefore", m.InsertBefore}} {
		if f.re == "" || argcheck.Templated(f.re) || f.re == "EOF" || f.re == "BOF" {
			continue
		}
		if _, err := regexp.Compile(f.re); err != nil {
			return &modules.FieldError{Field: f.name, Msg: "is not a regular expression: " + err.Error()}
		}
	}
	args := hostfile.Args{Dest: m.Path, Backup: m.Backup, ValidateCmd: m.ValidateCmd}
	if err := args.Check(); err != nil {
		var fe *modules.FieldError
		if errors.As(err, &fe) && fe.Field == "dest" {
			fe.Field = "path"
		}
		return err
	}
	return nil
}

// Run makes the file hold the line (or not).
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.do(ctx, h, false)
}

// Check reports whether the file would change, with its diff.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.do(ctx, h, true)
}

func (m *Module) args() *hostfile.Args {
	return &hostfile.Args{Dest: m.Path, Mode: m.Mode, Owner: m.Owner, Group: m.Group, Backup: m.Backup}
}

func (m *Module) want() hostfile.Want { return m.args().Want("lineinfile", "the changed file") }

func (m *Module) do(ctx context.Context, h *modules.Host, dry bool) (modules.Result, error) {
	d := m.Defaults()
	cur, err := hostfile.InspectFile(ctx, h, d.Path)
	if err != nil {
		return modules.Result{}, err
	}
	var before []byte
	switch {
	case cur.Exists && !cur.Regular:
		return modules.Result{}, fmt.Errorf("path %s is not a regular file (a symbolic link or a folder); lineinfile does not follow links", d.Path)
	case cur.Exists:
		b, ok, err := hostfile.ReadText(ctx, h, d.Path)
		if err != nil {
			return modules.Result{}, err
		}
		if !ok {
			return modules.Result{}, fmt.Errorf("path %s is over %d KiB; lineinfile edits text files", d.Path, hostfile.MaxDiff>>10)
		}
		before = b
	case d.State == "absent":
		return modules.Result{Data: map[string]any{"dest": d.Path, "msg": d.Path + " does not exist: nothing to remove"}}, nil
	case !d.Create:
		return modules.Result{}, fmt.Errorf("path %s does not exist; give create: true to make it", d.Path)
	}
	after, msg, err := d.edit(string(before))
	if err != nil {
		return modules.Result{}, err
	}
	if cur.Exists && after == string(before) && d.Mode == 0 && d.Owner == "" && d.Group == "" {
		return modules.Result{Data: map[string]any{"dest": d.Path, "msg": msg}}, nil
	}
	res, err := hostfile.Put(ctx, h, d.want(), []byte(after), d.ValidateCmd, dry)
	if res.Data != nil && res.Changed {
		res.Data["msg"] = msg
	}
	return res, err
}

// edit applies the step to the file's text, as Ansible's lineinfile.
func (m *Module) edit(text string) (string, string, error) {
	compile := func(field, re string) (*regexp.Regexp, error) {
		r, err := regexp.Compile(re)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a regular expression: %w", field, re, err)
		}
		return r, nil
	}
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	bare := func(l string) string { return strings.TrimRight(l, "\r\n") }
	var re *regexp.Regexp
	if m.Regexp != "" {
		var err error
		if re, err = compile("regexp", m.Regexp); err != nil {
			return "", "", err
		}
	}
	join := func(ls []string) string {
		s := strings.Join(ls, "")
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		return s
	}
	if m.State == "absent" {
		var kept []string
		n := 0
		for _, l := range lines {
			if (re != nil && re.MatchString(bare(l))) || (re == nil && m.Line != nil && bare(l) == *m.Line) {
				n++
				continue
			}
			kept = append(kept, l)
		}
		if n == 0 {
			return text, "no line to remove", nil
		}
		return strings.Join(kept, ""), fmt.Sprintf("%d %s removed", n, plural(n)), nil
	}
	line := *m.Line
	if re != nil {
		last := -1
		for i, l := range lines {
			if re.MatchString(bare(l)) {
				last = i
			}
		}
		if last >= 0 {
			if bare(lines[last]) == line {
				return text, "the line is there already", nil
			}
			lines[last] = line + "\n"
			return join(lines), "line replaced", nil
		}
	}
	for _, l := range lines {
		if bare(l) == line {
			return text, "the line is there already", nil
		}
	}
	at := len(lines)
	switch {
	case m.InsertBefore == "BOF":
		at = 0
	case m.InsertBefore != "":
		r, err := compile("insertbefore", m.InsertBefore)
		if err != nil {
			return "", "", err
		}
		for i, l := range lines {
			if r.MatchString(bare(l)) {
				at = i
			}
		}
	case m.InsertAfter != "" && m.InsertAfter != "EOF":
		r, err := compile("insertafter", m.InsertAfter)
		if err != nil {
			return "", "", err
		}
		for i, l := range lines {
			if r.MatchString(bare(l)) {
				at = i + 1
			}
		}
	}
	if at == len(lines) && at > 0 && !strings.HasSuffix(lines[at-1], "\n") {
		lines[at-1] += "\n"
	}
	out := append(append(append([]string{}, lines[:at]...), line+"\n"), lines[at:]...)
	return join(out), "line added", nil
}

func plural(n int) string {
	if n == 1 {
		return "line"
	}
	return "lines"
}

// Undo puts back the file as it was, or removes it if the step created it.
func (m *Module) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if !done.Changed {
		return nil
	}
	data, err := hostfile.Unredact("lineinfile", done.Data, m.Defaults().args().UndoPaths(done.Data))
	if err != nil {
		return err
	}
	return hostfile.Undo(ctx, h, "lineinfile", data)
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.Undoer    = (*Module)(nil)
)
