//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package journal

import (
	"fmt"
	"os"
	"runtime"
)

// acquire fails where flock is missing: two processes writing one journal would
// corrupt it, and a journal without that guarantee is not worth having.
func acquire(path, runID string) (*os.File, error) {
	return nil, fmt.Errorf("lock run %s: journals are not supported on %s", runID, runtime.GOOS)
}

func release(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

func holder(path string) (bool, int) { return false, 0 }
