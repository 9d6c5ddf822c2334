package swap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

var (
	oldBin = []byte("#!/bin/sh\necho etcd 3.6.0\n")
	newBin = []byte("#!/bin/sh\necho etcd 3.7.3\n")
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// world is a runbook folder (the controller side) and a host folder, on this
// machine, reached through the local connection.
type world struct {
	h    *modules.Host
	bin  string // the host folder of dest
	dest string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{bin: t.TempDir()}
	w.dest = filepath.Join(w.bin, "etcd")
	w.h = &modules.Host{Name: "etcd-1", Conn: local.New(), Log: zerolog.Nop(), RunbookDir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(w.h.RunbookDir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.write(t, filepath.Join(w.h.RunbookDir, "dist", "etcd-3.7.3"), newBin, 0o600)
	return w
}

func (w *world) write(t *testing.T, path string, b []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func (w *world) module() *Module {
	return &Module{Src: "dist/etcd-3.7.3", Dest: w.dest}
}

// file describes a file as the tests compare it.
type file struct {
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

func read(t *testing.T, path string) (file, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return file{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return file{data: b, mode: fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid), uid: int(st.Uid), gid: int(st.Gid)}, true
}

func mustRead(t *testing.T, path string) file {
	t.Helper()
	f, ok := read(t, path)
	if !ok {
		t.Fatalf("%s does not exist", path)
	}
	return f
}

func equalFile(a, b file) bool {
	return bytes.Equal(a.data, b.data) && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid
}

// leftovers lists files of ours that a swap must not leave behind.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".runbook-new") || strings.Contains(e.Name(), ".runbook-tmp") || strings.HasPrefix(e.Name(), ".etcd.runbook-new.") {
			out = append(out, e.Name())
		}
	}
	return out
}

func roundTrip(t *testing.T, r modules.Result) modules.Result {
	t.Helper()
	b, err := json.Marshal(r.Data)
	if err != nil {
		t.Fatalf("result data is not JSON-safe: %v", err)
	}
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	return modules.Result{Changed: r.Changed, Data: data}
}

func canChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to another owner needs root")
	}
}

func TestSwapReplaces(t *testing.T) {
	canChown(t)
	w := newWorld(t)
	w.write(t, w.dest, oldBin, 0o750)
	if err := os.Chown(w.dest, 1234, 2345); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, w.dest)

	res, err := w.module().Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed {
		t.Error("a swap that replaced the file reported no change")
	}
	got := mustRead(t, w.dest)
	if want := (file{newBin, 0o750, 1234, 2345}); !equalFile(got, want) {
		t.Errorf("dest = %+v, want the new content with the replaced file's mode and owner %+v", got, want)
	}
	if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
		t.Errorf("backup = %+v, want the replaced file %+v", bk, before)
	}
	want := map[string]any{"dest": w.dest, "backup": w.dest + BackupSuffix, "existed_before": true,
		"sha256_before": digest(oldBin), "sha256_after": digest(newBin), "mode": "0750", "src": "dist/etcd-3.7.3"}
	for k, v := range want {
		if res.Data[k] != v {
			t.Errorf("result.%s = %#v, want %#v", k, res.Data[k], v)
		}
	}
	if l := leftovers(t, w.bin); len(l) > 0 {
		t.Errorf("left behind %v", l)
	}

	// Undo, from the result as the journal gives it back, puts the old file
	// back byte for byte, with its mode and owner, and keeps the backup.
	if err := w.module().Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, w.dest); !equalFile(got, before) {
		t.Errorf("after undo dest = %+v, want %+v", got, before)
	}
	if _, ok := read(t, w.dest+BackupSuffix); !ok {
		t.Error("undo removed the backup")
	}
	// A second undo (a rollback tried again after a crash) finds it done.
	if err := w.module().Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
		t.Errorf("second undo: %v", err)
	}
	if l := leftovers(t, w.bin); len(l) > 0 {
		t.Errorf("left behind %v", l)
	}
}

