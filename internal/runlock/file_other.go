//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package runlock

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
)

// DirName is the folder, inside the state folder, of the file store.
const DirName = "locks"

// FileStore needs flock, which this system lacks: a run lock that does not
// hold is worse than none, so every operation fails.
type FileStore struct{ dir string }

// NewFileStore returns the file store of the state folder dir.
func NewFileStore(dir string) *FileStore { return NewFileStoreAt(filepath.Join(dir, DirName)) }

// NewFileStoreAt returns the file store whose lock folder is dir.
func NewFileStoreAt(dir string) *FileStore { return &FileStore{dir: dir} }

func (s *FileStore) String() string { return "file store " + s.dir }
func (s *FileStore) Close() error   { return nil }

// AuditPath is the file store's audit log.
func (s *FileStore) AuditPath() string { return filepath.Join(s.dir, "audit.log") }

func (s *FileStore) err() error {
	return fmt.Errorf("run locks in files are not supported on %s; use an etcd lock store (lock.etcd)", runtime.GOOS)
}

func (s *FileStore) Acquire(context.Context, []string, Holder) (Held, error) { return nil, s.err() }
func (s *FileStore) List(context.Context) ([]Lock, error)                    { return nil, s.err() }
func (s *FileStore) Break(context.Context, []string, Break) ([]Lock, error)  { return nil, s.err() }
