package template

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

const tmpl = "listen {{ port }};\n{% for u in ups %}\nserver {{ u }};\n{% endfor %}\n"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// transports are the local connection and SSH to a real OpenSSH sshd
// running as the current user, so the files it writes are this machine's.
var transports = []struct {
	name string
	dial func(t *testing.T) conn.Conn
}{
	{"local", func(*testing.T) conn.Conn { return local.New() }},
	{"ssh", dialSSHD},
}

func dialSSHD(t *testing.T) conn.Conn { return modtest.DialSSHD(t, "web-1") }

// world is a runbook folder holding the template and a host folder.
type world struct {
	h   *modules.Host
	dir string
}

func newWorld(t *testing.T, c conn.Conn) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.h = &modules.Host{Name: "web-1", Conn: c, Log: zerolog.Nop(), RunbookDir: t.TempDir(),
		Scope: &eval.Scope{Vars: map[string]any{"port": 8080, "ups": []any{"a", "b"}}, Host: eval.Host{Name: "web-1"}}}
	write(t, filepath.Join(w.h.RunbookDir, "app.conf.j2"), tmpl, 0o644)
	return w
}

func (w *world) module(mods ...func(*Module)) *Module {
	m := &Module{Src: "app.conf.j2", Args: hostfile.Args{Dest: filepath.Join(w.dir, "app.conf")}}
	for _, f := range mods {
		f(m)
	}
	return m
}

func write(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) (string, os.FileMode, bool) {
	t.Helper()
	fi, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return "", 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fi.Mode(), true
}

// roundTrip is res as a resume reads it back from the journal.
func roundTrip(t *testing.T, res modules.Result) modules.Result {
	t.Helper()
	b, err := json.Marshal(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	out := modules.Result{Changed: res.Changed}
	if err := json.Unmarshal(b, &out.Data); err != nil {
		t.Fatal(err)
	}
	return out
}

func staged(t *testing.T, dir string) []string {
	t.Helper()
	l, err := filepath.Glob(filepath.Join(dir, ".*runbook-*"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const rendered = "listen 8080;\nserver a;\nserver b;\n"

// TestRunAndUndo installs over an existing file and over nothing, then
// undoes: the bytes and mode come back, and a created file goes.
func TestRunAndUndo(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.dial(t)
			for _, existed := range []bool{true, false} {
				w := newWorld(t, c)
				m := w.module()
				if existed {
					write(t, m.Dest, "listen 80;\n", 0o640)
				}
				res, err := m.Run(testCtx(t), w.h)
				if err != nil || !res.Changed {
					t.Fatalf("Run = %+v, %v; want changed", res, err)
				}
				got, mode, _ := read(t, m.Dest)
				wantMode := os.FileMode(0o644)
				if existed {
					wantMode = 0o640
				}
				if got != rendered || mode.Perm() != wantMode {
					t.Fatalf("dest = %q %v, want %q %v", got, mode, rendered, wantMode)
				}
				again, err := m.Run(testCtx(t), w.h)
				if err != nil || again.Changed {
					t.Fatalf("second Run = %+v, %v; want unchanged", again, err)
				}
				if err := m.Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
					t.Fatal(err)
				}
				got, mode, ok := read(t, m.Dest)
				switch {
				case existed && (got != "listen 80;\n" || mode.Perm() != 0o640):
					t.Errorf("after undo dest = %q %v, want the old bytes and mode 0640", got, mode)
				case !existed && ok:
					t.Errorf("after undo dest exists (%q); the template created it", got)
				}
				if l := staged(t, w.dir); len(l) != 0 {
					t.Errorf("left behind: %q", l)
				}
			}
		})
	}
}

// TestCheckAndDiff: --check renders and compares, writes nothing, and its
// diff says what would change.
func TestCheckAndDiff(t *testing.T) {
	w := newWorld(t, local.New())
	w.h.Diff = true
	m := w.module(func(m *Module) { m.ValidateCmd = arg.Argv{"false", "%s"} })
	write(t, m.Dest, "listen 80;\n", 0o644)
	res, err := m.Check(testCtx(t), w.h)
	if err != nil || !res.Changed {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	diff, _ := res.Data["diff"].(string)
	for _, want := range []string{"-listen 80;\n", "+listen 8080;\n", "+server a;\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if got, _, _ := read(t, m.Dest); got != "listen 80;\n" {
		t.Errorf("--check changed dest to %q", got)
	}
	if l := staged(t, w.dir); len(l) != 0 {
		t.Errorf("--check wrote %q", l)
	}
	w.h.Diff = false
	res, err = m.Check(testCtx(t), w.h)
	if _, has := res.Data["diff"]; err != nil || has {
		t.Errorf("without Diff: %+v, %v; want no diff", res, err)
	}
}

// TestValidate: the command sees the staged file; when it fails, dest is
// untouched and nothing is left beside it.
func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  arg.Argv
		err  string
	}{
		{"passes", arg.Argv{"grep", "-q", "listen 8080", "%s"}, ""},
		{"fails", arg.Argv{"sh", "-c", "echo bad config in $0 >&2; exit 1", "%s"}, "validate failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, local.New())
			m := w.module(func(m *Module) { m.ValidateCmd = tt.cmd })
			write(t, m.Dest, "listen 80;\n", 0o644)
			_, err := m.Run(testCtx(t), w.h)
			got, _, _ := read(t, m.Dest)
			if tt.err == "" {
				if err != nil || got != rendered {
					t.Fatalf("Run = %v, dest %q", err, got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "bad config in "+filepath.Join(w.dir, ".app.conf.runbook-new.")) || !strings.Contains(err.Error(), "was not touched") {
				t.Errorf("Run = %v", err)
			}
			if got != "listen 80;\n" {
				t.Errorf("dest = %q after a failed validate", got)
			}
			if l := staged(t, w.dir); len(l) != 0 {
				t.Errorf("left behind: %q", l)
			}
		})
	}
}

