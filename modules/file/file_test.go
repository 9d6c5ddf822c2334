package file

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/modules/internal/modtest"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialSSHD(t *testing.T) conn.Conn { return modtest.DialSSHD(t, "h1") }

// snapshot is what a path is: type, mode, link target, content.
func snapshot(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	s := fi.Mode().String()
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		s += " -> " + target
	case fi.Mode().IsRegular():
		b, _ := os.ReadFile(p)
		s += " " + string(b)
	}
	return s
}

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

// TestStatesAndUndo: each state changes the path, --check does not, and
// the undo (from the result as the journal gives it back) puts back
// exactly what was there.
func TestStatesAndUndo(t *testing.T) {
	type setup func(t *testing.T, dir string)
	file := func(name, body string, mode os.FileMode) setup {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(body), mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, mode)
		}
	}
	link := func(name, target string) setup {
		return func(t *testing.T, dir string) {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		setup  []setup
		m      func(dir string) *Module
		after  string // snapshot of the path after Run
		watch  string // the path to compare; default the module's
		errIn  string
		noDiff bool
	}{
		{name: "a new folder and its parent", m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "a", "b"), State: "directory", Mode: arg.FileMode(0o700)}
		}, after: "drwx------", watch: "a"},
		{name: "a file's mode", setup: []setup{file("f", "x", 0o644)}, m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "f"), State: "file", Mode: arg.FileMode(0o600)}
		}, after: "-rw------- x"},
		{name: "a new link", m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "cur"), State: "link", Src: "/opt/v2"}
		}, after: "Lrwxrwxrwx -> /opt/v2"},
		{name: "a link pointed elsewhere", setup: []setup{link("cur", "/opt/v1")}, m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "cur"), State: "link", Src: "/opt/v2"}
		}, after: "Lrwxrwxrwx -> /opt/v2"},
		{name: "a file removed", setup: []setup{file("gone", "keep me", 0o640)}, m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "gone"), State: "absent"}
		}, after: "absent"},
		{name: "a link removed, not its target", setup: []setup{file("target", "t", 0o600), link("l", "target")}, m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "l"), State: "absent"}
		}, after: "absent"},
		{name: "a file is not made a link", setup: []setup{file("cur", "x", 0o644)}, m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "cur"), State: "link", Src: "/opt/v2"}
		}, errIn: "not a link"},
		{name: "a link is not followed for a mode", setup: []setup{file("target", "t", 0o600), link("l", "target")}, m: func(d string) *Module {
			return &Module{Path: filepath.Join(d, "l"), State: "file", Mode: arg.FileMode(0o666)}
		}, errIn: "is a link, not a file", watch: "target"},
	} {
		for _, tr := range []struct {
			name string
			dial func(t *testing.T) conn.Conn
		}{{"local", func(*testing.T) conn.Conn { return local.New() }}, {"ssh", dialSSHD}} {
			if tr.name == "ssh" && tc.errIn != "" {
				continue
			}
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				dir := t.TempDir()
				for _, s := range tc.setup {
					s(t, dir)
				}
				m := tc.m(dir).Defaults()
				watch := m.Path
				if tc.watch != "" {
					watch = filepath.Join(dir, tc.watch)
				}
				before := snapshot(t, watch)
				h := &modules.Host{Name: "h1", Conn: tr.dial(t), Log: zerolog.Nop(), Diff: true}
				chk, err := m.Check(testCtx(t), h)
				if got := snapshot(t, watch); got != before {
					t.Fatalf("--check changed %s: %s, was %s", watch, got, before)
				}
				res, rerr := m.Run(testCtx(t), h)
				if tc.errIn != "" {
					if rerr == nil || !strings.Contains(rerr.Error(), tc.errIn) {
						t.Errorf("Run = %v, want an error containing %q", rerr, tc.errIn)
					}
					if got := snapshot(t, watch); got != before {
						t.Errorf("a refused step changed %s: %s, was %s", watch, got, before)
					}
					return
				}
				if err != nil || rerr != nil || !chk.Changed || !res.Changed {
					t.Fatalf("Check = %+v, %v; Run = %+v, %v", chk, err, res, rerr)
				}
				if d, _ := chk.Data["diff"].(string); d == "" {
					t.Error("--check with Diff has no diff")
				}
				if got := snapshot(t, m.Path); !strings.HasPrefix(got, tc.after) {
					t.Errorf("after Run %s = %q, want %q", m.Path, got, tc.after)
				}
				again, err := m.Run(testCtx(t), h)
				if err != nil || again.Changed {
					t.Errorf("second Run = %+v, %v; want no change", again, err)
				}
				if err := m.Undo(testCtx(t), h, roundTrip(t, res)); err != nil {
					t.Fatal(err)
				}
				if got := snapshot(t, watch); got != before {
					t.Errorf("after undo %s = %q, want %q", watch, got, before)
				}
				if left, _ := filepath.Glob(filepath.Join(dir, ".*runbook-*")); len(left) > 0 {
					t.Errorf("left behind: %q", left)
				}
			})
		}
	}
}
