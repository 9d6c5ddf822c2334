package swap

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runbookhq/runbook/modules/internal/modtest"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

// spy records what a swap asks of a real connection: the uploads and the
// commands, so a test can tell a rename from an upload and a copy.
type spy struct {
	conn.Conn
	mu   sync.Mutex
	puts []string
	cmds []string
}

func (s *spy) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	s.mu.Lock()
	s.cmds = append(s.cmds, strings.Join(c.Argv, " "))
	s.mu.Unlock()
	return s.Conn.Run(ctx, c)
}

func (s *spy) Put(ctx context.Context, src io.Reader, dest string, mode fs.FileMode) error {
	s.mu.Lock()
	s.puts = append(s.puts, dest)
	s.mu.Unlock()
	return s.Conn.Put(ctx, src, dest, mode)
}

// reset forgets what was recorded and returns it.
func (s *spy) reset() (puts, cmds []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	puts, cmds = s.puts, s.cmds
	s.puts, s.cmds = nil, nil
	return puts, cmds
}

// transport is a real connection to this machine.
type transport struct {
	name string
	dial func(t *testing.T) conn.Conn
}

// transports are the local connection and SSH to a real OpenSSH sshd
// running as the current user, so the files it writes are this machine's.
var transports = []transport{
	{"local", func(*testing.T) conn.Conn { return local.New() }},
	{"ssh", dialSSHD},
}

func dialSSHD(t *testing.T) conn.Conn { return modtest.DialSSHD(t, "etcd-1") }

// stage is the file staged for dest, "" when there is none. There must not
// be more than one.
func (w *world) stage(t *testing.T) string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(w.bin, ".etcd.runbook-new.*"))
	var list []string
	for _, p := range all {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			list = append(list, p)
		}
	}
	if err != nil || len(list) > 1 {
		t.Fatalf("staged files %q (%v), want at most one", list, err)
	}
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

// stageAt is a name a prepare could have staged a file at.
func (w *world) stageAt(suffix string) string {
	return filepath.Join(w.bin, ".etcd.runbook-new."+suffix)
}

func (w *world) prepare() *Module {
	m := w.module()
	m.Prepare = true
	return m
}

// wantData fails t unless data has each of want's keys with its value.
func wantData(t *testing.T, what string, data map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if data[k] != v {
			t.Errorf("%s: result.%s = %#v, want %#v", what, k, data[k], v)
		}
	}
}

