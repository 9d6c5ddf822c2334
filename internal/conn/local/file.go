package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/runbookhq/runbook/internal/conn"
)

// Put writes src to dest atomically. The data goes to a temporary file in
// dest's folder (so the rename stays on one filesystem), is fsynced (every
// syncSlice bytes on the way, then at the end), gets mode
// and, when dest exists, dest's owner and group, and is renamed over dest; the
// folder is fsynced last so the rename survives a crash. mode may spell
// setuid, setgid and sticky either way conn.UnixMode accepts. A reader sees the old
// file or the new one, never a mix. When dest is a symbolic link, the link is
// replaced, not the file it points to, as mv and install do.
func (l *Local) Put(ctx context.Context, src io.Reader, dest string, mode fs.FileMode) (err error) {
	if dest == "" {
		return errors.New("local: put: empty destination path")
	}
	dest = filepath.Clean(dest)
	fail := func(err error) error { return fmt.Errorf("local: put %s: %w", dest, err) }

	old, statErr := os.Lstat(dest)
	switch {
	case statErr == nil && old.IsDir():
		return fail(errors.New("is a directory"))
	case statErr != nil && !errors.Is(statErr, fs.ErrNotExist):
		return fail(statErr)
	}

	dir, base := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".runbook-*")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	if _, err := io.Copy(&slicedWriter{f: tmp, slice: syncSlice}, ctxReader{ctx, src}); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	// chown before chmod: Linux clears setuid and setgid bits on chown.
	if statErr == nil {
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			err := tmp.Chown(int(st.Uid), int(st.Gid))
			// Only root may give a file away. An unprivileged run then leaves
			// the file owned by its own user, like any editor's save; keeping
			// another owner needs become.
			if err != nil && !(errors.Is(err, fs.ErrPermission) && l.euid != 0) {
				return fail(err)
			}
		}
	}
	if err := syscall.Fchmod(int(tmp.Fd()), conn.UnixMode(mode)); err != nil {
		return fail(fmt.Errorf("chmod %#o: %w", conn.UnixMode(mode), err))
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		// The file is in place; only its durability across a crash is unsure.
		return fmt.Errorf("local: put %s: written, but fsync of its folder failed: %w", dest, err)
	}
	return nil
}

// syncSlice: see conn.SyncSlice.
const syncSlice = conn.SyncSlice

// slicedWriter writes to f and fsyncs it before writing past each further
// slice bytes. It syncs only when more data comes, so a file up to one
// slice gets no sync but Put's final one.
type slicedWriter struct {
	f interface {
		io.Writer
		Sync() error
	}
	slice    int64
	unsynced int64
	syncs    int // for tests
}

func (w *slicedWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.unsynced >= w.slice {
			if err := w.f.Sync(); err != nil {
				return n, err
			}
			w.syncs++
			w.unsynced = 0
		}
		m, err := w.f.Write(p[:min(int64(len(p)), w.slice-w.unsynced)])
		n += m
		w.unsynced += int64(m)
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot fsync a directory and say so with EINVAL; there
	// is nothing more we can do for them.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Get copies the file src to dst.
func (l *Local) Get(ctx context.Context, src string, dst io.Writer) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("local: get: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("local: get: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("local: get %s: is a directory", src)
	}
	if _, err := io.Copy(dst, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("local: get %s: %w", src, err)
	}
	return nil
}

// ctxReader stops a copy when ctx is done, so a cancelled Put or Get of a big
// file returns between two reads instead of at the end.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
