// Package file is the file module: a path on the host made a folder, a
// symbolic link or absent, or given a mode and owner, as Ansible's file
// does, each change recorded so that the undo puts back exactly what was.
package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

func init() {
	modules.Register(modules.Info{
		Name: "file",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "make a path on the host a folder, a link or absent, with a mode and owner",
			Description: `state: directory makes path a folder (and the missing folders above it),
file gives an existing file its mode and owner (it never creates one:
use copy), link makes path a symbolic link to src (replacing a link to
elsewhere, never a file or a folder), absent removes it. mode, owner and
group are set on a folder or file, never through a link.

What was there is recorded in the result, so that the undo puts it back
exactly: a mode and owner set are set back, folders made are removed
(when still empty), a link made is removed or pointed back, and a removed
path is not deleted but renamed beside itself (.NAME.runbook-removed.RANDOM,
in the result's kept_at) and renamed back by the undo. So absent frees no
space until the run is over: remove the kept file later by hand, or with
another step. With --diff, and in --check, the result's diff says what
changes.`,
			Example: `- name: a folder for the new data
  file: { path: /var/lib/etcd-new, state: directory, mode: "0700", owner: etcd, group: etcd }
- name: the current release
  file: { path: /opt/app/current, state: link, src: '/opt/app/releases/{{ app_version }}' }
- name: no stale pid file
  file: { path: /run/app.pid, state: absent }`,
			Undo: `put back what was at path: the mode and owner, no folder (removing only
empty folders it made), the link's old target or no link, or the removed
path renamed back from kept_at; refuses when path changed since.`,
		},
	})
}

// Module holds the file module's arguments.
type Module struct {
	Path  string       `yaml:"path" runbook:"required" doc:"absolute path on the host"`
	State string       `yaml:"state" default:"file" doc:"directory, file, link or absent"`
	Src   string       `yaml:"src" doc:"with state: link, what the link points to"`
	Mode  arg.FileMode `yaml:"mode" doc:"permissions, in octal (a new folder gets 0755)"`
	Owner string       `yaml:"owner" doc:"user that owns it"`
	Group string       `yaml:"group" doc:"its group"`
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate checks the state and what it needs.
func (m *Module) Validate() error {
	d := m.Defaults()
	if err := argcheck.OneOf("a state", d.State, "directory", "file", "link", "absent"); err != nil {
		return &modules.FieldError{Field: "state", Msg: err.Error()}
	}
	if err := argcheck.AbsPath(m.Path); err != nil {
		return &modules.FieldError{Field: "path", Msg: err.Error()}
	}
	if m.Path == "/" {
		return &modules.FieldError{Field: "path", Msg: "is /; name something below it"}
	}
	switch {
	case d.State == "link" && m.Src == "":
		return &modules.FieldError{Field: "src", Msg: "is required with state: link; give what the link points to"}
	case d.State != "link" && m.Src != "":
		return &modules.FieldError{Field: "src", Msg: "is used with state: link only"}
	case d.State == "absent" && (m.Mode != 0 || m.Owner != "" || m.Group != ""):
		return &modules.FieldError{Field: "state", Msg: "absent takes no mode, owner or group"}
	case d.State == "link" && (m.Mode != 0 || m.Owner != "" || m.Group != ""):
		return &modules.FieldError{Field: "state", Msg: "link takes no mode, owner or group: they are not set through a link"}
	}
	return nil
}

// before is what was at the path.
type before struct {
	kind   string // absent, file, directory, link, other
	perm   string // octal, 4 digits
	uid    int
	gid    int
	target string // of a link
}

func (h *hostOps) look(ctx context.Context, p string) (before, error) {
	f, err := hostfile.Lstat(ctx, h.h, p)
	if err != nil || !f.Exists {
		return before{kind: "absent"}, err
	}
	b := before{perm: hostfile.ModeString(f.Perm), uid: f.UID, gid: f.GID}
	out, err := h.run(ctx, "stat", "-c", "%F", "--", p)
	if err != nil {
		return b, fmt.Errorf("reading the type of %s: %w", p, err)
	}
	switch t := strings.TrimSpace(string(out.Stdout)); {
	case f.Regular:
		b.kind = "file"
	case t == "directory":
		b.kind = "directory"
	case t == "symbolic link":
		b.kind = "link"
		out, err := h.run(ctx, "readlink", "--", p)
		if err != nil {
			return b, fmt.Errorf("reading the link %s: %w", p, err)
		}
		b.target = strings.TrimSuffix(string(out.Stdout), "\n")
	default:
		b.kind = "other"
	}
	return b, nil
}

type hostOps struct{ h *modules.Host }

func (h *hostOps) run(ctx context.Context, argv ...string) (conn.Output, error) {
	return h.h.Conn.Run(ctx, conn.Cmd{Argv: argv, Become: h.h.Become, BecomeUser: h.h.BecomeUser})
}

// Run makes the path what the step says.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Defaults().do(ctx, h, false)
}

