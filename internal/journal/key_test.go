package journal

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestKey(t *testing.T) {
	dir := t.TempDir()
	const id = "20261124T023955Z-3f9a01"
	key, err := CreateKey(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize || bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatalf("key %x", key)
	}
	fi, err := os.Lstat(KeyPath(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != fileMode {
		t.Errorf("key file mode %v, want %v", fi.Mode(), fs.FileMode(fileMode))
	}
	got, err := ReadKey(dir, id)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ReadKey = %x, %v; want %x", got, err, key)
	}
	if other, err := CreateKey(dir, "20261124T023955Z-3f9a02"); err != nil || bytes.Equal(other, key) {
		t.Errorf("a second run's key %x (%v) is the first's", other, err)
	}
	// A key is made once: a second CreateKey must not replace it.
	if _, err := CreateKey(dir, id); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateKey over an existing key: %v, want it refused", err)
	}
	if again, _ := ReadKey(dir, id); !bytes.Equal(again, key) {
		t.Error("the key changed")
	}
}

func TestKeyRefused(t *testing.T) {
	const id = "20261124T023955Z-3f9a01"
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"missing", func(t *testing.T, dir string) {}},
		{"short", func(t *testing.T, dir string) { writeKey(t, dir, id, make([]byte, KeySize-1)) }},
		{"long", func(t *testing.T, dir string) { writeKey(t, dir, id, make([]byte, KeySize+1)) }},
		{"a folder", func(t *testing.T, dir string) {
			if err := os.MkdirAll(KeyPath(dir, id), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to a good key", func(t *testing.T, dir string) {
			target := filepath.Join(dir, "elsewhere")
			if err := os.WriteFile(target, make([]byte, KeySize), 0o600); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(dir, RunsDir), 0o700)
			if err := os.Symlink(target, KeyPath(dir, id)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			if key, err := ReadKey(dir, id); err == nil {
				t.Errorf("ReadKey = %x, want an error", key)
			}
		})
	}
	if _, err := ReadKey(t.TempDir(), id); !errors.Is(err, ErrNoKey) {
		t.Errorf("missing key: %v, want ErrNoKey", err)
	}
}

// TestCreateKeyDoesNotFollowLinks: a link planted where the key goes is not
// followed, so the key is neither written to its target nor taken from it.
func TestCreateKeyDoesNotFollowLinks(t *testing.T) {
	dir := t.TempDir()
	const id = "20261124T023955Z-3f9a01"
	os.MkdirAll(filepath.Join(dir, RunsDir), 0o700)
	target := filepath.Join(dir, "planted")
	for _, exists := range []bool{false, true} {
		os.Remove(target)
		os.Remove(KeyPath(dir, id))
		if exists {
			if err := os.WriteFile(target, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(target, KeyPath(dir, id)); err != nil {
			t.Fatal(err)
		}
		if _, err := CreateKey(dir, id); err == nil {
			t.Errorf("target exists %v: CreateKey followed the link", exists)
		}
		if b, err := os.ReadFile(target); err == nil && len(b) > 0 {
			t.Errorf("target exists %v: the key was written through the link", exists)
		}
	}
}

func writeKey(t *testing.T, dir, id string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, RunsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(KeyPath(dir, id), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
