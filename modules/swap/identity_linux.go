package swap

import (
	"fmt"
	"io/fs"
	"syscall"
)

// localID is the identity of a controller file, as the host side's stat
// gives it (device, inode, size, modification and change times); "" when
// the platform does not say.
func localID(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d %d %d %d.%09d %d.%09d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}