func TestSwapArguments(t *testing.T) {
	canChown(t)
	tests := []struct {
		name    string
		m       func(w *world) *Module
		before  *file // dest before; nil: absent
		want    file
		wantErr string
	}{
		{"new file gets 0644", func(w *world) *Module { return w.module() }, nil, file{newBin, 0o644, 0, 0}, ""},
		{"mode given", func(w *world) *Module { m := w.module(); m.Mode = 0o700; return m },
			&file{oldBin, 0o755, 0, 0}, file{newBin, 0o700, 0, 0}, ""},
		{"setuid kept through chown", func(w *world) *Module { m := w.module(); m.Mode = 0o4755; m.Owner = "1234"; return m },
			&file{oldBin, 0o755, 0, 0}, file{newBin, 0o755 | fs.ModeSetuid, 1234, 0}, ""},
		{"owner and group given", func(w *world) *Module { m := w.module(); m.Owner, m.Group = "1234", "root"; return m },
			&file{oldBin, 0o755, 55, 66}, file{newBin, 0o755, 1234, 0}, ""},
		{"group given, owner kept", func(w *world) *Module { m := w.module(); m.Group = "4321"; return m },
			&file{oldBin, 0o755, 55, 66}, file{newBin, 0o755, 55, 4321}, ""},
		{"sha256 given in capitals", func(w *world) *Module { m := w.module(); m.SHA256 = strings.ToUpper(digest(newBin)); return m },
			nil, file{newBin, 0o644, 0, 0}, ""},
		{"unknown owner", func(w *world) *Module { m := w.module(); m.Owner = "no-such-user-here"; return m },
			&file{oldBin, 0o755, 0, 0}, file{oldBin, 0o755, 0, 0}, " owner no-such-user-here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if tt.before != nil {
				w.write(t, w.dest, tt.before.data, tt.before.mode)
				if err := os.Chown(w.dest, tt.before.uid, tt.before.gid); err != nil {
					t.Fatal(err)
				}
			}
			_, err := tt.m(w).Run(testCtx(t), w.h)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
			if got := mustRead(t, w.dest); !equalFile(got, tt.want) {
				t.Errorf("dest = %+v, want %+v", got, tt.want)
			}
			if l := leftovers(t, w.bin); len(l) > 0 {
				t.Errorf("left behind %v", l)
			}
		})
	}
}

func TestSwapRefusesAWrongSHA256(t *testing.T) {
	w := newWorld(t)
	w.write(t, w.dest, oldBin, 0o755)
	f := conntest.New(t) // no rules: any command on the host fails the test
	w.h.Conn = f
	m := w.module()
	m.SHA256 = digest([]byte("the reviewed file"))
	for _, do := range []func(context.Context, *modules.Host) (modules.Result, error){m.Run, m.Check} {
		_, err := do(testCtx(t), w.h)
		if err == nil || !strings.Contains(err.Error(), "has sha256 "+digest(newBin)+", not "+m.SHA256+" as the step's sha256 says; "+w.dest+" was not touched") {
			t.Errorf("err = %v", err)
		}
	}
	if len(f.Calls()) > 0 {
		t.Errorf("the host was touched: %v", f.Calls())
	}
	if got := mustRead(t, w.dest); !bytes.Equal(got.data, oldBin) {
		t.Error("dest changed")
	}
}

// TestSwapRerunKeepsTheBackup is the crash case: the swap renamed the new
// file into place, and runbook died before the journal recorded it. The
// re-run must see that nothing is left to do, and keep the original backup.
func TestSwapRerunKeepsTheBackup(t *testing.T) {
	w := newWorld(t)
	w.write(t, w.dest, oldBin, 0o755)
	if _, err := w.module().Run(testCtx(t), w.h); err != nil {
		t.Fatal(err)
	}
	res, err := w.module().Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Data["sha256_before"] != digest(newBin) {
		t.Errorf("re-run = %+v, want no change", res)
	}
	if bk := mustRead(t, w.dest+BackupSuffix); !bytes.Equal(bk.data, oldBin) {
		t.Errorf("re-run overwrote the backup with %q", bk.data)
	}
	// Its undo does nothing; the restore step still puts the original back.
	if err := w.module().Undo(testCtx(t), w.h, res); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, w.dest); !bytes.Equal(got.data, newBin) {
		t.Error("the undo of an unchanged swap changed dest")
	}
	rres, err := (&Module{Restore: w.dest}).Defaults().Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, w.dest); !rres.Changed || !bytes.Equal(got.data, oldBin) {
		t.Errorf("restore: changed %v, dest %q", rres.Changed, got.data)
	}
}

