//go:build unix

package journal

import "syscall"

// noFollow makes opening a symbolic link fail, so that a link planted where a
// run's key goes cannot send it, or take it, elsewhere.
const noFollow = syscall.O_NOFOLLOW