// Check reports what Run would change.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Defaults().do(ctx, h, true)
}

func (m *Module) do(ctx context.Context, mh *modules.Host, dry bool) (modules.Result, error) {
	h := &hostOps{mh}
	b, err := h.look(ctx, m.Path)
	if err != nil {
		return modules.Result{}, err
	}
	was := b
	data := map[string]any{
		"path": m.Path, "state": m.State, "before": b.kind, "perm_before": b.perm,
		"uid_before": b.uid, "gid_before": b.gid, "target_before": b.target,
		"created": []any{}, "kept_at": "",
	}
	var changes []string
	switch m.State {
	case "absent":
		if b.kind == "absent" {
			break
		}
		changes = append(changes, fmt.Sprintf("removes the %s", b.kind))
		if !dry {
			kept, err := h.setAside(ctx, m.Path)
			if err != nil {
				return modules.Result{}, err
			}
			data["kept_at"] = kept
		}
	case "link":
		switch b.kind {
		case "absent":
			changes = append(changes, "links to "+m.Src)
		case "link":
			if b.target != m.Src {
				changes = append(changes, fmt.Sprintf("points the link to %s instead of %s", m.Src, b.target))
			}
		default:
			return modules.Result{}, fmt.Errorf("%s is a %s, not a link; file does not replace it with a link: remove it first (state: absent)", m.Path, b.kind)
		}
		if len(changes) > 0 && !dry {
			if err := h.link(ctx, m.Src, m.Path); err != nil {
				return modules.Result{}, err
			}
		}
	case "directory", "file":
		switch {
		case b.kind == "absent" && m.State == "file":
			return modules.Result{}, fmt.Errorf("%s does not exist; state: file does not create files (use copy, or state: directory)", m.Path)
		case b.kind == "absent":
			missing, err := h.missing(ctx, m.Path)
			if err != nil {
				return modules.Result{}, err
			}
			changes = append(changes, "creates "+strings.Join(missing, ", "))
			if !dry {
				created, err := h.mkdirs(ctx, missing)
				data["created"] = created
				if err != nil {
					return modules.Result{Changed: len(created) > 0, Data: data}, err
				}
			}
			b = before{kind: "directory", perm: "0755"}
		case b.kind != m.State:
			return modules.Result{}, fmt.Errorf("%s is a %s, not a %s; file does not follow links nor replace one kind with another", m.Path, b.kind, m.State)
		}
		c, err := m.attrs(ctx, h, b, dry)
		if err != nil {
			return modules.Result{Changed: len(changes) > 0, Data: data}, err
		}
		changes = append(changes, c...)
	}
	msg := m.Path + " is as asked"
	if len(changes) > 0 {
		msg = m.Path + ": " + strings.Join(changes, "; ")
		if mh.Diff {
			data["diff"] = "--- " + m.Path + " (before)\n+++ " + m.Path + " (after)\n" + "- " + describe(was) + "\n+ " + strings.Join(changes, "; ") + "\n"
		}
	}
	data["msg"] = msg
	return modules.Result{Changed: len(changes) > 0, Data: data}, nil
}

