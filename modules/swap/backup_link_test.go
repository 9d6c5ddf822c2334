package swap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// inode is the device, inode number and link count of path, not following
// a link.
type inode struct {
	dev, ino uint64
	nlink    uint64
}

func inodeOf(t *testing.T, path string) inode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return inode{uint64(st.Dev), st.Ino, uint64(st.Nlink)}
}

func (i inode) same(o inode) bool { return i.dev == o.dev && i.ino == o.ino }

// otherFS is a folder on another filesystem than dir, or "" when there is
// none to use.
func otherFS(t *testing.T, dir string) string {
	t.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "runbook-swap-")
	if err != nil {
		return ""
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	if inodeOf(t, shm).dev == inodeOf(t, dir).dev {
		return ""
	}
	return shm
}

// TestBackupLink: the backup is a second link to dest's file where that
// keeps every promise of a copy, and a copy otherwise; either way it holds
// the replaced file's content, mode and owner after the swap, and the
// undo, the restore and the prepare's undo work from it.
func TestBackupLink(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, w *world, m *Module) // after dest holds oldBin
		kept  string
		// real is the file that holds the replaced content, when dest is a
		// link to it; "" for dest itself.
		real func(w *world) string
	}{
		{"dest has one link", func(*testing.T, *world, *Module) {}, "linked", nil},
		{"dest has another link", func(t *testing.T, w *world, _ *Module) {
			if err := os.Link(w.dest, filepath.Join(w.bin, "etcd-other")); err != nil {
				t.Fatal(err)
			}
		}, "copied", nil},
		{"dest is a symbolic link", func(t *testing.T, w *world, _ *Module) {
			real := filepath.Join(w.bin, "etcd-real")
			if err := os.Rename(w.dest, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, w.dest); err != nil {
				t.Fatal(err)
			}
		}, "copied", func(w *world) string { return filepath.Join(w.bin, "etcd-real") }},
		{"backup on another filesystem", func(t *testing.T, w *world, m *Module) {
			dir := otherFS(t, w.bin)
			if dir == "" {
				t.Skip("no second filesystem to keep the backup on")
			}
			m.Backup = filepath.Join(dir, "etcd.prev")
		}, "copied", nil},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.dial(t)
			for _, tt := range tests {
				for _, prepare := range []bool{true, false} {
					name := tt.name + ", swap"
					if prepare {
						name = tt.name + ", prepare"
					}
					t.Run(name, func(t *testing.T) {
						w := newWorld(t)
						w.h.Conn = c
						w.write(t, w.dest, oldBin, 0o750)
						before := mustRead(t, w.dest)
						m := w.module()
						tt.setup(t, w, m)
						real := w.dest
						if tt.real != nil {
							real = tt.real(w)
						}
						realBefore := inodeOf(t, real)
						bk := m.Defaults().Backup

						var prep modules.Result
						if prepare {
							p := *m
							p.Prepare = true
							prep = mustRun(t, w, &p)
							wantData(t, "prepare", prep.Data, map[string]any{"backup_kept": tt.kept, "staged": "uploaded"})
							if !prep.Changed {
								t.Error("a prepare that kept a backup reported no change")
							}
							if linked := inodeOf(t, bk).same(realBefore); linked != (tt.kept == "linked") {
								t.Errorf("after the prepare, the backup is dest's file: %v, want %v", linked, tt.kept == "linked")
							}
						}
						res := mustRun(t, w, m)
						want := tt.kept
						if prepare {
							want = "reused"
						}
						wantData(t, "swap", res.Data, map[string]any{"backup_kept": want, "sha256_before": digest(oldBin)})

						// The backup holds the replaced file; the file it was
						// is untouched, whatever else links to it.
						if got := mustRead(t, bk); !equalFile(got, before) {
							t.Errorf("backup = %+v, want %+v", got, before)
						}
						if fi, err := os.Lstat(bk); err != nil || !fi.Mode().IsRegular() {
							t.Errorf("backup: %v, %v; want a regular file", fi, err)
						}
						switch b := inodeOf(t, bk); {
						case tt.kept == "linked" && (!b.same(realBefore) || b.nlink != 1):
							t.Errorf("backup %+v, want the replaced file %+v, its only link now", b, realBefore)
						case tt.kept != "linked" && b.same(realBefore):
							t.Errorf("backup %+v is the file dest pointed to or shared, not a copy", b)
						}
						if real != w.dest || tt.name == "dest has another link" {
							other := real
							if real == w.dest {
								other = filepath.Join(w.bin, "etcd-other")
							}
							if got := mustRead(t, other); !equalFile(got, before) {
								t.Errorf("%s = %+v, want it untouched", other, got)
							}
						}
						if got := mustRead(t, w.dest); !bytes.Equal(got.data, newBin) {
							t.Errorf("dest = %q after the swap", got.data)
						}
						if l := append(leftovers(t, w.bin), leftovers(t, filepath.Dir(bk))...); len(l) > 0 {
							t.Errorf("left behind %v", l)
						}

						// The rollback: the swap's undo puts the replaced content
						// back and keeps the backup; a restore then finds it in
						// place; the prepare's undo finds its file renamed away.
						if err := m.Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
							t.Fatal(err)
						}
						if got := mustRead(t, w.dest); !bytes.Equal(got.data, oldBin) || got.mode != before.mode {
							t.Errorf("after the undo dest = %+v, want %+v", got, before)
						}
						r := &Module{Restore: w.dest, Backup: m.Backup}
						if res, err := r.Defaults().Run(testCtx(t), w.h); err != nil || res.Changed {
							t.Errorf("restore after the undo = %+v, %v; want nothing to do", res, err)
						}
						if prepare {
							if err := m.Undo(testCtx(t), w.h, roundTrip(t, prep)); err != nil {
								t.Fatal(err)
							}
						}
						if got := mustRead(t, bk); !equalFile(got, before) {
							t.Errorf("after the rollback the backup = %+v, want %+v", got, before)
						}
					})
				}
			}
		})
	}
}

