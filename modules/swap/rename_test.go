package swap

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules/internal/hostfile"
)

// beforeRename runs tamper right before the command that renames the staged
// file into place, as someone racing the swap would.
type beforeRename struct {
	conn.Conn
	tamper func()
	ran    atomic.Bool
}

func (b *beforeRename) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	if _, _, ok := hostfile.IsRenameCmd(c.Argv); ok && !b.ran.Swap(true) {
		b.tamper()
	}
	return b.Conn.Run(ctx, c)
}

// TestSwapAfterPrepareStageReplaced: the swap after a prepare checks the
// staged file in the very command that renames it, so a staged file
// replaced by a link (or removed, or made a folder) after every earlier
// check is refused, not followed, and dest is left as it was.
func TestSwapAfterPrepareStageReplaced(t *testing.T) {
	canBecome := os.Geteuid() == 0 || exec.Command("sudo", "-n", "true").Run() == nil
	tests := []struct {
		name    string
		tamper  func(t *testing.T, w *world, v victim, stage string)
		wantErr string
		linkAt  bool // the stage path must still be the planted link
	}{
		{"a link to a file", func(t *testing.T, w *world, v victim, stage string) {
			replace(t, stage, func() error { return os.Symlink(v.file, stage) })
		}, "is no longer a regular file; not following it", true},
		{"a link to a folder", func(t *testing.T, w *world, v victim, stage string) {
			replace(t, stage, func() error { return os.Symlink(v.dir, stage) })
		}, "is no longer a regular file; not following it", true},
		{"a dangling link", func(t *testing.T, w *world, v victim, stage string) {
			replace(t, stage, func() error { return os.Symlink(filepath.Join(v.dir, "none"), stage) })
		}, "is no longer a regular file; not following it", true},
		{"a folder", func(t *testing.T, w *world, v victim, stage string) {
			replace(t, stage, func() error { return os.Mkdir(stage, 0o755) })
		}, "is no longer a regular file; not following it", false},
		{"removed", func(t *testing.T, w *world, v victim, stage string) {
			replace(t, stage, func() error { return nil })
		}, "is missing on the host", false},
	}
	for _, tr := range transports {
		for _, become := range []bool{false, true} {
			name := tr.name
			if become {
				name += ", become"
			}
			t.Run(name, func(t *testing.T) {
				if become && !canBecome {
					t.Skip("needs root or password-less sudo for become")
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						w := newWorld(t)
						if become {
							w.h.Become, w.h.BecomeUser = true, "root"
						}
						w.write(t, w.dest, oldBin, 0o755)
						v := newVictim(t)
						before := v.state(t)
						bc := &beforeRename{Conn: tr.dial(t)}
						w.h.Conn = bc
						mustRun(t, w, w.prepare())
						stage := w.stage(t)
						if stage == "" {
							t.Fatal("the prepare staged nothing")
						}
						bc.tamper = func() { tt.tamper(t, w, v, stage) }

						_, err := w.module().Run(testCtx(t), w.h)
						if !bc.ran.Load() {
							t.Fatal("the swap never ran the rename at once")
						}
						if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
							t.Fatalf("swap = %v, want an error containing %q", err, tt.wantErr)
						}
						if got := v.state(t); got != before {
							t.Errorf("the link's target changed:\n%s\nwas:\n%s", got, before)
						}
						if fi, err := os.Lstat(w.dest); err != nil || !fi.Mode().IsRegular() {
							t.Errorf("dest: %v, %v; want the file it was", fi, err)
						} else if got, _ := os.ReadFile(w.dest); !bytes.Equal(got, oldBin) {
							t.Errorf("dest = %q, want it as it was", got)
						}
						if fi, err := os.Lstat(stage); tt.linkAt && (err != nil || fi.Mode()&os.ModeSymlink == 0) {
							t.Errorf("%s is no longer the planted link: %v, %v", stage, fi, err)
						}
					})
				}
			})
		}
	}
}

// replace removes p and puts what make makes in its place.
func replace(t *testing.T, p string, make func() error) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := make(); err != nil {
		t.Fatal(err)
	}
}