func hasCommand(cmds []string, prefix string) bool {
	for _, c := range cmds {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// TestPrepareThenSwap is the stop-swap-start window made short: prepare
// stages the file and keeps the backup while dest is in use, and the swap
// after it only renames.
func TestPrepareThenSwap(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			w := newWorld(t)
			sp := &spy{Conn: tr.dial(t)}
			w.h.Conn = sp
			w.write(t, w.dest, oldBin, 0o750)
			before := mustRead(t, w.dest)
			installed := file{newBin, 0o750, before.uid, before.gid}

			prep := mustRun(t, w, w.prepare())
			stage := w.stage(t)
			if !prep.Changed {
				t.Error("a prepare that staged a file reported no change")
			}
			wantData(t, "prepare", prep.Data, map[string]any{
				"prepare": true, "staged_path": stage, "sha256": digest(newBin), "backup": w.dest + BackupSuffix,
				"dest": w.dest, "existed_before": true, "sha256_before": digest(oldBin), "mode": "0750",
				"staged": "uploaded", "backup_kept": "linked",
			})
			if got := mustRead(t, w.dest); !equalFile(got, before) {
				t.Errorf("prepare touched dest: %+v, want %+v", got, before)
			}
			if got := mustRead(t, stage); !equalFile(got, installed) {
				t.Errorf("staged file = %+v, want %+v", got, installed)
			}
			if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
				t.Errorf("backup = %+v, want %+v", bk, before)
			}

			// A second prepare (a re-run) finds everything done.
			sp.reset()
			again := mustRun(t, w, w.prepare())
			wantData(t, "second prepare", again.Data, map[string]any{"staged": "reused", "backup_kept": "reused"})
			if again.Changed {
				t.Errorf("second prepare changed: %v", again.Data["msg"])
			}
			if puts, cmds := sp.reset(); len(puts) > 0 || hasCommand(cmds, "cp ") || hasCommand(cmds, "chmod ") {
				t.Errorf("second prepare wrote: puts %q, commands %q", puts, cmds)
			}

			// The swap renames, and neither uploads nor copies.
			res := mustRun(t, w, w.module())
			puts, cmds := sp.reset()
			if len(puts) > 0 || hasCommand(cmds, "cp ") || hasCommand(cmds, "mktemp") {
				t.Errorf("the swap after a prepare wrote: puts %q, commands %q", puts, cmds)
			}
			if !hasCommand(cmds, strings.Join(hostfile.RenameCmd(stage, w.dest), " ")) {
				t.Errorf("the swap did not rename the staged file: %q", cmds)
			}
			wantData(t, "swap", res.Data, map[string]any{
				"staged": "reused", "backup_kept": "reused", "existed_before": true,
				"sha256_before": digest(oldBin), "sha256_after": digest(newBin), "backup": w.dest + BackupSuffix,
			})
			if msg, _ := res.Data["msg"].(string); !res.Changed || !strings.Contains(msg, "staged at "+stage+" by a prepare is used") {
				t.Errorf("swap = %+v", res)
			}
			if got := mustRead(t, w.dest); !equalFile(got, installed) {
				t.Errorf("dest = %+v, want %+v", got, installed)
			}
			if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
				t.Errorf("backup after the swap = %+v, want %+v", bk, before)
			}
			if l := leftovers(t, w.bin); len(l) > 0 {
				t.Errorf("left behind %v", l)
			}

			// Rollback, newest first: the swap's undo puts the old file back,
			// and the prepare's finds its staged file renamed away.
			if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
				t.Fatal(err)
			}
			if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, prep)); err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, w.dest); !equalFile(got, before) {
				t.Errorf("after the rollback dest = %+v, want %+v", got, before)
			}
			if _, ok := read(t, w.dest+BackupSuffix); !ok {
				t.Error("the rollback removed the backup")
			}
		})
	}
}

// TestPrepareNewFile: with no dest there is nothing to keep, and the swap
// after the prepare creates dest from the staged file.
func TestPrepareNewFile(t *testing.T) {
	w := newWorld(t)
	sp := &spy{Conn: w.h.Conn}
	w.h.Conn = sp
	prep := mustRun(t, w, w.prepare())
	wantData(t, "prepare", prep.Data, map[string]any{"staged": "uploaded", "backup_kept": "", "existed_before": false, "mode": "0644"})
	if _, ok := read(t, w.dest); ok || !prep.Changed {
		t.Errorf("prepare = %+v; it must not create dest", prep)
	}
	if _, ok := read(t, w.dest+BackupSuffix); ok {
		t.Error("a prepare with nothing to keep made a backup")
	}
	sp.reset()
	res := mustRun(t, w, w.module())
	if puts, _ := sp.reset(); len(puts) > 0 || res.Data["staged"] != "reused" {
		t.Errorf("swap = %+v, puts %q", res, puts)
	}
	if got := mustRead(t, w.dest); !bytes.Equal(got.data, newBin) || got.mode != 0o644 {
		t.Errorf("dest = %+v", got)
	}
	if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
		t.Fatal(err)
	}
	if _, ok := read(t, w.dest); ok {
		t.Error("undo left the file the swap created")
	}
}