func describe(b before) string {
	switch b.kind {
	case "absent":
		return "absent"
	case "link":
		return "a link to " + b.target
	}
	return fmt.Sprintf("a %s, mode %s, owner %d:%d", b.kind, b.perm, b.uid, b.gid)
}

// attrs sets the mode and owner of the folder or file at the path, after
// checking that it is one (chmod and chown follow a link).
func (m *Module) attrs(ctx context.Context, h *hostOps, b before, dry bool) ([]string, error) {
	var changes []string
	if m.Owner != "" || m.Group != "" {
		f, err := hostfile.Lstat(ctx, h.h, m.Path)
		if err != nil {
			return nil, err
		}
		if !f.Exists || !hostfile.SameID(m.Owner, f.User, f.UID) || !hostfile.SameID(m.Group, f.Group, f.GID) {
			spec := m.Owner
			if m.Group != "" {
				spec += ":" + m.Group
			}
			changes = append(changes, "owner "+spec)
			if !dry {
				if err := h.checkKind(ctx, m.Path, b.kind); err != nil {
					return changes, err
				}
				if _, err := h.run(ctx, "chown", "--", spec, m.Path); err != nil {
					return changes, fmt.Errorf("giving %s owner %s: %w", m.Path, spec, err)
				}
			}
		}
	}
	if m.Mode != 0 && hostfile.ModeString(m.Mode.Perm()) != b.perm {
		changes = append(changes, "mode "+hostfile.ModeString(m.Mode.Perm()))
		if !dry {
			if err := h.checkKind(ctx, m.Path, b.kind); err != nil {
				return changes, err
			}
			if _, err := h.run(ctx, "chmod", "--", hostfile.ModeString(m.Mode.Perm()), m.Path); err != nil {
				return changes, fmt.Errorf("setting mode on %s: %w", m.Path, err)
			}
		}
	}
	return changes, nil
}

// checkKind makes sure p is still a folder or file of its own, not a link.
func (h *hostOps) checkKind(ctx context.Context, p, kind string) error {
	b, err := h.look(ctx, p)
	if err != nil {
		return err
	}
	if b.kind != kind {
		return fmt.Errorf("%s is now a %s, not a %s; not following it", p, b.kind, kind)
	}
	return nil
}

// missing lists the folders to make for p, outermost first.
func (h *hostOps) missing(ctx context.Context, p string) ([]string, error) {
	var list []string
	for d := p; d != "/" && d != "."; d = path.Dir(d) {
		b, err := h.look(ctx, d)
		if err != nil {
			return nil, err
		}
		if b.kind == "directory" {
			break
		}
		if b.kind != "absent" {
			return nil, fmt.Errorf("%s is a %s, not a folder; cannot make %s below it", d, b.kind, p)
		}
		list = append([]string{d}, list...)
	}
	return list, nil
}

// mkdirs makes each folder (mkdir without -p: one that appeared since is
// an error, not taken over), returning those it made.
func (h *hostOps) mkdirs(ctx context.Context, dirs []string) ([]any, error) {
	made := []any{}
	for _, d := range dirs {
		if _, err := h.run(ctx, "mkdir", "-m", "0755", "--", d); err != nil {
			return made, fmt.Errorf("making %s: %w", d, err)
		}
		made = append(made, d)
	}
	return made, nil
}

// link points p to target: a new link under a random name beside p, renamed
// over p (mv -T replaces a link itself, never what it points to).
func (h *hostOps) link(ctx context.Context, target, p string) error {
	tmp := hostfile.TempPrefix(p, ".runbook-link.") + random()
	if _, err := h.run(ctx, "ln", "-s", "--", target, tmp); err != nil {
		return fmt.Errorf("making a link to %s beside %s: %w", target, p, err)
	}
	if _, err := h.run(ctx, "mv", "-f", "-T", "--", tmp, p); err != nil {
		h.run(context.WithoutCancel(ctx), "rm", "-f", "--", tmp)
		return fmt.Errorf("renaming the link over %s: %w", p, err)
	}
	return nil
}

