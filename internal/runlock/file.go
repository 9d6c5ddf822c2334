//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package runlock

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
	"sync"
	"time"

	"github.com/runbookhq/runbook/internal/safedir"

	"golang.org/x/sys/unix"
)

// DirName is the folder, inside the state folder, of the file store:
//
//	locks/               0700, or 0770 when the state folder is group-writable
//	locks/<KEY>.lock     flock'ed by the run holding it; holds its record (JSON)
//	locks/audit.log      one JSON line per `runbook unlock`
//
// A process that dies, however it dies, drops its flocks with it, so a lock of
// this store is never stale: a lock that stays held belongs to a process that
// still runs (perhaps hung), and `runbook unlock` is for that.
const DirName = "locks"

const (
	lockExt   = ".lock"
	auditName = "audit.log"
	// maxRecord bounds what is read of a lock file or a record.
	maxRecord = 64 << 10
	// flockTries and flockEvery let `runbook locks`, which takes a shared lock
	// for a moment to see whether a lock is held, not refuse a run that starts
	// at that moment. A lock really held stays refused, after about 100ms.
	flockTries = 5
	flockEvery = 20 * time.Millisecond
)

// watchEvery is how often a held file lock checks that no one broke it.
var watchEvery = 2 * time.Second

// FileStore keeps locks as flock'ed files in one folder.
type FileStore struct {
	dir string // the lock folder: state/locks, or lock.dir
}

// NewFileStore returns the file store of the state folder dir (its locks/
// folder). It creates nothing: only Acquire and Break do.
func NewFileStore(dir string) *FileStore { return NewFileStoreAt(filepath.Join(dir, DirName)) }

// NewFileStoreAt returns the file store whose lock folder is dir.
func NewFileStoreAt(dir string) *FileStore { return &FileStore{dir: dir} }

func (s *FileStore) String() string { return "file store " + s.dir }

// Close implements Store.
func (s *FileStore) Close() error { return nil }

// modes are the lock folder's and files' modes (safedir.Modes).
func (s *FileStore) modes() (dir, file uint32) { return safedir.Modes(s.dir) }

// openDir opens the lock folder (safedir.Open), creating it when create is set.
func (s *FileStore) openDir(create bool) (int, error) {
	dm, _ := s.modes()
	return safedir.Open("lock folder", s.dir, -1, "", create, dm)
}

// fileName is the lock file of key: the key with every byte but letters,
// digits, '-', '_' and a '.' that does not start it written as %XX, so a key
// never names another folder or a hidden file.
func fileName(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String() + lockExt
}

// openLockFile opens the lock file name in the folder dirfd, never through a
// symbolic link, and checks that it is a plain file with one name: a hard link
// to another file would have us write our record into that file.
func (s *FileStore) openLockFile(dirfd int, name string, flags int, mode uint32) (*os.File, error) {
	path := filepath.Join(s.dir, name)
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("lock file %s is a symbolic link; refusing to follow it (remove it: runbook never makes one)", path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("lock file %s is not a plain file; refusing to use it", path)
	}
	if st.Nlink != 1 {
		f.Close()
		return nil, fmt.Errorf("lock file %s has %d names (a hard link); refusing to write into it (remove it: runbook never makes one)", path, st.Nlink)
	}
	// The umask may have taken the group's bits from a new file.
	if mode != 0 && int(st.Uid) == os.Geteuid() && uint32(st.Mode)&0o777 != mode {
		_ = unix.Fchmod(fd, mode)
	}
	return f, nil
}

// flock takes how (LOCK_EX or LOCK_SH) without waiting, retrying briefly; it
// reports false when another process holds the lock.
func flock(f *os.File, how int) (bool, error) {
	for try := 0; ; try++ {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			return false, fmt.Errorf("lock %s: %w", f.Name(), err)
		case try >= flockTries:
			return false, nil
		}
		time.Sleep(flockEvery)
	}
}

// probe reports whether a process holds the lock of f, taking a shared lock
// for a moment when none does.
func probe(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	for errors.Is(err, unix.EINTR) {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	}
	switch {
	case err == nil:
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	default:
		return false, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
}

// readRecord reads the holder record of a lock file; a record not written yet
// (the holder is between its flock and its write) gives an empty Holder.
func readRecord(f *os.File, key string) Lock {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, maxRecord))
	var l Lock
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &l) != nil {
		return Lock{Key: key}
	}
	if key != "" {
		l.Key = key
	}
	return l
}