// TestPrepareWhenDestIsInstalled: when dest already has src, the swap would
// change nothing, so there is nothing to stage and the backup (the file
// replaced before, after a crash) is left alone.
func TestPrepareWhenDestIsInstalled(t *testing.T) {
	w := newWorld(t)
	w.write(t, w.dest, newBin, 0o755)
	w.write(t, w.dest+BackupSuffix, oldBin, 0o755)
	for _, do := range []func(context.Context, *modules.Host) (modules.Result, error){w.prepare().Check, w.prepare().Run} {
		res, err := do(testCtx(t), w.h)
		if err != nil {
			t.Fatal(err)
		}
		if msg, _ := res.Data["msg"].(string); res.Changed || !strings.Contains(msg, "nothing to stage") {
			t.Errorf("prepare = %+v", res)
		}
	}
	if _, ok := read(t, w.stage(t)); ok {
		t.Error("staged a file that the swap would not use")
	}
	if bk := mustRead(t, w.dest+BackupSuffix); !bytes.Equal(bk.data, oldBin) {
		t.Errorf("backup overwritten with %q", bk.data)
	}
}

// TestStaleFilesAreReplaced: a staged file or a backup that is not exactly
// what the swap would make is never trusted.
func TestStaleFilesAreReplaced(t *testing.T) {
	type setup func(t *testing.T, w *world)
	stageAs := func(data []byte, mode fs.FileMode) setup {
		return func(t *testing.T, w *world) { w.write(t, w.stageAt("stale"), data, mode) }
	}
	backupAs := func(data []byte, mode fs.FileMode) setup {
		return func(t *testing.T, w *world) { w.write(t, w.dest+BackupSuffix, data, mode) }
	}
	tests := []struct {
		name       string
		setup      setup
		wantStaged string
		wantKept   string
	}{
		{"staged: another version", stageAs([]byte("#!/bin/sh\necho etcd 3.7.2\n"), 0o750), "uploaded", "linked"},
		{"staged: part of src", stageAs(newBin[:10], 0o750), "uploaded", "linked"},
		{"staged: src with another mode", stageAs(newBin, 0o700), "uploaded", "linked"},
		{"staged: a link to src", func(t *testing.T, w *world) {
			target := filepath.Join(t.TempDir(), "etcd-3.7.3")
			w.write(t, target, newBin, 0o750)
			if err := os.Symlink(target, w.stageAt("link")); err != nil {
				t.Fatal(err)
			}
		}, "uploaded", "linked"},
		{"backup: another file", backupAs([]byte("3.5"), 0o750), "uploaded", "linked"},
		{"backup: dest with another mode", backupAs(oldBin, 0o755), "uploaded", "linked"},
		{"backup: dest, as cp -p makes it", backupAs(oldBin, 0o750), "uploaded", "reused"},
	}
	for _, tt := range tests {
		for _, prepare := range []bool{false, true} {
			name := tt.name + ", swap"
			if prepare {
				name = tt.name + ", prepare"
			}
			t.Run(name, func(t *testing.T) {
				w := newWorld(t)
				w.write(t, w.dest, oldBin, 0o750)
				before := mustRead(t, w.dest)
				tt.setup(t, w)
				m := w.module()
				m.Prepare = prepare
				res := mustRun(t, w, m)
				wantData(t, name, res.Data, map[string]any{"staged": tt.wantStaged, "backup_kept": tt.wantKept})
				if !res.Changed {
					t.Error("reported no change")
				}
				newFile := w.dest // where the new file must be: dest, or staged
				if prepare {
					newFile = w.stage(t)
					if got := mustRead(t, w.dest); !equalFile(got, before) {
						t.Errorf("prepare touched dest: %+v", got)
					}
				}
				if got, want := mustRead(t, newFile), (file{newBin, 0o750, before.uid, before.gid}); !equalFile(got, want) {
					t.Errorf("new file = %+v, want %+v", got, want)
				}
				if fi, err := os.Lstat(newFile); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("new file: %v, %v; want a regular file", fi, err)
				}
				if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
					t.Errorf("backup = %+v, want %+v", bk, before)
				}
			})
		}
	}
}

