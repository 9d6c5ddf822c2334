// Package input reads the files a user hands runbook (runbooks, inventories
// and their vars, -e @files) with a size limit, so that a wrong path such as
// /dev/zero or a runaway generated file is an error, not all the memory.
package input

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxFileSize is the most a runbook, an inventory file, a group_vars or
// host_vars file or an -e @file may hold. Real ones are kilobytes; 4 MiB
// leaves room for a generated inventory of thousands of hosts.
const MaxFileSize = 4 << 20

// TooLargeError is a file over the limit.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	// The path is left to the caller, which names the file anyway.
	return fmt.Sprintf("the file is larger than %s, the limit for an input file; is it the file you meant?", Size(e.Limit))
}

// ReadFile reads the file at path, up to MaxFileSize bytes.
func ReadFile(path string) ([]byte, error) { return ReadFileLimit(path, MaxFileSize) }

// ReadFileLimit reads the file at path, or fails with a *TooLargeError when
// it holds more than limit bytes. It reads at most limit+1 bytes whatever the
// file is: a pipe (-e @<(command)) works, /dev/zero stops at the limit.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			return nil, &os.PathError{Op: "read", Path: path, Err: errors.New("is a directory")}
		}
		if st.Mode().IsRegular() && st.Size() > limit {
			return nil, &TooLargeError{Path: path, Limit: limit}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return data, nil
}

// Size formats a byte count as the limits are written: 4 MiB, 1 MiB, 512 KiB.
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
