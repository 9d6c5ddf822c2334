package swap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/runbookhq/runbook/modules"
)

// TestPrepareOtherSize: a prepare whose dest is of another size than src
// knows the swap replaces it without reading it, keeps the backup first,
// and hashes the one file dest and a linked backup are once, for both; the
// swap after it hashes nothing. Where the backup cannot be a link, dest is
// hashed and copied as always. Either way the result's sha256_before is
// dest's digest, and the rollback works.
func TestPrepareOtherSize(t *testing.T) {
	older := []byte("#!/bin/sh\necho etcd 3.5.21, of another size\n")
	tests := []struct {
		name   string
		setup  func(t *testing.T, w *world)
		kept   string
		hashes int // sha256sum runs by the prepare
	}{
		// The staged file, and the one file dest and the backup are.
		{"no backup yet", func(*testing.T, *world) {}, "linked", 2},
		{"an older backup", func(t *testing.T, w *world) { w.write(t, w.dest+BackupSuffix, oldBin, 0o750) }, "linked", 2},
		{"a backup that is dest's file already", func(t *testing.T, w *world) {
			if err := os.Link(w.dest, w.dest+BackupSuffix); err != nil {
				t.Fatal(err)
			}
		}, "reused", 2},
		// The staged file, dest, and the copy checked.
		{"dest with another link", func(t *testing.T, w *world) {
			if err := os.Link(w.dest, filepath.Join(w.bin, "etcd-other")); err != nil {
				t.Fatal(err)
			}
		}, "copied", 3},
		{"dest a symbolic link", func(t *testing.T, w *world) {
			real := filepath.Join(w.bin, "etcd-real")
			if err := os.Rename(w.dest, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, w.dest); err != nil {
				t.Fatal(err)
			}
		}, "copied", 3},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.dial(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					w := newWorld(t)
					sp := &spy{Conn: c}
					w.h.Conn = sp
					w.write(t, w.dest, older, 0o750)
					before := mustRead(t, w.dest)
					tt.setup(t, w)

					prep := mustRun(t, w, w.prepare())
					_, cmds := sp.reset()
					wantData(t, "prepare", prep.Data, map[string]any{
						"backup_kept": tt.kept, "staged": "uploaded", "sha256_before": digest(older), "existed_before": true,
					})
					if n := countCommands(cmds, "sha256sum "); n != tt.hashes {
						t.Errorf("the prepare hashed %d files, want %d: %q", n, tt.hashes, cmds)
					}
					if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
						t.Errorf("backup = %+v, want %+v", bk, before)
					}

					res := mustRun(t, w, w.module())
					_, cmds = sp.reset()
					// A dest that is a symbolic link is read path by path,
					// but nothing is hashed again.
					if n := countCommands(cmds, "sha256sum "); n != 0 || (len(cmds) != 2 && tt.name != "dest a symbolic link") {
						t.Errorf("the swap after the prepare ran %q, want stat, then the rename at once", cmds)
					}
					wantData(t, "swap", res.Data, map[string]any{"staged": "reused", "backup_kept": "reused", "sha256_before": digest(older)})
					if bk := mustRead(t, w.dest+BackupSuffix); !equalFile(bk, before) {
						t.Errorf("backup after the swap = %+v, want %+v", bk, before)
					}
					if l := leftovers(t, w.bin); len(l) > 0 {
						t.Errorf("left behind %v", l)
					}
					for _, r := range []modules.Result{res, prep} {
						if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, r)); err != nil {
							t.Fatal(err)
						}
					}
					if got := mustRead(t, w.dest); !bytes.Equal(got.data, older) || got.mode != before.mode {
						t.Errorf("after the rollback dest = %+v, want %+v", got, before)
					}
				})
			}
		})
	}
}
