//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
)

// lockRetries and lockRetryEvery bound how long acquire tries a lock that is
// held. `runbook runs` takes each lock for a moment to see whether its run is
// live; without the retries a resume started at that moment would fail. A run
// that is really in use stays locked, and acquire gives up in about 100ms.
const (
	lockRetries    = 5
	lockRetryEvery = 20 * time.Millisecond
)

// acquire takes the exclusive lock on path, creating the file, and writes this
// process's pid into it for the error the next process will see.
func acquire(path, runID string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock run %s: %w", runID, err)
	}
	for try := 0; ; try++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock run %s: %w", runID, err)
		}
		if try == lockRetries {
			pid := readPID(f)
			f.Close()
			return nil, &LockedError{RunID: runID, PID: pid, Lock: path}
		}
		time.Sleep(lockRetryEvery)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err != nil {
		release(f)
		return nil, fmt.Errorf("lock run %s: %w", runID, err)
	}
	if _, err := f.WriteAt(pid, 0); err != nil {
		release(f)
		return nil, fmt.Errorf("lock run %s: %w", runID, err)
	}
	return f, nil
}

// release drops the lock. The lock file stays: removing it would let a process
// that opened it before the removal lock a file no one else can see.
func release(f *os.File) {
	if f == nil {
		return
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}

// holder reports whether a process holds the lock at path, and its pid. It
// takes a shared lock for a moment, which acquire's retries allow for.
func holder(path string) (bool, int) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false, 0
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, readPID(f)
	}
	return false, 0
}

func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0
	}
	return pid
}
