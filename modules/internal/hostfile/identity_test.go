package hostfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

func TestParseStat(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		wantID   string
		regular  bool
		wantErr  bool
	}{
		{name: "GNU stat with the identity",
			in:      "81ed 0 0 root root 2049 1234 25000000 2026-12-07 16:45:51.123456789 +0000 2026-12-07 16:45:52.000000001 +0000\n",
			wantID:  "2049 1234 25000000 2026-12-07 16:45:51.123456789 +0000 2026-12-07 16:45:52.000000001 +0000",
			regular: true},
		// A stat that knows only the mode and owner: the file is read as
		// always, and its digest is never reused.
		{name: "mode and owner only", in: "a1ff 0 0 root root\n"},
		{name: "too short", in: "81ed 0 0\n", wantErr: true},
		{name: "not a mode", in: "zz 0 0 root root\n", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseStat(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat(%q) = %v", tt.in, err)
			}
			if err == nil && (f.ID != tt.wantID || f.Regular != tt.regular) {
				t.Errorf("parseStat(%q) = %+v, want ID %q, regular %v", tt.in, f, tt.wantID, tt.regular)
			}
		})
	}
}

// counter counts the sha256sum runs on a real local connection.
type counter struct {
	conn.Conn
	mu   sync.Mutex
	sums int
}

func (c *counter) Run(ctx context.Context, cmd conn.Cmd) (conn.Output, error) {
	if cmd.Argv[0] == "sha256sum" {
		c.mu.Lock()
		c.sums++
		c.mu.Unlock()
	}
	return c.Conn.Run(ctx, cmd)
}

func (c *counter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.sums
	c.sums = 0
	return n
}

// A digest is reused only in a context that trusts identities, and only
// while the file keeps its identity: a rewrite of the same size with its
// modification time set back is hashed again (its change time tells).
func TestDigestByIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &counter{Conn: local.New()}
	h := &modules.Host{Name: t.Name(), Conn: c, Log: zerolog.Nop()}
	p := filepath.Join(t.TempDir(), "f")
	old := []byte("old content\n")
	if err := os.WriteFile(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	inspect := func(ctx context.Context) string {
		t.Helper()
		f, err := Inspect(ctx, h, p, true)
		if err != nil {
			t.Fatal(err)
		}
		return f.SHA256
	}

	for range 2 {
		inspect(ctx)
	}
	if n := c.take(); n != 2 {
		t.Errorf("without TrustIdentity, two inspects hashed %d times, want 2", n)
	}

	trust := TrustIdentity(ctx)
	for range 2 {
		if got := inspect(trust); got != digestOf(old) {
			t.Errorf("digest %s, want %s", got, digestOf(old))
		}
	}
	if n := c.take(); n != 1 {
		t.Errorf("with TrustIdentity, two inspects of an unchanged file hashed %d times, want 1", n)
	}

	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte("x"), len(old))
	if err := os.WriteFile(p, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := inspect(trust); got != digestOf(other) {
		t.Errorf("after a rewrite of the same size and mtime, digest %s, want %s", got, digestOf(other))
	}
	if n := c.take(); n != 1 {
		t.Errorf("a rewritten file was hashed %d times, want 1", n)
	}
}

// ReadAhead reads nothing ahead when dest is a symbolic link: the swap then
// reads each file on its own, and refuses or follows as it always did.
func TestReadAheadNotALink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = TrustIdentity(ctx)
	h := &modules.Host{Name: t.Name(), Conn: local.New(), Log: zerolog.Nop()}
	dir := t.TempDir()
	dest, target, stage, backup := filepath.Join(dir, "etcd"), filepath.Join(dir, "real"), StagePrefix(filepath.Join(dir, "etcd"))+"abc", filepath.Join(dir, "etcd"+BackupSuffix)
	for _, p := range []string{target, stage, backup} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, dest); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectFile(ctx, h, stage); err != nil { // its digest remembered
		t.Fatal(err)
	}
	RememberStage(h, dest, stage)
	if got := ReadAhead(ctx, h, dest, backup); got != ctx {
		t.Error("read ahead although dest is a symbolic link")
	}
	f, err := Lstat(ctx, h, dest)
	if err != nil || !f.Exists || f.Regular {
		t.Errorf("Lstat(dest) = %+v, %v; want a link, not a regular file", f, err)
	}

	// With dest a file, the three are read at once, each served once.
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, []byte("dest"), 0o644); err != nil {
		t.Fatal(err)
	}
	ra := ReadAhead(ctx, h, dest, backup)
	if got := stagedAlready(ra, dest); got != stage {
		t.Errorf("staged file read ahead = %q, want %q", got, stage)
	}
	if got := stagedAlready(ra, backup); got != "" {
		t.Errorf("a staged file for another dest: %q", got)
	}
	if _, ok := readAlready(ra, dest); !ok {
		t.Error("dest was not read ahead")
	}
	if _, ok := readAlready(ra, dest); ok {
		t.Error("dest read ahead was served twice")
	}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