// TestPlantedLinks: a link at dest is refused, not read for the diff nor
// kept; one at a backup path the step names is refused before dest is
// replaced (the default backup has a random name nobody can plant).
func TestPlantedLinks(t *testing.T) {
	for _, at := range []string{"app.conf", "app.conf.runbook-prev"} {
		t.Run(at, func(t *testing.T) {
			w := newWorld(t, local.New())
			w.h.Diff = true
			m := w.module()
			victim := filepath.Join(t.TempDir(), "secret")
			write(t, victim, "not yours\n", 0o600)
			if at != "app.conf" {
				write(t, m.Dest, "listen 80;\n", 0o644)
				m.Backup = filepath.Join(w.dir, at)
			}
			if err := os.Symlink(victim, filepath.Join(w.dir, at)); err != nil {
				t.Fatal(err)
			}
			res, err := m.Run(testCtx(t), w.h)
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Run = %+v, %v; want refused", res, err)
			}
			if d, _ := res.Data["diff"].(string); strings.Contains(d, "not yours") {
				t.Error("the diff shows the link's target")
			}
			if got, _, _ := read(t, victim); got != "not yours\n" {
				t.Errorf("the link's target is now %q", got)
			}
			if fi, err := os.Lstat(filepath.Join(w.dir, at)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link at %s was replaced", at)
			}
		})
	}
}

// TestPlantedStagingNames: links planted at names like the staged file's
// and the backup's are never written through: the step makes its files
// under random names (mktemp), so it installs, and the links' target is
// untouched.
func TestPlantedStagingNames(t *testing.T) {
	w := newWorld(t, local.New())
	w.h.Become, w.h.BecomeUser = os.Geteuid() == 0, "root"
	m := w.module()
	write(t, m.Dest, "listen 80;\n", 0o644)
	victim := filepath.Join(t.TempDir(), "secret")
	write(t, victim, "not yours\n", 0o600)
	for _, name := range []string{".app.conf.runbook-new.AAAAAAAAAA", ".app.conf.runbook-new", "app.conf.runbook-prev", ".app.conf.runbook-prev.runbook-tmp.AAAAAAAAAA"} {
		if err := os.Symlink(victim, filepath.Join(w.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := m.Run(testCtx(t), w.h)
	if err != nil || !res.Changed {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if err := m.Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
		t.Fatal(err)
	}
	if got, mode, _ := read(t, victim); got != "not yours\n" || mode.Perm() != 0o600 {
		t.Errorf("the links' target is now %q %v", got, mode)
	}
	if got, _, _ := read(t, m.Dest); got != "listen 80;\n" {
		t.Errorf("after undo dest = %q", got)
	}
}

func TestValidateArgs(t *testing.T) {
	for _, tt := range []struct {
		name         string
		m            Module
		field, msgIn string
	}{
		{"ok", Module{Src: "a.j2", Args: hostfile.Args{Dest: "/etc/a"}}, "", ""},
		{"no src", Module{Args: hostfile.Args{Dest: "/etc/a"}}, "src", "is empty"},
		{"relative dest", Module{Src: "a.j2", Args: hostfile.Args{Dest: "etc/a"}}, "dest", "is relative"},
		{"backup is dest", Module{Src: "a.j2", Args: hostfile.Args{Dest: "/etc/a", Backup: "/etc/a"}}, "backup", "is dest itself"},
		{"Ansible's backup: yes", Module{Src: "a.j2", Args: hostfile.Args{Dest: "/etc/a", Backup: "true"}}, "backup", "not whether"},
		{"validate without %s", Module{Src: "a.j2", Args: hostfile.Args{Dest: "/etc/a", ValidateCmd: arg.Argv{"nginx", "-t"}}}, "validate", "has no %s"},
	} {
		t.Run(tt.name, func(t *testing.T) { modtest.Validate(t, &tt.m, tt.field, tt.msgIn) })
	}
}

// TestUndoRedactedPaths: after a resume, the journal shows dest (and the
// default backup) with a -e value redacted; the undo takes the real paths
// from the step's own arguments and the random end of the recorded backup.
func TestUndoRedactedPaths(t *testing.T) {
	const secret = "prod-Zq9x"
	w := newWorld(t, local.New())
	m := w.module(func(m *Module) { m.Dest = filepath.Join(w.dir, "app-"+secret+".conf") })
	write(t, m.Dest, "listen 80;\n", 0o640)
	res, err := m.Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	s := &redact.Set{}
	s.Add(secret)
	rec := roundTrip(t, res)
	rec.Data = s.RedactMap(rec.Data)
	if d, _ := rec.Data["backup"].(string); !strings.Contains(d, redact.Placeholder) {
		t.Fatalf("backup %q is not redacted", d)
	}
	if err := m.Undo(testCtx(t), w.h, rec); err != nil {
		t.Fatal(err)
	}
	if got, mode, _ := read(t, m.Dest); got != "listen 80;\n" || mode.Perm() != 0o640 {
		t.Errorf("after undo dest = %q %v", got, mode)
	}
}
