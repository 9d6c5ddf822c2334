package etcdctl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// SnapshotFile is a snapshot saved and verified on the controller.
type SnapshotFile struct {
	Path string
	Size int64
	// SHA256 is the digest of the whole file, to compare copies of it.
	SHA256 string
	// StorageVersion is what the member sent with the snapshot ("" before 3.6).
	StorageVersion string
	// Replaced says an older file at Path was replaced.
	Replaced bool
}

// trailerSize is the sha256 that etcd appends to a snapshot stream.
const trailerSize = sha256.Size

// Snapshot streams the member's database to dest.part, fsyncs it, verifies
// it (VerifySnapshot), and only then renames it to dest and fsyncs the
// folder, so dest never holds a partial or unverified file. The folder is
// made with mode 0700 and the file 0600: a snapshot holds every key,
// secrets included. limit bounds the whole transfer.
//
// This is what etcd's snapshot.SaveWithVersion does, plus the verification
// before the rename, through this client, which is pinned to one member.
func (c *Client) Snapshot(ctx context.Context, dest string, limit time.Duration) (SnapshotFile, error) {
	out := SnapshotFile{Path: dest}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return out, fmt.Errorf("snapshot: %w", err)
	}
	if fi, err := os.Stat(dest); err == nil {
		if !fi.Mode().IsRegular() {
			return out, fmt.Errorf("snapshot: %s exists and is not a file", dest)
		}
		out.Replaced = true
	}
	rctx, cancel, err := c.request(ctx, "snapshot")
	if err != nil {
		return out, err
	}
	cancel() // the transfer has its own, longer, limit
	rctx, cancel = context.WithTimeout(ctx, limit)
	defer cancel()
	part := dest + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return out, fmt.Errorf("snapshot: %w", err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(part)
		}
	}()
	resp, err := c.cli.SnapshotWithVersion(rctx)
	if err != nil {
		return out, c.wrapLimit("snapshot", rctx, limit, err)
	}
	defer resp.Snapshot.Close()
	out.StorageVersion = resp.Version
	if _, err := io.Copy(f, resp.Snapshot); err != nil {
		return out, c.wrapLimit("snapshot: receiving", rctx, limit, err)
	}
	if err := f.Sync(); err != nil {
		return out, fmt.Errorf("snapshot: fsync %s: %w", part, err)
	}
	if err := f.Close(); err != nil {
		return out, fmt.Errorf("snapshot: %w", err)
	}
	size, sum, err := VerifySnapshot(part)
	if err != nil {
		return out, err
	}
	if err := os.Rename(part, dest); err != nil {
		return out, fmt.Errorf("snapshot: %w", err)
	}
	done = true
	if err := syncDir(filepath.Dir(dest)); err != nil {
		return out, fmt.Errorf("snapshot: fsync of the folder after the rename: %w", err)
	}
	out.Size, out.SHA256 = size, sum
	return out, nil
}

func (c *Client) wrapLimit(what string, rctx context.Context, limit time.Duration, err error) error {
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: not done within %s (raise transfer_timeout for a large database): %w", what, limit, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// VerifySnapshot checks a snapshot file as `etcdctl snapshot restore` does
// before it trusts one: etcd streams the database (pages of 512 bytes and
// multiples) and then the sha256 of those bytes, so the size is 32 more than
// a multiple of 512, and the last 32 bytes are the sha256 of the rest. It
// returns the size and the sha256 of the whole file.
func VerifySnapshot(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", fmt.Errorf("snapshot: %w", err)
	}
	size := fi.Size()
	if size < trailerSize+512 || size%512 != trailerSize {
		return size, "", fmt.Errorf("snapshot: %s has %d bytes; a snapshot has a multiple of 512 plus 32 (its sha256): it is cut short or not an etcd snapshot", path, size)
	}
	db, whole := sha256.New(), sha256.New()
	if _, err := io.CopyN(io.MultiWriter(db, whole), f, size-trailerSize); err != nil {
		return size, "", fmt.Errorf("snapshot: reading %s: %w", path, err)
	}
	trailer := make([]byte, trailerSize)
	if _, err := io.ReadFull(f, trailer); err != nil {
		return size, "", fmt.Errorf("snapshot: reading %s: %w", path, err)
	}
	whole.Write(trailer)
	if got := db.Sum(nil); !bytes.Equal(got, trailer) {
		return size, "", fmt.Errorf("snapshot: %s is damaged: its last 32 bytes say sha256 %x, the data before them has %x",
			path, trailer, got)
	}
	return size, hex.EncodeToString(whole.Sum(nil)), nil
}
