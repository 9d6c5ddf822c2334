//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package runlock

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileAcquireRefusesAnotherRunAllOrNothing(t *testing.T) {
	ctx := testCtx(t)
	s := NewFileStore(t.TempDir())
	a, err := s.Acquire(ctx, []string{HostKey("m2"), HostKey("m1")}, holder("run-a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.Keys(), ","); got != "host/m1,host/m2" {
		t.Errorf("keys = %s, want them sorted", got)
	}

	// m0 is free (and taken first), m1 and m2 are not: nothing is kept, and
	// the refusal names both.
	_, err = s.Acquire(ctx, []string{HostKey("m2"), HostKey("m0"), HostKey("m1")}, holder("run-b"))
	var he *HeldError
	if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second run: err = %v, want a *HeldError", err)
	}
	if len(he.Locks) != 2 || he.Locks[0].Key != "host/m1" || he.Locks[1].Key != "host/m2" || he.Locks[0].Holder != holder("run-a") {
		t.Errorf("refusal names %+v, want host/m1 and host/m2 held by run-a with its record", he.Locks)
	}
	for _, want := range []string{"host m1, host m2", "run run-a", "user alice", "on ctl-1 (pid 4242)", "runbook upgrade-etcd.yml", "since 2026-12-07 12:00:00 UTC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	c, err := s.Acquire(ctx, []string{HostKey("m0")}, holder("run-c"))
	if err != nil {
		t.Fatalf("m0 was left locked by the refused run: %v", err)
	}
	c.Release()

	locks, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 2 || locks[0].Key != "host/m1" || locks[1].Holder.RunID != "run-a" {
		t.Errorf("List = %+v, want run-a's two locks", locks)
	}

	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	b, err := s.Acquire(ctx, []string{HostKey("m3"), HostKey("m2")}, holder("run-b"))
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	defer b.Release()
	if locks, _ := s.List(ctx); len(locks) != 2 || locks[0].Holder.RunID != "run-b" {
		t.Errorf("List = %+v, want run-b's locks only", locks)
	}
}

func TestFileLockOfKilledHolderIsFree(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s := NewFileStore(dir)
	h := startHolder(t, "file "+dir+" run-dead host/m1 name/etcd")
	_, err := s.Acquire(ctx, []string{HostKey("m1")}, holder("run-b"))
	var he *HeldError
	if !errors.As(err, &he) || he.Locks[0].Holder.RunID != "run-dead" || he.Locks[0].Holder.PID != h.Process.Pid {
		t.Fatalf("while the holder lives: err = %v, want held by run-dead, pid %d", err, h.Process.Pid)
	}
	kill(t, h)
	held, err := s.Acquire(ctx, []string{HostKey("m1"), NameKey("etcd")}, holder("run-b"))
	if err != nil {
		t.Fatalf("after SIGKILL of the holder: %v", err)
	}
	held.Release()
}

func TestFileRefusesPlantedLinks(t *testing.T) {
	ctx := testCtx(t)
	t.Run("symlink lock file", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		os.WriteFile(victim, []byte("precious\n"), 0o600)
		os.Mkdir(filepath.Join(dir, DirName), 0o700)
		if err := os.Symlink(victim, filepath.Join(dir, DirName, fileName(HostKey("m1")))); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileStore(dir).Acquire(ctx, []string{HostKey("m1")}, holder("r"))
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("err = %v, want a refusal of the symbolic link", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
			t.Errorf("the link's target was written: %q", b)
		}
	})
	t.Run("symlink lock folder", func(t *testing.T) {
		dir := t.TempDir()
		elsewhere := t.TempDir()
		if err := os.Symlink(elsewhere, filepath.Join(dir, DirName)); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileStore(dir).Acquire(ctx, []string{HostKey("m1")}, holder("r"))
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("err = %v, want a refusal of the symbolic link", err)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Errorf("files were made through the link: %v", ents)
		}
	})
	t.Run("hard link", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, DirName), 0o700)
		victim := filepath.Join(dir, "victim")
		os.WriteFile(victim, []byte("precious\n"), 0o600)
		if err := os.Link(victim, filepath.Join(dir, DirName, fileName(HostKey("m1")))); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileStore(dir).Acquire(ctx, []string{HostKey("m1")}, holder("r"))
		if err == nil || !strings.Contains(err.Error(), "hard link") {
			t.Fatalf("err = %v, want a refusal of the hard link", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
			t.Errorf("the link's target was written: %q", b)
		}
	})
	t.Run("symlink audit log", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, DirName), 0o700)
		victim := filepath.Join(dir, "victim")
		os.WriteFile(victim, []byte("precious\n"), 0o600)
		os.Symlink(victim, filepath.Join(dir, DirName, auditName))
		_, err := NewFileStore(dir).Break(ctx, []string{HostKey("m1")}, Break{By: "bob", Reason: "stale"})
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("err = %v, want a refusal of the symbolic link", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
			t.Errorf("the link's target was written: %q", b)
		}
	})
	t.Run("world-writable folder", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, DirName), 0o700)
		os.Chmod(filepath.Join(dir, DirName), 0o777)
		_, err := NewFileStore(dir).Acquire(ctx, []string{HostKey("m1")}, holder("r"))
		if err == nil || !strings.Contains(err.Error(), "writable by everyone") {
			t.Fatalf("err = %v, want a refusal of the open folder", err)
		}
	})
	t.Run("key naming another folder", func(t *testing.T) {
		for _, k := range []string{HostKey("../../x"), HostKey(".hidden"), NameKey("a/b")} {
			if n := fileName(k); strings.Contains(n, "/") || strings.HasPrefix(n, ".") {
				t.Errorf("fileName(%q) = %q", k, n)
			}
		}
	})
}