func TestSwapCreatesAndUndoRemoves(t *testing.T) {
	w := newWorld(t)
	res, err := w.module().Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Data["existed_before"] != false || res.Data["sha256_before"] != "" {
		t.Errorf("result = %+v", res)
	}
	if _, ok := read(t, w.dest+BackupSuffix); ok {
		t.Error("a swap that replaced nothing made a backup")
	}
	if err := w.module().Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
		t.Fatal(err)
	}
	if _, ok := read(t, w.dest); ok {
		t.Error("undo left the file the swap created")
	}
	if err := w.module().Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
		t.Errorf("second undo: %v", err)
	}
}

func TestUndoRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, w *world) modules.Result
		wantErr string
		want    []byte // dest after the undo
	}{
		{"dest changed since the swap", func(t *testing.T, w *world) modules.Result {
			w.write(t, w.dest, oldBin, 0o755)
			res := mustRun(t, w, w.module())
			w.write(t, w.dest, []byte("hand edit"), 0o755)
			return res
		}, "has changed since the swap", []byte("hand edit")},
		{"created file changed since", func(t *testing.T, w *world) modules.Result {
			res := mustRun(t, w, w.module())
			w.write(t, w.dest, []byte("hand edit"), 0o755)
			return res
		}, "has changed since the swap created it", []byte("hand edit")},
		{"backup overwritten by a later swap", func(t *testing.T, w *world) modules.Result {
			w.write(t, w.dest, oldBin, 0o755)
			first := mustRun(t, w, w.module())
			w.write(t, filepath.Join(w.h.RunbookDir, "dist", "etcd-3.8.0"), []byte("3.8.0"), 0o644)
			second := mustRun(t, w, &Module{Src: "dist/etcd-3.8.0", Dest: w.dest})
			if err := (&Module{}).Undo(testCtx(t), w.h, second); err != nil {
				t.Fatal(err)
			}
			return first
		}, "not that of the file the swap replaced", newBin},
		{"backup gone", func(t *testing.T, w *world) modules.Result {
			w.write(t, w.dest, oldBin, 0o755)
			res := mustRun(t, w, w.module())
			if err := os.Remove(w.dest + BackupSuffix); err != nil {
				t.Fatal(err)
			}
			return res
		}, "is gone", newBin},
		{"result without dest", func(t *testing.T, w *world) modules.Result {
			return modules.Result{Changed: true, Data: map[string]any{"existed_before": true, "sha256_after": "x"}}
		}, "its recorded result lacks dest, backup, sha256_before", nil},
		{"undo of a restore", func(t *testing.T, w *world) modules.Result {
			w.write(t, w.dest, oldBin, 0o755)
			mustRun(t, w, w.module())
			return mustRun(t, w, (&Module{Restore: w.dest}).Defaults())
		}, "cannot be undone", oldBin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			res := tt.setup(t, w)
			err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, res))
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Fatalf("Undo = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.want != nil {
				if got := mustRead(t, w.dest); !bytes.Equal(got.data, tt.want) {
					t.Errorf("dest = %q, want %q", got.data, tt.want)
				}
			}
		})
	}
}

