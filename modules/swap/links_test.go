package swap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// victim is a folder outside dest's that a planted link points into, with
// a file in it, owned by someone else and readable only by them.
type victim struct{ dir, file string }

func newVictim(t *testing.T) victim {
	t.Helper()
	v := victim{dir: t.TempDir()}
	v.file = filepath.Join(v.dir, "secret")
	if err := os.WriteFile(v.file, []byte("not for anyone else\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(v.dir, 0o710); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{v.dir, v.file} {
			if err := os.Lchown(p, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}
	}
	return v
}

// state is everything about the victim a root that follows a link could
// change: names, types, modes, owners and contents.
func (v victim) state(t *testing.T) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(v.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", strings.TrimPrefix(p, v.dir), fi.Mode(), st.Uid, st.Gid)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestPlantedLinks: with become, the swap runs as root, and a link planted at
// any path it writes must not make root write, chown or chmod what the link
// points to. Each case plants links, then runs a prepare, the swap, its undo,
// a restore and the prepare's undo; whatever each of them says, the victim's
// files and folder are as they were.
func TestPlantedLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		if err := exec.Command("sudo", "-n", "true").Run(); err != nil {
			t.Skip("needs root or password-less sudo for become")
		}
	}
	type plant func(t *testing.T, w *world, v victim)
	link := func(name string, toDir bool) plant {
		return func(t *testing.T, w *world, v victim) {
			target := v.file
			if toDir {
				target = v.dir
			}
			if err := os.Symlink(target, filepath.Join(w.bin, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		plant  []plant
		refuse bool // the swap must refuse rather than go on
	}{
		{"the old fixed staging name, to a folder", []plant{link(".etcd.runbook-new", true)}, false},
		{"the old fixed staging name, to a file", []plant{link(".etcd.runbook-new", false)}, false},
		{"a staging-like name, to a file", []plant{link(".etcd.runbook-new.AAAAAAAAAA", false), link(".etcd.runbook-new.BBBBBBBBBB", true)}, false},
		{"the old backup temporary, to a file", []plant{link("etcd.runbook-prev.runbook-tmp", false)}, false},
		{"a backup-temporary-like name, to a file", []plant{link(".etcd.runbook-prev.runbook-tmp.AAAAAAAAAA", false)}, false},
		// Where the backup is kept as a link to dest, the link is made
		// under a name like these, and ln never follows one it finds.
		{"backup-temporary-like names, to a folder and a file", []plant{link(".etcd.runbook-prev.runbook-tmp.BBBBBBBBBB", true), link(".etcd.runbook-prev.runbook-tmp.CCCCCCCCCC", false)}, false},
		{"the backup, to a file", []plant{link("etcd.runbook-prev", false)}, true},
		{"the backup, to a folder", []plant{link("etcd.runbook-prev", true)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.h.Become, w.h.BecomeUser = true, "root"
			w.write(t, w.dest, oldBin, 0o755)
			v := newVictim(t)
			before := v.state(t)
			for _, p := range tt.plant {
				p(t, w, v)
			}
			check := func(when string) {
				t.Helper()
				if got := v.state(t); got != before {
					t.Fatalf("after %s the link's target changed:\n%s\nwas:\n%s", when, got, before)
				}
			}

			prep, perr := w.prepare().Defaults().Run(testCtx(t), w.h)
			check("the prepare")
			res, err := w.module().Defaults().Run(testCtx(t), w.h)
			check("the swap")
			if tt.refuse {
				if perr == nil || err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("prepare = %v, swap = %v; want both refused", perr, err)
				}
				if got := mustRead(t, w.dest); string(got.data) != string(oldBin) {
					t.Errorf("a refused swap changed dest to %q", got.data)
				}
				return
			}
			if perr != nil || err != nil {
				t.Fatalf("prepare = %v, swap = %v", perr, err)
			}
			if got := mustRead(t, w.dest); string(got.data) != string(newBin) {
				t.Fatalf("dest = %q after the swap", got.data)
			}
			if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, res)); err != nil {
				t.Fatal(err)
			}
			check("the undo")
			if got := mustRead(t, w.dest); string(got.data) != string(oldBin) {
				t.Fatalf("dest = %q after the undo", got.data)
			}
			if _, err := (&Module{Restore: w.dest}).Defaults().Run(testCtx(t), w.h); err != nil {
				t.Fatal(err)
			}
			check("the restore")
			if err := (&Module{}).Undo(testCtx(t), w.h, roundTrip(t, prep)); err != nil {
				t.Fatal(err)
			}
			check("the prepare's undo")
		})
	}
}

// TestRestoreRefusesLinks: restore reads the backup and replaces the file
// as root, so a backup that is a link (to a file only root may read) or a
// file to restore that is a link is refused, and nothing is copied.
func TestRestoreRefusesLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		if err := exec.Command("sudo", "-n", "true").Run(); err != nil {
			t.Skip("needs root or password-less sudo for become")
		}
	}
	for _, tt := range []struct {
		name string
		at   func(w *world) string
	}{
		{"backup", func(w *world) string { return w.dest + BackupSuffix }},
		{"dest", func(w *world) string { return w.dest }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.h.Become, w.h.BecomeUser = true, "root"
			w.write(t, w.dest, newBin, 0o755)
			w.write(t, w.dest+BackupSuffix, oldBin, 0o755)
			v := newVictim(t)
			before := v.state(t)
			p := tt.at(w)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(v.file, p); err != nil {
				t.Fatal(err)
			}
			_, err := (&Module{Restore: w.dest}).Defaults().Run(testCtx(t), w.h)
			if err == nil || !strings.Contains(err.Error(), "a regular file") {
				t.Errorf("restore = %v, want a refusal", err)
			}
			if got := v.state(t); got != before {
				t.Errorf("the link's target changed:\n%s\nwas:\n%s", got, before)
			}
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s is no longer the link: %v, %v", p, fi, err)
			}
		})
	}
}