func TestFileModes(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name            string
		state           os.FileMode
		wantDir, wantFi os.FileMode
	}{
		{"private", 0o700, 0o700, 0o600},
		{"shared with a group", 0o770, 0o770, 0o660},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			os.Mkdir(dir, tc.state)
			os.Chmod(dir, tc.state)
			s := NewFileStore(dir)
			h, err := s.Acquire(ctx, []string{HostKey("m1")}, holder("r"))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release()
			fi, _ := os.Stat(filepath.Join(dir, DirName))
			if fi.Mode().Perm() != tc.wantDir {
				t.Errorf("folder mode %o, want %o", fi.Mode().Perm(), tc.wantDir)
			}
			fi, _ = os.Stat(filepath.Join(dir, DirName, fileName(HostKey("m1"))))
			if fi.Mode().Perm() != tc.wantFi {
				t.Errorf("file mode %o, want %o", fi.Mode().Perm(), tc.wantFi)
			}
		})
	}
}

func TestFileBreakIsAuditedAndSeenByTheHolder(t *testing.T) {
	ctx := testCtx(t)
	old := watchEvery
	watchEvery = 20 * time.Millisecond
	t.Cleanup(func() { watchEvery = old })
	dir := t.TempDir()
	s := NewFileStore(dir)
	a, err := s.Acquire(ctx, []string{HostKey("m1"), HostKey("m2")}, holder("run-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()

	when := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	broken, err := s.Break(ctx, []string{HostKey("m1"), HostKey("m9")}, Break{Time: when, By: "bob", Controller: "ctl-2", Reason: "run-a hung on a dead NFS mount"})
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) != 1 || broken[0].Key != "host/m1" || broken[0].Holder.RunID != "run-a" {
		t.Errorf("broken = %+v, want m1 of run-a (m9 was not held)", broken)
	}
	select {
	case <-a.Lost():
		if !strings.Contains(a.LostReason().Error(), "host m1 was broken") {
			t.Errorf("lost reason %v", a.LostReason())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the holder did not see its lock broken")
	}
	b, err := s.Acquire(ctx, []string{HostKey("m1")}, holder("run-b"))
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	defer b.Release()

	data, err := os.ReadFile(s.AuditPath())
	if err != nil {
		t.Fatal(err)
	}
	var rec Break
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("audit log %q: %v", data, err)
	}
	if rec.By != "bob" || rec.Reason != "run-a hung on a dead NFS mount" || !rec.Time.Equal(when) ||
		len(rec.Broken) != 1 || rec.Broken[0].Holder.RunID != "run-a" || len(rec.Keys) != 2 {
		t.Errorf("audit record %+v", rec)
	}
	// The broken run's release leaves the new holder alone.
	a.Release()
	if locks, _ := s.List(ctx); len(locks) != 1 || locks[0].Key != "host/m1" || locks[0].Holder.RunID != "run-b" {
		t.Errorf("List = %+v, want m1 of run-b alone", locks)
	}
}

func TestFileListTakesNoLockAndMakesNothing(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s := NewFileStore(dir)
	if locks, err := s.List(ctx); err != nil || len(locks) != 0 {
		t.Fatalf("List = %v, %v", locks, err)
	}
	if _, err := os.Stat(filepath.Join(dir, DirName)); !os.IsNotExist(err) {
		t.Errorf("List made the lock folder: %v", err)
	}
}

func TestRecordsAreCleanedForTheTerminal(t *testing.T) {
	h := Holder{RunID: "r\x1b]0;pwned\x07", User: "eve\r\nrun ok", Runbook: "x\x1b[2J"}
	s := h.String()
	if strings.ContainsAny(s, "\x1b\x07\r\n") {
		t.Errorf("String() = %q keeps control characters", s)
	}
	if d := Describe("host/m1\x1b[2J"); strings.Contains(d, "\x1b") {
		t.Errorf("Describe = %q", d)
	}
}
