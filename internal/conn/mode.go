package conn

import "io/fs"

// UnixMode returns m as the twelve permission bits chmod(2) takes. It accepts
// both spellings of setuid, setgid and sticky: Go's (fs.ModeSetuid, ...) and
// the octal one users write ("4755" read as 0o4755), whose bits fs.FileMode
// leaves unused. Every transport applies modes through it, so both mean the same.
func UnixMode(m fs.FileMode) uint32 {
	u := uint32(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