// sameFile reports whether name in dirfd is still the file f: Break removes
// the file of a lock it breaks, so a lock taken on a removed file is no lock.
func sameFile(dirfd int, name string, f *os.File) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Fstatat(dirfd, name, &b, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// Acquire implements Store.
func (s *FileStore) Acquire(ctx context.Context, keys []string, h Holder) (Held, error) {
	keys, err := sortedKeys(keys)
	if err != nil {
		return nil, err
	}
	dirfd, err := s.openDir(true)
	if err != nil {
		return nil, err
	}
	_, fm := s.modes()
	held := &fileHeld{store: s, dirfd: dirfd, lost: newLost(), stop: make(chan struct{})}
	for i, key := range keys {
		if err := ctx.Err(); err != nil {
			held.release()
			return nil, err
		}
		f, other, err := s.lockOne(dirfd, key, fm)
		if err != nil {
			held.release()
			return nil, err
		}
		if other != nil {
			// Give back what was taken at once, so that a run racing us for
			// the same hosts is not refused on a lock we are about to drop;
			// only look at the rest, to name every holder.
			held.release()
			return nil, &HeldError{Locks: append([]Lock{*other}, s.holders(keys[i+1:])...), Store: s.String()}
		}
		held.keys = append(held.keys, key)
		held.files = append(held.files, f)
	}
	for i, f := range held.files {
		if err := writeRecord(f, Lock{Key: held.keys[i], Holder: h}); err != nil {
			held.release()
			return nil, err
		}
	}
	go held.watch(watchEvery)
	return held, nil
}

// holders returns the locks among keys that a process holds, without taking
// any; a file that cannot be read is left out (the refusal is already known).
func (s *FileStore) holders(keys []string) []Lock {
	dirfd, err := s.openDir(false)
	if err != nil {
		return nil
	}
	defer unix.Close(dirfd)
	var out []Lock
	for _, key := range keys {
		if l, ok, err := s.heldLock(dirfd, fileName(key)); err == nil && ok {
			l.Key = key
			out = append(out, l)
		}
	}
	return out
}

// lockOne takes the lock of key, or returns who holds it.
func (s *FileStore) lockOne(dirfd int, key string, mode uint32) (*os.File, *Lock, error) {
	name := fileName(key)
	for try := 0; try < 3; try++ {
		f, err := s.openLockFile(dirfd, name, unix.O_RDWR|unix.O_CREAT, mode)
		if err != nil {
			return nil, nil, err
		}
		ok, err := flock(f, unix.LOCK_EX)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		if !ok {
			l := readRecord(f, key)
			f.Close()
			return nil, &l, nil
		}
		if sameFile(dirfd, name, f) {
			return f, nil, nil
		}
		// Broken (removed) between our open and our flock: take the new file.
		f.Close()
	}
	return nil, nil, fmt.Errorf("lock %s: its file keeps being replaced; someone is breaking locks in %s", Describe(key), s.dir)
}

func writeRecord(f *os.File, l Lock) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context) ([]Lock, error) {
	dirfd, err := s.openDir(false)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	var out []Lock
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), lockExt) || !e.Type().IsRegular() {
			continue
		}
		l, ok, err := s.heldLock(dirfd, e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, l)
		}
	}
	sortLocks(out)
	return out, nil
}

// heldLock reads the lock file name when a process holds it.
func (s *FileStore) heldLock(dirfd int, name string) (Lock, bool, error) {
	f, err := s.openLockFile(dirfd, name, unix.O_RDONLY, 0)
	if errors.Is(err, unix.ENOENT) {
		return Lock{}, false, nil
	}
	if err != nil {
		return Lock{}, false, err
	}
	defer f.Close()
	held, err := probe(f)
	if err != nil || !held {
		return Lock{}, false, err
	}
	l := readRecord(f, "")
	if l.Key == "" || fileName(l.Key) != name {
		l.Key = strings.TrimSuffix(name, lockExt)
	}
	return l, true, nil
}

// Break implements Store. A lock's file is removed, so the next run makes a
// new one; a holder that still runs sees within seconds that its file is gone
// and stops starting steps.
func (s *FileStore) Break(ctx context.Context, keys []string, b Break) ([]Lock, error) {
	dirfd, err := s.openDir(true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	var broken []Lock
	for _, key := range keys {
		name := fileName(key)
		l, ok, err := s.heldLock(dirfd, name)
		if err != nil {
			return broken, err
		}
		if !ok {
			continue
		}
		l.Key = key
		if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return broken, fmt.Errorf("break lock %s: %w", Describe(key), err)
		}
		broken = append(broken, l)
	}
	b.Keys, b.Broken = keys, broken
	if b.Broken == nil {
		b.Broken = []Lock{}
	}
	_, fm := s.modes()
	if err := s.audit(dirfd, b, fm); err != nil {
		return broken, err
	}
	return broken, nil
}

func (s *FileStore) audit(dirfd int, b Break, mode uint32) error {
	line, err := json.Marshal(b)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, auditName, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("audit log %s is a symbolic link; refusing to follow it", filepath.Join(s.dir, auditName))
	}
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(s.dir, auditName))
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && int(st.Uid) == os.Geteuid() && uint32(st.Mode)&0o777 != mode {
		_ = unix.Fchmod(fd, mode)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// AuditPath is the file store's audit log.
func (s *FileStore) AuditPath() string { return filepath.Join(s.dir, auditName) }

// fileHeld is what Acquire took from a FileStore.
type fileHeld struct {
	store *FileStore
	dirfd int
	keys  []string
	files []*os.File
	*lost

	stop     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex
	released bool
}

func (h *fileHeld) Keys() []string { return h.keys }

// watch checks every few seconds that no one broke the locks; it stops with
// Release.
func (h *fileHeld) watch(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		for i, f := range h.files {
			if !h.released && !sameFile(h.dirfd, fileName(h.keys[i]), f) {
				h.lost.set(fmt.Errorf("the lock on %s was broken (runbook unlock)", Describe(h.keys[i])))
			}
		}
		h.mu.Unlock()
	}
}

// Release implements Held: it empties each record, then drops the flocks.
func (h *fileHeld) Release() error {
	h.release()
	return nil
}

func (h *fileHeld) release() {
	h.stopOnce.Do(func() { close(h.stop) })
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	for i, f := range h.files {
		if sameFile(h.dirfd, fileName(h.keys[i]), f) {
			_ = f.Truncate(0)
		}
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
	}
	if h.dirfd >= 0 {
		unix.Close(h.dirfd)
	}
}
