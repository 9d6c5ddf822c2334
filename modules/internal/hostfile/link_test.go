package hostfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

func inodeOf(t *testing.T, p string) (ino, nlink uint64) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Ino, uint64(st.Nlink)
}

// TestKeepLink: KeepLink links a regular file of its own and nothing else,
// and where it does not link it leaves the folder as it was, for the
// caller to copy. A name planted where it makes its link, a link to a file
// or to a folder, is neither followed nor replaced.
func TestKeepLink(t *testing.T) {
	const fixed = "FIXEDFIXED"
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir, dest string) (victim string)
		linked bool
	}{
		{"a file of its own", func(*testing.T, string, string) string { return "" }, true},
		{"a file with another link", func(t *testing.T, dir, dest string) string {
			if err := os.Link(dest, filepath.Join(dir, "other")); err != nil {
				t.Fatal(err)
			}
			return ""
		}, false},
		{"a symbolic link", func(t *testing.T, dir, dest string) string {
			real := filepath.Join(dir, "real")
			if err := os.Rename(dest, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, dest); err != nil {
				t.Fatal(err)
			}
			return ""
		}, false},
		{"a link to a file planted at the link's name", func(t *testing.T, dir, dest string) string {
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("victim\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(dir, ".etcd.prev.runbook-tmp."+fixed)); err != nil {
				t.Fatal(err)
			}
			return victim
		}, false},
		{"a link to a folder planted at the link's name", func(t *testing.T, dir, dest string) string {
			victim := t.TempDir()
			if err := os.Symlink(victim, filepath.Join(dir, ".etcd.prev.runbook-tmp."+fixed)); err != nil {
				t.Fatal(err)
			}
			return victim
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			linkName = func(prefix string) (string, error) { return prefix + fixed, nil }
			t.Cleanup(func() { linkName = tempName })
			dir := t.TempDir()
			dest, backup := filepath.Join(dir, "etcd"), filepath.Join(dir, "etcd.prev")
			if err := os.WriteFile(dest, []byte("old\n"), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(backup, []byte("older\n"), 0o750); err != nil {
				t.Fatal(err)
			}
			victim := tt.setup(t, dir, dest)
			var victimBefore []string
			if victim != "" {
				victimBefore = listing(t, victim)
			}
			namesBefore := listing(t, dir)
			h := &modules.Host{Name: "h", Conn: local.New(), Log: zerolog.Nop()}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			linked, err := KeepLink(ctx, h, dest, backup)
			if err != nil || linked != tt.linked {
				t.Fatalf("KeepLink = %v, %v; want %v", linked, err, tt.linked)
			}
			if victim != "" {
				if got := listing(t, victim); strings.Join(got, "\n") != strings.Join(victimBefore, "\n") {
					t.Errorf("the planted link's target changed: %q, was %q", got, victimBefore)
				}
			}
			if !linked {
				if got := listing(t, dir); strings.Join(got, "\n") != strings.Join(namesBefore, "\n") {
					t.Errorf("the folder is now %q, was %q", got, namesBefore)
				}
				if b, _ := os.ReadFile(backup); string(b) != "older\n" {
					t.Errorf("backup = %q, want it as it was", b)
				}
				return
			}
			di, dn := inodeOf(t, dest)
			bi, _ := inodeOf(t, backup)
			if di != bi || dn != 2 {
				t.Errorf("dest inode %d (%d links), backup %d; want one file with two links", di, dn, bi)
			}
			if got := listing(t, dir); len(got) != 2 {
				t.Errorf("the folder holds %q, want dest and the backup", got)
			}
		})
	}
}

// listing is the names in dir with their type and, for files, content.
func listing(t *testing.T, p string) []string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return []string{fi.Mode().String() + " " + string(b)}
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name()+" "+e.Type().String())
	}
	return out
}