// setAside renames p to a new name beside it, which the undo renames back:
// the file, folder or link keeps its bytes, mode and owner.
func (h *hostOps) setAside(ctx context.Context, p string) (string, error) {
	kept := hostfile.TempPrefix(p, ".runbook-removed.") + random()
	if _, err := h.run(ctx, "mv", "-n", "-T", "--", p, kept); err != nil {
		return "", fmt.Errorf("removing %s (renaming it to %s): %w", p, kept, err)
	}
	if b, err := h.look(ctx, p); err != nil || b.kind != "absent" {
		return kept, fmt.Errorf("%s is still there after it was renamed to %s (%v)", p, kept, err)
	}
	return kept, nil
}

func random() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Undo puts back what was at the path, from the result.
func (m *Module) Undo(ctx context.Context, mh *modules.Host, done modules.Result) error {
	if !done.Changed {
		return nil
	}
	h := &hostOps{mh}
	d := done.Data
	p, _ := d["path"].(string)
	state, _ := d["state"].(string)
	was, _ := d["before"].(string)
	if p == "" || state == "" || was == "" {
		return errors.New("cannot undo the file step: its recorded result lacks path, state or before")
	}
	if p != m.Path && m.Path != "" && strings.Contains(p, "<redacted>") {
		if !hostfile.MatchesRedacted(p, m.Path) {
			return fmt.Errorf("cannot undo the file step: its recorded path %q hides a secret and the step's own path does not match it", p)
		}
		p = m.Path
	}
	cur, err := h.look(ctx, p)
	if err != nil {
		return err
	}
	switch state {
	case "absent":
		kept, _ := d["kept_at"].(string)
		if !hostfile.IsStageLike(kept, p, ".runbook-removed.") {
			return fmt.Errorf("cannot undo the removal of %s: its recorded kept_at %q is not a name it renames to", p, kept)
		}
		if cur.kind != "absent" {
			return fmt.Errorf("%s is there again (a %s); not replacing it with the removed one kept at %s", p, cur.kind, kept)
		}
		if _, err := h.run(ctx, "mv", "-n", "-T", "--", kept, p); err != nil {
			return fmt.Errorf("putting back %s from %s: %w", p, kept, err)
		}
		return nil
	case "link":
		if cur.kind != "link" {
			return fmt.Errorf("%s is no longer a link (a %s); not touching it", p, cur.kind)
		}
		if was == "absent" {
			_, err := h.run(ctx, "rm", "-f", "--", p)
			return err
		}
		target, _ := d["target_before"].(string)
		return h.link(ctx, target, p)
	}
	// directory or file: set back the mode and owner, remove made folders.
	if cur.kind != "absent" && cur.kind != state {
		return fmt.Errorf("%s is now a %s, not a %s; not touching it", p, cur.kind, state)
	}
	created, _ := d["created"].([]any)
	if len(created) > 0 {
		for i := len(created) - 1; i >= 0; i-- {
			dir, _ := created[i].(string)
			if dir == "" {
				continue
			}
			if _, err := h.run(ctx, "rmdir", "--", dir); err != nil {
				return fmt.Errorf("removing %s, which the step made: %w (is it empty?)", dir, err)
			}
		}
		return nil
	}
	if cur.kind == "absent" {
		return nil
	}
	perm, _ := d["perm_before"].(string)
	uid, gid := num(d["uid_before"]), num(d["gid_before"])
	if uid >= 0 && gid >= 0 && (cur.uid != uid || cur.gid != gid) {
		if _, err := h.run(ctx, "chown", "--", strconv.Itoa(uid)+":"+strconv.Itoa(gid), p); err != nil {
			return fmt.Errorf("giving %s back its owner: %w", p, err)
		}
	}
	if perm != "" {
		if err := h.checkKind(ctx, p, state); err != nil {
			return err
		}
		if _, err := h.run(ctx, "chmod", "--", perm, p); err != nil {
			return fmt.Errorf("giving %s back mode %s: %w", p, perm, err)
		}
	}
	return nil
}

// num reads a number the journal may give back as a float.
func num(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	case int64:
		return int(n)
	}
	return -1
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.Undoer    = (*Module)(nil)
)
