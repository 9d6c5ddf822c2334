//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package approval

import (
	"context"
	"fmt"
	"runtime"
)

// DirName is the file store's folder beside the run lock's.
const DirName = "approvals"

// FileStore needs the same system calls as the run lock's file store, which
// this system lacks; every operation fails.
type FileStore struct{ dir string }

// NewFileStore returns the store in folder dir.
func NewFileStore(dir string) *FileStore { return &FileStore{dir: dir} }

func (s *FileStore) String() string { return "file store " + s.dir }
func (s *FileStore) Close() error   { return nil }

func (s *FileStore) err() error {
	return fmt.Errorf("approvals in files are not supported on %s; use an etcd store (lock.etcd)", runtime.GOOS)
}

func (s *FileStore) Ask(context.Context, Request) error                  { return s.err() }
func (s *FileStore) Requests(context.Context, string) ([]Request, error) { return nil, s.err() }
func (s *FileStore) Done(context.Context, Request) error                 { return s.err() }
func (s *FileStore) Decide(context.Context, Decision) error              { return s.err() }
func (s *FileStore) Decisions(context.Context, string, string) ([]Decision, error) {
	return nil, s.err()
}
