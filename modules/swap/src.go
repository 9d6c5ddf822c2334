package swap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/runbookhq/runbook/modules"
)

// localSum returns the sha256 of the controller file p, which must be a
// regular file.
func localSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("src: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("src: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("src: %s is not a regular file", p)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", fmt.Errorf("src: reading %s: %w", p, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// srcPath is src on the controller: relative to the runbook's folder.
func srcPath(h *modules.Host, src string) string {
	if filepath.IsAbs(src) {
		return src
	}
	return filepath.Join(h.RunbookDir, src)
}