func mustRun(t *testing.T, w *world, m *Module) modules.Result {
	t.Helper()
	res, err := m.Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRestore(t *testing.T) {
	w := newWorld(t)
	r := (&Module{Restore: w.dest}).Defaults()
	if _, err := r.Run(testCtx(t), w.h); err == nil || !strings.Contains(err.Error(), "no backup file at "+w.dest+BackupSuffix) {
		t.Errorf("restore without a backup = %v", err)
	}

	w.write(t, w.dest, oldBin, 0o751)
	mustRun(t, w, w.module())
	res, err := r.Check(testCtx(t), w.h)
	if err != nil || !res.Changed || !bytes.Equal(mustRead(t, w.dest).data, newBin) {
		t.Fatalf("Check = %+v, %v; dest must be untouched", res, err)
	}
	res = mustRun(t, w, r)
	if got := mustRead(t, w.dest); !res.Changed || !bytes.Equal(got.data, oldBin) || got.mode != 0o751 {
		t.Errorf("restore = %+v; dest %+v", res, got)
	}
	if _, ok := read(t, w.dest+BackupSuffix); !ok {
		t.Error("restore removed the backup")
	}
	if res = mustRun(t, w, r); res.Changed {
		t.Errorf("a second restore = %+v, want no change", res)
	}

	// A backup named in the step.
	other := filepath.Join(t.TempDir(), "etcd.prev")
	w.write(t, other, []byte("kept elsewhere"), 0o755)
	res = mustRun(t, w, (&Module{Restore: w.dest, Backup: other}).Defaults())
	if got := mustRead(t, w.dest); !res.Changed || string(got.data) != "kept elsewhere" {
		t.Errorf("restore from %s: dest %q", other, got.data)
	}
}

func TestCheck(t *testing.T) {
	w := newWorld(t)
	w.write(t, w.dest, oldBin, 0o755)
	tests := []struct {
		name        string
		m           *Module
		wantChanged bool
		wantMsg     string
	}{
		{"different content", w.module(), true, "replaces " + w.dest},
		{"same content", &Module{Src: filepath.Join(w.h.RunbookDir, "same"), Dest: w.dest}, false, "already has the content of src"},
		{"same content, other mode", &Module{Src: filepath.Join(w.h.RunbookDir, "same"), Dest: w.dest, Mode: arg.FileMode(0o700)}, true, "not the mode or owner asked for"},
		{"new file", &Module{Src: "dist/etcd-3.7.3", Dest: w.dest + "-new"}, true, "creates " + w.dest + "-new"},
	}
	w.write(t, filepath.Join(w.h.RunbookDir, "same"), oldBin, 0o600)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.m.Defaults().Check(testCtx(t), w.h)
			if err != nil {
				t.Fatal(err)
			}
			if res.Changed != tt.wantChanged || !strings.Contains(res.Data["msg"].(string), tt.wantMsg) {
				t.Errorf("Check = %+v, want changed %v and msg %q", res, tt.wantChanged, tt.wantMsg)
			}
			if got := mustRead(t, w.dest); !bytes.Equal(got.data, oldBin) || got.mode != 0o755 {
				t.Error("Check changed dest")
			}
			if _, ok := read(t, w.dest+BackupSuffix); ok {
				t.Error("Check made a backup")
			}
			if _, ok := read(t, w.dest+"-new"); ok {
				t.Error("Check created a file")
			}
		})
	}
}