func TestUndoPrepare(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, w *world) modules.Result
		wantStaged []byte // the staging path after the undo; nil: absent
	}{
		{"removes the staged file", func(t *testing.T, w *world) modules.Result {
			return mustRun(t, w, w.prepare())
		}, nil},
		{"undone already", func(t *testing.T, w *world) modules.Result {
			res := mustRun(t, w, w.prepare())
			if err := os.Remove(w.stage(t)); err != nil {
				t.Fatal(err)
			}
			return res
		}, nil},
		{"leaves a file another prepare staged", func(t *testing.T, w *world) modules.Result {
			res := mustRun(t, w, w.prepare())
			w.write(t, w.stage(t), []byte("3.8.0"), 0o755)
			return res
		}, []byte("3.8.0")},
		{"an unchanged prepare has nothing to undo", func(t *testing.T, w *world) modules.Result {
			res := mustRun(t, w, w.prepare())
			stage := w.stage(t)
			if err := os.Remove(stage); err != nil {
				t.Fatal(err)
			}
			w.write(t, stage, newBin, 0o755)
			res.Changed = false
			return res
		}, newBin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.write(t, w.dest, oldBin, 0o755)
			res := tt.setup(t, w)
			for i := range 2 { // the second is a rollback tried again
				if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
					t.Fatalf("undo %d: %v", i+1, err)
				}
			}
			got, ok := read(t, w.stage(t))
			if ok != (tt.wantStaged != nil) || !bytes.Equal(got.data, tt.wantStaged) {
				t.Errorf("staging path holds %q (exists %v), want %q", got.data, ok, tt.wantStaged)
			}
			if got := mustRead(t, w.dest); !bytes.Equal(got.data, oldBin) {
				t.Errorf("undo changed dest to %q", got.data)
			}
			if bk := mustRead(t, w.dest+BackupSuffix); !bytes.Equal(bk.data, oldBin) {
				t.Errorf("backup = %q", bk.data)
			}
		})
	}

	// A prepare's result without what undo needs is refused, and the
	// module's own prepare argument makes it a prepare's result even so:
	// read as a swap's, it would put the backup back over dest.
	err := (&Module{Prepare: true}).Undo(testCtx(t), newWorld(t).h, modules.Result{Changed: true, Data: map[string]any{
		"dest": "/usr/local/bin/etcd", "existed_before": true, "backup": "/b", "sha256_before": "x", "sha256_after": "y"}})
	if err == nil || !strings.Contains(err.Error(), "cannot undo the prepare: its recorded result lacks dest or sha256") {
		t.Errorf("Undo = %v", err)
	}
}

func TestCheckPrepare(t *testing.T) {
	tests := []struct {
		name        string
		dest        []byte // nil: absent
		prepared    bool   // a prepare ran first
		wantChanged bool
		wantMsg     []string
	}{
		{"dest in place", oldBin, false, true, []string{"stages src at ", "; keeps ", "is not touched"}},
		{"no dest", nil, false, true, []string{"stages src at ", "does not exist: nothing to keep"}},
		{"prepared already", oldBin, true, false, []string{"is staged at ", "already", "holds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if tt.dest != nil {
				w.write(t, w.dest, tt.dest, 0o755)
			}
			if tt.prepared {
				mustRun(t, w, w.prepare())
			}
			sp := &spy{Conn: w.h.Conn}
			w.h.Conn = sp
			res, err := w.prepare().Check(testCtx(t), w.h)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := res.Data["msg"].(string)
			if res.Changed != tt.wantChanged {
				t.Errorf("Check changed = %v, want %v (%s)", res.Changed, tt.wantChanged, msg)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("msg %q does not say %q", msg, want)
				}
			}
			puts, cmds := sp.reset()
			for _, c := range cmds {
				if verb, _, _ := strings.Cut(c, " "); verb != "test" && verb != "stat" && verb != "sha256sum" && verb != "find" {
					t.Errorf("Check ran %q, which is not a read", c)
				}
			}
			if len(puts) > 0 {
				t.Errorf("Check uploaded %q", puts)
			}
			if _, ok := read(t, w.stage(t)); ok != tt.prepared {
				t.Errorf("staging file exists: %v", ok)
			}
			if _, ok := read(t, w.dest+BackupSuffix); ok != tt.prepared {
				t.Errorf("backup exists: %v", ok)
			}
		})
	}
}

