// Package safedir opens the folders that the file stores (run locks,
// approvals) keep their files in: without following a symbolic link, and
// refusing a folder anyone may write to, since whoever can plant a file there
// could plant a link to one of ours.
package safedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Modes are a store folder's and its files' modes: private, unless the
// folder (or, before it exists, its parent) is shared with a group (mode
// 2770 or so), whose members must then read and add each other's files.
func Modes(dir string) (dirMode, fileMode uint32) {
	fi, err := os.Stat(dir)
	if err != nil {
		fi, err = os.Stat(filepath.Dir(dir))
	}
	if err == nil && fi.Mode().Perm()&0o070 == 0o070 {
		return 0o770, 0o660
	}
	return 0o700, 0o600
}

// Open opens folder path, or name inside the open folder parent when parent
// is not -1 (path is then parent's path joined with name, for messages),
// creating it with mode when create is set. what names the folder in errors
// ("lock folder").
func Open(what, path string, parent int, name string, create bool, mode uint32) (int, error) {
	if create {
		var err error
		if parent < 0 {
			if err = os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return -1, fmt.Errorf("%s %s: %w", what, path, err)
			}
			err = unix.Mkdir(path, mode)
		} else {
			err = unix.Mkdirat(parent, name, mode)
		}
		if err == nil {
			// The umask may have taken the group's bits.
			_ = os.Chmod(path, os.FileMode(mode))
		} else if !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("%s %s: %w", what, path, err)
		}
	}
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	var fd int
	var err error
	if parent < 0 {
		fd, err = unix.Open(path, flags, 0)
	} else {
		fd, err = unix.Openat(parent, name, flags, 0)
	}
	switch {
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		return -1, fmt.Errorf("%s %s is not a folder but a symbolic link or a file; refusing to use it (remove it if no one of your team made it)", what, path)
	case err != nil:
		return -1, fmt.Errorf("%s %s: %w", what, path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if st.Mode&0o002 != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("%s %s is writable by everyone (mode %o); refusing to use it: chmod o-w it", what, path, st.Mode&0o7777)
	}
	return fd, nil
}
