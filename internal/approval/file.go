//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/runbookhq/runbook/internal/safedir"

	"golang.org/x/sys/unix"
)

// DirName is the file store's folder beside the run lock's (state/locks):
//
//	approvals/                    0700, or 0770 when its parent is group-writable
//	approvals/RUN_ID/             one folder per run
//	approvals/RUN_ID/ask.KEY.json             the run waits there (replaced, then removed)
//	approvals/RUN_ID/decision.KEY.TIME-RAND.json  one decision, created O_EXCL, never changed
//
// Each decision is a file of its own, created exclusively, so two people
// approving at once never write the same file; a reader skips a file whose
// JSON is not whole yet and reads it on its next look.
const DirName = "approvals"

const (
	askPrefix      = "ask."
	decisionPrefix = "decision."
	jsonExt        = ".json"
	tmpPrefix      = ".tmp."
	maxFile        = 64 << 10
)

// FileStore keeps approvals as files in one folder.
type FileStore struct{ dir string }

// NewFileStore returns the store in folder dir (approvals/ of the state
// folder, or beside lock.dir). It creates nothing until a write.
func NewFileStore(dir string) *FileStore { return &FileStore{dir: dir} }

func (s *FileStore) String() string { return "file store " + s.dir }

// Close implements Store.
func (s *FileStore) Close() error { return nil }

// modes are the folder's and files' modes (safedir.Modes).
func (s *FileStore) modes() (dir, file uint32) { return safedir.Modes(s.dir) }

// openDir opens folder name inside parent (or s.dir itself when parent is
// -1) with safedir.Open, creating it when create is set.
func (s *FileStore) openDir(parent int, name string, create bool) (int, error) {
	dm, _ := s.modes()
	path := s.dir
	if parent >= 0 {
		path = filepath.Join(s.dir, name)
	}
	return safedir.Open("approvals folder", path, parent, name, create, dm)
}

// runDir opens the folder of run runID.
func (s *FileStore) runDir(runID string, create bool) (int, error) {
	if !validRunID(runID) {
		return -1, fmt.Errorf("%q is not a run id", Clean(runID))
	}
	top, err := s.openDir(-1, "", create)
	if err != nil {
		return -1, err
	}
	defer unix.Close(top)
	return s.openDir(top, runID, create)
}

// encode writes key with every byte but letters, digits, '-' and '_' as %XX,
// so a key never names another folder, a hidden file, or holds a '.'.
func encode(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func randHex() string { return randID() }

// create makes file name in dirfd exclusively (never through a link) and
// writes b into it, synced.
func create(dirfd int, dir, name string, b []byte, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(dir, name), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, name))
	defer f.Close()
	_ = unix.Fchmod(fd, mode)
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// readFile reads name in dirfd if it is a plain file with one name.
func readFile(dirfd int, dir, name string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, name))
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		return nil, fmt.Errorf("%s is not a plain file with one name; refusing to read it", filepath.Join(dir, name))
	}
	return io.ReadAll(io.LimitReader(f, maxFile))
}

// entries lists the names in dirfd that start with prefix and end in .json.
func entries(dirfd int, prefix string) ([]string, error) {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(dup), "approvals")
	defer d.Close()
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, jsonExt) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Ask implements Store: written under a temporary name, then renamed over
// the previous record, so a reader sees the old record or the new one.
func (s *FileStore) Ask(ctx context.Context, req Request) error {
	fd, err := s.runDir(req.RunID, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_, fm := s.modes()
	dir := filepath.Join(s.dir, req.RunID)
	tmp := tmpPrefix + randHex()
	if err := create(fd, dir, tmp, b, fm); err != nil {
		return fmt.Errorf("record the wait for approval: %w", err)
	}
	if err := unix.Renameat(fd, tmp, fd, askPrefix+encode(req.Key())+jsonExt); err != nil {
		_ = unix.Unlinkat(fd, tmp, 0)
		return fmt.Errorf("record the wait for approval in %s: %w", dir, err)
	}
	return unix.Fsync(fd)
}

// Requests implements Store.
func (s *FileStore) Requests(ctx context.Context, runID string) ([]Request, error) {
	fd, err := s.runDir(runID, false)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	names, err := entries(fd, askPrefix)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, runID)
	var out []Request
	for _, n := range names {
		b, err := readFile(fd, dir, n)
		if errors.Is(err, unix.ENOENT) {
			continue // done meanwhile
		}
		if err != nil {
			return nil, err
		}
		var r Request
		if json.Unmarshal(b, &r) != nil || r.RunID != runID || askPrefix+encode(r.Key())+jsonExt != n {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// Done implements Store.
func (s *FileStore) Done(ctx context.Context, req Request) error {
	fd, err := s.runDir(req.RunID, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Unlinkat(fd, askPrefix+encode(req.Key())+jsonExt, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove the wait for approval: %w", err)
	}
	return nil
}

// Decide implements Store.
func (s *FileStore) Decide(ctx context.Context, d Decision) error {
	if err := d.Check(); err != nil {
		return err
	}
	fd, err := s.runDir(d.RunID, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, fm := s.modes()
	name := decisionPrefix + encode(d.Key()) + "." + d.Time.UTC().Format("20060102T150405.000000000Z") + "-" + randHex() + jsonExt
	if err := create(fd, filepath.Join(s.dir, d.RunID), name, b, fm); err != nil {
		return fmt.Errorf("record the decision: %w", err)
	}
	return unix.Fsync(fd)
}

// Decisions implements Store.
func (s *FileStore) Decisions(ctx context.Context, runID, key string) ([]Decision, error) {
	fd, err := s.runDir(runID, false)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	prefix := decisionPrefix + encode(key) + "."
	names, err := entries(fd, prefix)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, runID)
	var out []Decision
	for _, n := range names {
		b, err := readFile(fd, dir, n)
		if err != nil {
			return nil, err
		}
		var d Decision
		if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &d) != nil || d.RunID != runID || d.Key() != key {
			continue // not written whole yet, or not of this wait
		}
		d.ID = strings.TrimSuffix(strings.TrimPrefix(n, prefix), jsonExt)
		out = append(out, d)
	}
	sortDecisions(out)
	return out, nil
}
