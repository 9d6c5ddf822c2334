package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
)

func put(t *testing.T, l *Local, data []byte, dest string, mode fs.FileMode) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return l.Put(ctx, bytes.NewReader(data), dest, mode)
}

// onlyFile fails when dir holds anything but name: a temporary file left behind.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != name {
			t.Errorf("left behind in the folder: %s", e.Name())
		}
	}
}

func TestPutAtomicUnderConcurrentReads(t *testing.T) {
	const size = 20 << 20
	a, b := bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)
	dir := t.TempDir()
	dest := filepath.Join(dir, "etcd")
	l := New()
	if err := put(t, l, a, dest, 0o755); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Bounded: stops when the writer is done or after 500 reads.
		for reads = 0; reads < 500; reads++ {
			select {
			case <-done:
				return
			default:
			}
			got, err := os.ReadFile(dest)
			switch {
			case err != nil:
				bad = append(bad, err.Error())
			case !bytes.Equal(got, a) && !bytes.Equal(got, b):
				bad = append(bad, "partial or mixed content")
			}
		}
	}()
	for i := 0; i < 8; i++ {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := put(t, l, data, dest, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d reads saw a bad file, first: %s", len(bad), reads, bad[0])
	}
	if reads == 0 {
		t.Error("the reader never ran")
	}
	onlyFile(t, dir, "etcd")
}

func TestPutModeAndContent(t *testing.T) {
	tests := []struct {
		name   string
		exists bool
		mode   fs.FileMode
	}{
		{"new file", false, 0o640},
		{"replaces file", true, 0o755},
		{"mode wider than umask", false, 0o777},
		{"narrow mode", true, 0o400},
		{"octal setgid", false, 0o2755},
		{"go setgid", false, fs.ModeSetgid | 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "f")
			if tt.exists {
				if err := os.WriteFile(dest, []byte("old content that is longer"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := put(t, New(), []byte("new"), dest, tt.mode); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dest)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := conn.UnixMode(fi.Mode()), conn.UnixMode(tt.mode); got != want {
				t.Errorf("mode = %#o, want %#o", got, want)
			}
			if got, _ := os.ReadFile(dest); string(got) != "new" {
				t.Errorf("content = %q", got)
			}
			onlyFile(t, dir, "f")
		})
	}
}

func TestPutKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the existing file to another user")
	}
	const uid, gid = 65534, 65533
	dest := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dest, uid, gid); err != nil {
		t.Fatal(err)
	}
	// setuid as well: chown after chmod would silently clear it.
	if err := put(t, New(), []byte("new"), dest, fs.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, want setuid 0755", fi.Mode())
	}
}

func TestPutReplacesSymlinkNotTarget(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "etcd-3.5"), filepath.Join(dir, "etcd")
	if err := os.WriteFile(target, []byte("3.5"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := put(t, New(), []byte("3.6"), link, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "3.5" {
		t.Errorf("target changed to %q", got)
	}
	if fi, _ := os.Lstat(link); !fi.Mode().IsRegular() {
		t.Errorf("link is %v, want a regular file", fi.Mode())
	}
}

func TestPutErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dest string
		ctx  func() context.Context
		want string
	}{
		{"missing folder", filepath.Join(dir, "nope", "f"), context.Background, "no such file or directory"},
		{"is a directory", filepath.Join(dir, "sub"), context.Background, "is a directory"},
		{"empty path", "", context.Background, "empty destination"},
		{"cancelled", filepath.Join(dir, "f"), func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Put(tt.ctx(), strings.NewReader("x"), tt.dest, 0o644)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			onlyFile(t, dir, "sub")
		})
	}
}

// A reader that fails halfway must leave the old file untouched.
func TestPutFailedSourceKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &failingReader{data: []byte("partial new"), err: errors.New("source broke")}
	err := New().Put(context.Background(), src, dest, 0o644)
	if err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "old" {
		t.Errorf("dest = %q, want the old content", got)
	}
	onlyFile(t, dir, "f")
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestGet(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3<<20+17)
	rand.New(rand.NewSource(1)).Read(data)
	src := filepath.Join(dir, "blob")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := New().Get(context.Background(), src, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("Get returned %d bytes that differ from the %d written", buf.Len(), len(data))
	}

	err := New().Get(context.Background(), filepath.Join(dir, "missing"), &buf)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	err = New().Get(context.Background(), dir, &buf)
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}

// TestPutLargeFileInSlices: a file over several sync slices arrives byte for
// byte (random data, so a slice written twice or out of place shows).
func TestPutLargeFileInSlices(t *testing.T) {
	data := make([]byte, 2*syncSlice+4<<20+17)
	rand.New(rand.NewSource(7)).Read(data)
	dir := t.TempDir()
	dest := filepath.Join(dir, "etcd")
	if err := put(t, New(), data, dest, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("dest holds %d bytes that differ from the %d written", len(got), len(data))
	}
	onlyFile(t, dir, "etcd")
}

// syncRecorder is a file that records how much was written at each sync.
type syncRecorder struct {
	bytes.Buffer
	syncedAt []int
	failSync error
}

func (r *syncRecorder) Sync() error {
	r.syncedAt = append(r.syncedAt, r.Len())
	return r.failSync
}

func TestSlicedWriter(t *testing.T) {
	const slice = 1 << 10
	tests := []struct {
		name   string
		size   int
		writes int // the data comes in this many Writes
		want   []int
	}{
		{"empty", 0, 1, nil},
		{"under a slice", slice - 1, 1, nil},
		{"one slice exactly: no sync but the caller's", slice, 1, nil},
		{"one byte over", slice + 1, 1, []int{slice}},
		{"several slices in one write", 2*slice + slice/2, 1, []int{slice, 2 * slice}},
		{"several slices in small writes", 3*slice + 1, 100, []int{slice, 2 * slice, 3 * slice}},
		{"slices exactly, in small writes", 3 * slice, 7, []int{slice, 2 * slice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := make([]byte, tt.size)
			rand.New(rand.NewSource(1)).Read(data)
			f := &syncRecorder{}
			w := &slicedWriter{f: f, slice: slice}
			step := (tt.size + tt.writes - 1) / max(tt.writes, 1)
			for off := 0; off < len(data); off += step {
				n, err := w.Write(data[off:min(off+step, len(data))])
				if err != nil || n != min(step, len(data)-off) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if !bytes.Equal(f.Bytes(), data) {
				t.Error("the file does not hold what was written")
			}
			if fmt.Sprint(f.syncedAt) != fmt.Sprint(tt.want) || w.syncs != len(tt.want) {
				t.Errorf("synced at %v (%d counted), want %v", f.syncedAt, w.syncs, tt.want)
			}
		})
	}

	// A failed sync stops the write where it failed.
	f := &syncRecorder{failSync: errors.New("EIO")}
	n, err := (&slicedWriter{f: f, slice: slice}).Write(make([]byte, 2*slice))
	if err == nil || n != slice || f.Len() != slice {
		t.Errorf("Write with a failing sync = %d, %v; file has %d bytes", n, err, f.Len())
	}
}