// TestFaultsPrepared: a connection lost at any point of a prepare leaves
// dest untouched; at any point of the swap after it, dest is the old file
// or the new one.
func TestFaultsPrepared(t *testing.T) {
	const dest, stage, backup = "/opt/etcd", "/opt/.etcd.runbook-new.Kq3v8Zp2Ld", "/opt/etcd.runbook-prev"
	runbookDir := newWorld(t).h.RunbookDir
	tests := []struct {
		name     string
		prepared bool // the host holds what a prepare leaves
		prepare  bool // the step is a prepare
	}{
		{"prepare", false, true},
		{"prepare again", true, true},
		{"swap after a prepare", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			try := func(f *conntest.Fake) error {
				fakeHost(t, f)
				f.SetFile(dest, oldBin, 0o755)
				if tt.prepared {
					f.SetFile(stage, newBin, 0o755)
					f.SetFile(backup, oldBin, 0o755)
				}
				h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop(), RunbookDir: runbookDir}
				_, err := (&Module{Src: "dist/etcd-3.7.3", Dest: dest, Prepare: tt.prepare}).Run(testCtx(t), h)
				return err
			}
			f := conntest.New(t)
			if err := try(f); err != nil {
				t.Fatal(err)
			}
			full := len(f.Commands())
			for n := range full {
				f := conntest.New(nil) // the tidying after the fault is unanswered on purpose
				f.FailAfter(n, nil)
				err := try(f)
				got, _ := f.File(dest)
				switch {
				case tt.prepare && !bytes.Equal(got.Data, oldBin):
					t.Errorf("fault after %d commands: the prepare changed dest to %q", n, got.Data)
				case !bytes.Equal(got.Data, oldBin) && !bytes.Equal(got.Data, newBin):
					t.Errorf("fault after %d commands: dest = %q", n, got.Data)
				case err == nil && n < full-1:
					t.Errorf("fault after %d of %d commands: no error", n, full)
				case err != nil && !conn.IsTransport(err):
					t.Errorf("fault after %d commands: err = %v, want the transport error", n, err)
				}
			}
		})
	}
}

// TestBecomePrepared: under become, the prepare uploads as the login user
// and does the rest as the step's user, and the swap after it only renames.
func TestBecomePrepared(t *testing.T) {
	w := newWorld(t)
	f := conntest.New(t)
	fakeHost(t, f)
	f.SetFile("/usr/local/bin/etcd", oldBin, 0o755)
	w.h.Conn, w.h.Become, w.h.BecomeUser = f, true, "root"
	m := &Module{Src: "dist/etcd-3.7.3", Dest: "/usr/local/bin/etcd"}
	prep := *m
	prep.Prepare = true
	if _, err := prep.Run(testCtx(t), w.h); err != nil {
		t.Fatal(err)
	}
	// The upload and the backup go on at once: which of them made its
	// file first, and got the fake's first name, varies.
	var staged []string
	for _, p := range f.Paths() {
		if strings.HasPrefix(p, "/usr/local/bin/.etcd.runbook-new.") {
			staged = append(staged, p)
		}
	}
	if len(staged) != 1 {
		t.Fatalf("staged files %q, want one", staged)
	}
	if st, _ := f.File(staged[0]); !bytes.Equal(st.Data, newBin) {
		t.Fatalf("staged = %q", st.Data)
	}
	if got, _ := f.File("/usr/local/bin/etcd"); !bytes.Equal(got.Data, oldBin) {
		t.Fatalf("the prepare changed dest to %q", got.Data)
	}
	preparing := len(f.Calls())
	res, err := m.Run(testCtx(t), w.h)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.File("/usr/local/bin/etcd"); !res.Changed || !bytes.Equal(got.Data, newBin) {
		t.Fatalf("dest = %q", got.Data)
	}
	for i, c := range f.Calls() {
		switch {
		case i >= preparing && (c.Op == "put" || c.Op == "run" && (c.Cmd.Argv[0] == "mktemp" || c.Cmd.Argv[0] == "cp")):
			t.Errorf("the swap after the prepare wrote: %s %s %s", c.Op, c.Path, c.Cmd)
		case c.Op == "run" && c.Cmd.Argv[0] != "mktemp" && (!c.Cmd.Become || c.Cmd.BecomeUser != "root"):
			t.Errorf("%s ran without the step's become", c.Cmd)
		}
	}
}

