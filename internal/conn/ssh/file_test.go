package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// The sshd runs on this machine, so what Put wrote is read straight from disk.
func TestPut(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	c := connect(t, s)

	t.Run("mode and content", func(t *testing.T) {
		t.Parallel()
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
			dir := t.TempDir()
			dest := filepath.Join(dir, "f")
			if tt.exists {
				writeFile(t, dest, "old content that is longer", 0o600)
			}
			if err := c.Put(ctxT(t), strings.NewReader("new"), dest, tt.mode); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			fi, err := os.Stat(dest)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := conn.UnixMode(fi.Mode()), conn.UnixMode(tt.mode); got != want {
				t.Errorf("%s: mode = %#o, want %#o", tt.name, got, want)
			}
			if got, _ := os.ReadFile(dest); string(got) != "new" {
				t.Errorf("%s: content = %q", tt.name, got)
			}
			if extra := leftovers(t, dir, "f"); len(extra) > 0 {
				t.Errorf("%s: left behind: %v", tt.name, extra)
			}
		}
	})

	t.Run("readers see the old file or the new one, never a mix", func(t *testing.T) {
		t.Parallel()
		const size = 8 << 20
		a, b := bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)
		dir := t.TempDir()
		dest := filepath.Join(dir, "etcd")
		if err := c.Put(ctxT(t), bytes.NewReader(a), dest, 0o755); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		var reads int
		var bad []string
		wg.Add(1)
		go func() {
			defer wg.Done()
			for reads = 0; reads < 2000; reads++ {
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
		for i := 0; i < 4; i++ {
			data := a
			if i%2 == 0 {
				data = b
			}
			if err := c.Put(ctxT(t), bytes.NewReader(data), dest, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		if len(bad) > 0 {
			t.Errorf("%d of %d reads saw a bad file, first: %s", len(bad), reads, bad[0])
		}
		if extra := leftovers(t, dir, "etcd"); len(extra) > 0 {
			t.Errorf("left behind: %v", extra)
		}
	})

	t.Run("keeps the replaced file's owner", func(t *testing.T) {
		needRoot(t)
		t.Parallel()
		for _, become := range []bool{false, true} {
			dest := writeFile(t, filepath.Join(t.TempDir(), "f"), "old", 0o644)
			if err := os.Chown(dest, 65534, 65533); err != nil {
				t.Fatal(err)
			}
			// setuid too: chown after chmod would clear it.
			err := c.PutWith(ctxT(t), strings.NewReader("new"), dest, fs.ModeSetuid|0o755, rssh.PutOptions{Become: become})
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(dest)
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != 65534 || st.Gid != 65533 {
				t.Errorf("become=%t: owner = %d:%d", become, st.Uid, st.Gid)
			}
			if fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
				t.Errorf("become=%t: mode = %v, want setuid 0755", become, fi.Mode())
			}
		}
	})

	t.Run("replaces a symbolic link, not its target", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		tgt := writeFile(t, filepath.Join(dir, "etcd-3.5"), "3.5", 0o755)
		link := filepath.Join(dir, "etcd")
		if err := os.Symlink(tgt, link); err != nil {
			t.Fatal(err)
		}
		if err := c.Put(ctxT(t), strings.NewReader("3.6"), link, 0o755); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(tgt); string(got) != "3.5" {
			t.Errorf("target changed to %q", got)
		}
		if fi, _ := os.Lstat(link); !fi.Mode().IsRegular() {
			t.Errorf("link is %v, want a regular file", fi.Mode())
		}
	})

	t.Run("with become, into a folder only the become user may write", func(t *testing.T) {
		needRoot(t)
		t.Parallel()
		top := t.TempDir()
		// nobody must be able to walk down to its folder.
		for _, d := range []string{filepath.Dir(top), top} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		dir := filepath.Join(top, "nobody's")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(dir, "app.conf")
		var sent, total []int64
		err := c.PutWith(ctxT(t), strings.NewReader("setting=1\n"), dest, 0o640, rssh.PutOptions{
			Become: true, BecomeUser: "nobody",
			Progress: func(n, of int64) { sent, total = append(sent, n), append(total, of) },
		})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dest)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || fi.Mode().Perm() != 0o640 {
			t.Errorf("owner %d, mode %v", st.Uid, fi.Mode())
		}
		if got, _ := os.ReadFile(dest); string(got) != "setting=1\n" {
			t.Errorf("content %q", got)
		}
		if len(sent) == 0 || sent[len(sent)-1] != 10 || total[0] != 10 {
			t.Errorf("progress: sent %v of %v", sent, total)
		}
		if extra := leftovers(t, dir, "app.conf"); len(extra) > 0 {
			t.Errorf("left behind: %v", extra)
		}
	})

	t.Run("progress of a large file", func(t *testing.T) {
		t.Parallel()
		var calls int
		var last int64
		monotonic := true
		data := bytes.Repeat([]byte("x"), 3<<20)
		err := c.PutWith(ctxT(t), bytes.NewReader(data), filepath.Join(t.TempDir(), "big"), 0o644, rssh.PutOptions{
			Progress: func(n, total int64) {
				calls++
				monotonic = monotonic && n >= last && total == int64(len(data))
				last = n
			},
		})
		if err != nil || calls < 2 || last != int64(len(data)) || !monotonic {
			t.Errorf("err %v, %d calls, last %d, monotonic %t", err, calls, last, monotonic)
		}
	})

	t.Run("a file over several sync slices arrives whole", func(t *testing.T) {
		t.Parallel()
		// Random data, so a slice sent twice or at the wrong offset shows.
		data := make([]byte, 20<<20+17)
		rand.New(rand.NewSource(3)).Read(data)
		dir := t.TempDir()
		dest := filepath.Join(dir, "etcd")
		var last int64
		err := c.PutWith(ctxT(t), bytes.NewReader(data), dest, 0o755, rssh.PutOptions{
			Progress: func(n, _ int64) { last = n },
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
			t.Errorf("dest holds %d bytes that differ from the %d sent", len(got), len(data))
		}
		if last != int64(len(data)) {
			t.Errorf("progress ended at %d of %d", last, len(data))
		}
		if extra := leftovers(t, dir, "etcd"); len(extra) > 0 {
			t.Errorf("left behind: %v", extra)
		}
	})

	t.Run("errors leave nothing behind", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		tests := []struct {
			name   string
			dest   string
			ctx    context.Context
			src    func() *failingReader
			become bool
			want   string
		}{
			{"missing folder", filepath.Join(dir, "nope", "f"), nil, nil, false, "file does not exist"},
			{"is a directory", filepath.Join(dir, "sub"), nil, nil, false, "is a directory"},
			{"is a directory, become", filepath.Join(dir, "sub"), nil, nil, true, "is a directory"},
			{"empty path", "", nil, nil, false, "empty destination"},
			{"cancelled", filepath.Join(dir, "f"), cancelled, nil, false, "context canceled"},
			{"source fails", filepath.Join(dir, "f"), nil, func() *failingReader { return &failingReader{data: []byte("partial")} }, false, "source broke"},
			{"source fails, become", filepath.Join(dir, "f"), nil, func() *failingReader { return &failingReader{data: []byte("partial")} }, true, "source broke"},
		}
		for _, tt := range tests {
			if tt.become && os.Geteuid() != 0 {
				continue
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = ctxT(t)
			}
			var src interface{ Read([]byte) (int, error) } = strings.NewReader("x")
			if tt.src != nil {
				src = tt.src()
			}
			err := c.PutWith(ctx, src, tt.dest, 0o644, rssh.PutOptions{Become: tt.become})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
			}
			if conn.IsTransport(err) {
				t.Errorf("%s: %v is a transport error", tt.name, err)
			}
			if extra := leftovers(t, dir, "sub"); len(extra) > 0 {
				t.Errorf("%s: left behind: %v", tt.name, extra)
			}
		}
	})
}

type failingReader struct{ data []byte }

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errors.New("source broke")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestGet(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	c := connect(t, s)
	dir := t.TempDir()
	data := make([]byte, 3<<20+17)
	rand.New(rand.NewSource(1)).Read(data)
	src := filepath.Join(dir, "blob")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Get(ctxT(t), src, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("Get returned %d bytes that differ from the %d written", buf.Len(), len(data))
	}
	err := c.Get(ctxT(t), filepath.Join(dir, "missing"), &buf)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if err := c.Get(ctxT(t), dir, &buf); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}