func TestSwapErrors(t *testing.T) {
	w := newWorld(t)
	if err := os.Mkdir(w.dest, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		m       *Module
		wantErr string
	}{
		{"dest is a folder", w.module(), "dest " + w.dest + " is not a regular file"},
		{"src missing", &Module{Src: "dist/nope", Dest: w.dest + "2"}, "src: open " + filepath.Join(w.h.RunbookDir, "dist/nope")},
		{"src is a folder", &Module{Src: "dist", Dest: w.dest + "2"}, "is not a regular file"},
		{"dest folder missing", &Module{Src: "dist/etcd-3.7.3", Dest: filepath.Join(w.bin, "no", "etcd")}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.Defaults().Run(testCtx(t), w.h)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// fakeHost answers the commands swap runs from the files of a conntest.Fake,
// as a host with coreutils would.
func fakeHost(t *testing.T, f *conntest.Fake) {
	t.Helper()
	file := func(p string) (conntest.File, bool) { return f.File(p) }
	f.On(conntest.Prefix("test", "-e")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		if _, ok := file(c.Argv[2]); !ok {
			return conn.Output{ExitCode: 1}, &conn.ExitError{Cmd: c.String(), ExitCode: 1}
		}
		return conn.Output{}, nil
	})
	f.On(conntest.Prefix("stat")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		fl, _ := file(c.Argv[len(c.Argv)-1])
		return conn.Output{Stdout: []byte(fmt.Sprintf("%x 0 0 root root\n", 0o100000|uint32(fl.Mode.Perm())))}, nil
	})
	f.On(conntest.Prefix("sha256sum")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		fl, _ := file(c.Argv[len(c.Argv)-1])
		return conn.Output{Stdout: []byte(digest(fl.Data) + "  " + c.Argv[len(c.Argv)-1] + "\n")}, nil
	})
	f.On(conntest.Exact("mktemp")).Stdout("/tmp/tmp.Xy12\n")
	var made atomic.Int64
	f.On(conntest.Prefix("mktemp", "-p")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		p := path.Join(c.Argv[2], strings.TrimRight(c.Argv[3], "X")+fmt.Sprintf("r%04d", made.Add(1)))
		f.SetFile(p, nil, 0o600)
		return conn.Output{Stdout: []byte(p + "\n")}, nil
	})
	f.On(conntest.Prefix("find")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		var out strings.Builder
		for _, p := range f.Paths() {
			if ok, _ := path.Match(c.Argv[len(c.Argv)-1], path.Base(p)); ok && path.Dir(p) == c.Argv[1] {
				out.WriteString(p + "\n")
			}
		}
		return conn.Output{Stdout: []byte(out.String())}, nil
	})
	f.On(conntest.Prefix("mv", "-f", "--")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		fl, _ := file(c.Argv[3])
		f.SetFile(c.Argv[4], fl.Data, fl.Mode)
		return conn.Output{}, nil
	})
	f.On(conntest.Prefix("cp", "-p", "--")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		fl, _ := file(c.Argv[3])
		f.SetFile(c.Argv[4], fl.Data, fl.Mode)
		return conn.Output{}, nil
	})
	// The fake has no inodes: it cannot link, as a filesystem without hard
	// links cannot, and the backup is copied.
	f.On(conntest.Prefix("ln", "-T", "--")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		return conn.Output{ExitCode: 1}, &conn.ExitError{Cmd: c.String(), ExitCode: 1}
	})
	f.On(conntest.Prefix("sync"))
	// The check, rename and sync of a swap after a prepare, in one
	// command. The fake's files are all regular files.
	f.On(conntest.Func("hostfile.RenameCmd", func(c conn.Cmd) bool {
		_, _, ok := hostfile.IsRenameCmd(c.Argv)
		return ok
	})).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		stage, dest, _ := hostfile.IsRenameCmd(c.Argv)
		fl, ok := file(stage)
		if !ok {
			return conn.Output{ExitCode: 3}, &conn.ExitError{Cmd: c.String(), ExitCode: 3}
		}
		f.SetFile(dest, fl.Data, fl.Mode)
		f.RemoveFile(stage)
		return conn.Output{}, nil
	})
	f.On(conntest.Prefix("rm", "-f", "--")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		f.RemoveFile(c.Argv[3])
		return conn.Output{}, nil
	})
}