// countCommands counts the commands that start with prefix.
func countCommands(cmds []string, prefix string) int {
	n := 0
	for _, c := range cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// The swap after a prepare runs inside the service's outage: it finds the
// staged file, the backup and dest as the prepare left them (same identity)
// and hashes none of them again; a file whose identity changed is hashed
// again, and a staged file that no longer holds src is replaced, never
// renamed into place.
func TestSwapAfterPrepareByIdentity(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			tests := []struct {
				name   string
				tamper func(t *testing.T, w *world, stage string)
				hashes int    // sha256sum runs by the swap
				staged string // what the swap says of the staged file
			}{
				{"untouched", func(*testing.T, *world, string) {}, 0, "reused"},
				{"same content, touched", func(t *testing.T, w *world, stage string) {
					fi, err := os.Stat(stage)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.Chtimes(stage, fi.ModTime(), fi.ModTime()); err != nil {
						t.Fatal(err)
					}
				}, 1, "reused"},
				// Same size, its modification time set back: only the
				// change time tells, and it does.
				{"other content, same size and mtime", func(t *testing.T, w *world, stage string) {
					fi, err := os.Stat(stage)
					if err != nil {
						t.Fatal(err)
					}
					bad := bytes.Repeat([]byte("x"), len(newBin))
					if err := os.WriteFile(stage, bad, fi.Mode()); err != nil {
						t.Fatal(err)
					}
					if err := os.Chtimes(stage, fi.ModTime(), fi.ModTime()); err != nil {
						t.Fatal(err)
					}
				}, 2, "uploaded"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					w := newWorld(t)
					sp := &spy{Conn: tr.dial(t)}
					w.h.Conn = sp
					w.write(t, w.dest, oldBin, 0o750)
					before := mustRead(t, w.dest)
					mustRun(t, w, w.prepare())
					stage := w.stage(t)
					tt.tamper(t, w, stage)
					sp.reset()

					res := mustRun(t, w, w.module())
					_, cmds := sp.reset()
					if n := countCommands(cmds, "sha256sum "); n != tt.hashes {
						t.Errorf("the swap hashed %d files, want %d: %q", n, tt.hashes, cmds)
					}
					// Untouched, it is two commands: one stat of the three
					// files, then one that checks the staged file again,
					// renames it and syncs.
					rename := strings.Join(hostfile.RenameCmd(stage, w.dest), " ")
					if tt.hashes == 0 && (len(cmds) != 2 || !strings.HasPrefix(cmds[0], "stat ") || cmds[1] != rename) {
						t.Errorf("the swap after an untouched prepare ran %q, want stat, then the rename at once", cmds)
					}
					wantData(t, "swap", res.Data, map[string]any{"staged": tt.staged, "backup_kept": "reused",
						"sha256_before": digest(oldBin), "sha256_after": digest(newBin)})
					if got := mustRead(t, w.dest); !equalFile(got, file{newBin, 0o750, before.uid, before.gid}) {
						t.Errorf("dest = %+v, want src", got)
					}
					if l := leftovers(t, w.bin); len(l) > 0 {
						t.Errorf("left behind %v", l)
					}
				})
			}
		})
	}
}