// TestBackupLinkedThenChanged: between a prepare and its swap, dest and a
// backup kept as a link are one file. Whatever happens to dest meanwhile,
// the swap's backup is the file it replaced, and each undo works from it.
func TestBackupLinkedThenChanged(t *testing.T) {
	third := []byte("#!/bin/sh\necho etcd 3.6.1, patched in place\n")
	tests := []struct {
		name   string
		change func(t *testing.T, w *world)
		// replaced is what dest holds when the swap replaces it.
		replaced []byte
		kept     string // the swap's backup_kept
	}{
		{"nothing", func(*testing.T, *world) {}, oldBin, "reused"},
		{"written in place", func(t *testing.T, w *world) {
			// O_TRUNC on the file itself: its inode, so the backup's too.
			if err := os.WriteFile(w.dest, third, 0); err != nil {
				t.Fatal(err)
			}
		}, third, "reused"},
		{"replaced by a rename", func(t *testing.T, w *world) {
			tmp := filepath.Join(w.bin, "etcd.new-by-someone")
			w.write(t, tmp, third, 0o750)
			if err := os.Rename(tmp, w.dest); err != nil {
				t.Fatal(err)
			}
		}, third, "linked"},
		{"chmodded", func(t *testing.T, w *world) {
			if err := os.Chmod(w.dest, 0o700); err != nil {
				t.Fatal(err)
			}
		}, oldBin, "reused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.write(t, w.dest, oldBin, 0o750)
			prep := mustRun(t, w, w.prepare())
			wantData(t, "prepare", prep.Data, map[string]any{"backup_kept": "linked"})
			tt.change(t, w)
			replaced := mustRead(t, w.dest)

			res := mustRun(t, w, w.module())
			wantData(t, "swap", res.Data, map[string]any{"backup_kept": tt.kept, "sha256_before": digest(tt.replaced)})
			if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, replaced) {
				t.Errorf("backup = %+v, want the replaced %+v", bk, replaced)
			}
			if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, w.dest); !equalFile(got, replaced) {
				t.Errorf("after the undo dest = %+v, want %+v", got, replaced)
			}
			if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, prep)); err != nil {
				t.Fatal(err)
			}
			if l := leftovers(t, w.bin); len(l) > 0 {
				t.Errorf("left behind %v", l)
			}
		})
	}
}

// TestBackupLinkedResumeAndCheck: a resumed run (a new process: nothing
// remembered) and --check find a backup kept as a link as kept.
func TestBackupLinkedResumeAndCheck(t *testing.T) {
	w := newWorld(t)
	w.write(t, w.dest, oldBin, 0o750)
	before := mustRead(t, w.dest)
	prep := mustRun(t, w, w.prepare())
	wantData(t, "prepare", prep.Data, map[string]any{"backup_kept": "linked"})

	for _, m := range []*Module{w.prepare(), w.module()} {
		res, err := m.Defaults().Check(testCtx(t), w.h)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != !m.Prepare {
			t.Errorf("check of prepare=%v after the prepare: changed = %v", m.Prepare, res.Changed)
		}
	}

	// The host's name keys what this process remembers: another name is a
	// run that starts afresh on the same files.
	resumed := *w.h
	resumed.Name = "etcd-1-resumed"
	w2 := *w
	w2.h = &resumed
	again := mustRun(t, &w2, w.prepare())
	wantData(t, "resumed prepare", again.Data, map[string]any{"staged": "reused", "backup_kept": "reused"})
	if again.Changed {
		t.Errorf("the resumed prepare changed: %v", again.Data["msg"])
	}
	res := mustRun(t, &w2, w.module())
	wantData(t, "resumed swap", res.Data, map[string]any{"staged": "reused", "backup_kept": "reused"})
	if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
		t.Errorf("backup = %+v, want %+v", bk, before)
	}
}

// failingPut is a real connection whose uploads fail.
type failingPut struct{ conn.Conn }

func (failingPut) Put(context.Context, io.Reader, string, fs.FileMode) error {
	return errors.New("the upload broke off")
}

// TestPrepareUploadFails: the upload and the backup of a prepare go on at
// once; when the upload fails, the step fails with its error, leaves no
// staged file, and dest is as it was, as is the backup kept meanwhile.
func TestPrepareUploadFails(t *testing.T) {
	for _, tt := range []struct {
		name string
		dest []byte
	}{
		{"dest of src's size", oldBin},
		{"dest of another size", []byte("#!/bin/sh\necho etcd 3.5.21, of another size\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.h.Conn = failingPut{w.h.Conn}
			w.write(t, w.dest, tt.dest, 0o750)
			before := mustRead(t, w.dest)
			_, err := w.prepare().Defaults().Run(testCtx(t), w.h)
			if err == nil || !strings.Contains(err.Error(), "the upload broke off") {
				t.Fatalf("prepare = %v, want the upload's error", err)
			}
			if got := mustRead(t, w.dest); !equalFile(got, before) {
				t.Errorf("dest = %+v, want %+v", got, before)
			}
			if bk, ok := read(t, w.dest+BackupSuffix); ok && !equalFile(bk, before) {
				t.Errorf("backup = %+v; a backup kept must hold dest %+v", bk, before)
			}
			if l := leftovers(t, w.bin); len(l) > 0 {
				t.Errorf("left behind %v", l)
			}
		})
	}
}