// TestBecome checks the upload under become: the file goes to a temporary
// file of the login user, and every later command runs as the step's user.
func TestBecome(t *testing.T) {
	w := newWorld(t)
	f := conntest.New(t)
	fakeHost(t, f)
	f.SetFile("/usr/local/bin/etcd", oldBin, 0o755)
	w.h.Conn, w.h.Become, w.h.BecomeUser = f, true, "root"
	res, err := (&Module{Src: "dist/etcd-3.7.3", Dest: "/usr/local/bin/etcd"}).Defaults().Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.File("/usr/local/bin/etcd"); !res.Changed || !bytes.Equal(got.Data, newBin) {
		t.Fatalf("dest = %q", got.Data)
	}
	if bk, _ := f.File("/usr/local/bin/etcd.runbook-prev"); !bytes.Equal(bk.Data, oldBin) {
		t.Errorf("backup = %q", bk.Data)
	}
	var puts []string
	for _, c := range f.Calls() {
		switch {
		case c.Op == "put":
			puts = append(puts, c.Path)
			if c.Mode != 0o755 {
				t.Errorf("put with mode %v, want the replaced file's 0755", c.Mode)
			}
		case c.Op == "run" && c.Cmd.Argv[0] == "mktemp" && len(c.Cmd.Argv) == 1:
			if c.Cmd.Become {
				t.Error("mktemp ran with become: the login user could not write the file")
			}
		case c.Op == "run" && (!c.Cmd.Become || c.Cmd.BecomeUser != "root"):
			t.Errorf("%s ran without the step's become", c.Cmd)
		}
	}
	if len(puts) != 1 || puts[0] != "/tmp/tmp.Xy12" {
		t.Errorf("puts = %q, want one to the mktemp file", puts)
	}
	wantOrder := []string{
		"test -e /usr/local/bin/etcd",
		"mktemp -p /usr/local/bin .etcd.runbook-new.XXXXXXXXXX",
		"mktemp",
		"mv -f -- /tmp/tmp.Xy12 /usr/local/bin/.etcd.runbook-new.r0001",
		"mktemp -p /usr/local/bin .etcd.runbook-prev.runbook-tmp.XXXXXXXXXX",
		"cp -p -- /usr/local/bin/etcd /usr/local/bin/.etcd.runbook-prev.runbook-tmp.r0002",
		"mv -f -- /usr/local/bin/.etcd.runbook-new.r0001 /usr/local/bin/etcd",
	}
	cmds := strings.Join(f.Commands(), "\n")
	last := -1
	for _, c := range wantOrder {
		i := strings.Index(cmds, c)
		if i < 0 || i < last {
			t.Errorf("%q missing or out of order in:\n%s", c, cmds)
		}
		last = i
	}
}

// TestFaults: a connection lost at any point of a swap leaves dest either
// untouched or wholly replaced, and the error says so.
func TestFaults(t *testing.T) {
	full := func() int {
		f := conntest.New(t)
		fakeHost(t, f)
		f.SetFile("/opt/etcd", oldBin, 0o755)
		h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop(), RunbookDir: newWorld(t).h.RunbookDir}
		if _, err := (&Module{Src: "dist/etcd-3.7.3", Dest: "/opt/etcd"}).Defaults().Run(testCtx(t), h); err != nil {
			t.Fatal(err)
		}
		return len(f.Commands())
	}()
	for n := range full {
		f := conntest.New(nil) // the tidying after the fault is unanswered on purpose
		fakeHost(t, f)
		f.SetFile("/opt/etcd", oldBin, 0o755)
		f.FailAfter(n, nil)
		h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop(), RunbookDir: newWorld(t).h.RunbookDir}
		_, err := (&Module{Src: "dist/etcd-3.7.3", Dest: "/opt/etcd"}).Defaults().Run(testCtx(t), h)
		got, _ := f.File("/opt/etcd")
		switch {
		case n == full-1:
			// Only the last sync failed: the file is in place, and a sync is
			// best effort (old hosts have none), so the swap stands.
			if err != nil || !bytes.Equal(got.Data, newBin) {
				t.Errorf("fault at the last sync: err = %v, dest = %q", err, got.Data)
			}
		case !conn.IsTransport(err):
			t.Errorf("fault after %d commands: err = %v, want the transport error", n, err)
		case !bytes.Equal(got.Data, oldBin) && !bytes.Equal(got.Data, newBin):
			t.Errorf("fault after %d commands: dest = %q", n, got.Data)
		}
	}
}
