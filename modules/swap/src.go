package swap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/runbookhq/runbook/modules"
)

// localSum returns the sha256 of the controller file p, which must be a
// regular file, and its size as the stat before the read gave it.
func localSum(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("src: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("src: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("src: %s is not a regular file", p)
	}
	id := localID(fi)
	if sum, ok := localDigest(p, id); ok {
		return sum, fi.Size(), nil
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("src: reading %s: %w", p, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	rememberLocal(p, id, sum)
	// The size is that of the content hashed.
	return sum, n, nil
}

// srcDigests are the digests of controller files this process computed,
// with each file's identity (see localID), reused only while the file keeps
// it: the same rule as the host's (see hostfile.TrustIdentity), so that the
// prepare and the swap of one src read it once.
var srcDigests = struct {
	sync.Mutex
	m map[string]knownDigest
}{m: map[string]knownDigest{}}

type knownDigest struct{ id, sum string }

// localDigest returns the digest remembered for the controller file p with
// identity id.
func localDigest(p, id string) (string, bool) {
	if id == "" {
		return "", false
	}
	srcDigests.Lock()
	defer srcDigests.Unlock()
	d, ok := srcDigests.m[p]
	return d.sum, ok && d.id == id
}

func rememberLocal(p, id, sum string) {
	if id == "" {
		return
	}
	srcDigests.Lock()
	defer srcDigests.Unlock()
	srcDigests.m[p] = knownDigest{id: id, sum: sum}
}

// srcPath is src on the controller: relative to the runbook's folder.
func srcPath(h *modules.Host, src string) string {
	if filepath.IsAbs(src) {
		return src
	}
	return filepath.Join(h.RunbookDir, src)
}
