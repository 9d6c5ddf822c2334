package swap

import (
	"context"
	"sync"

	"github.com/runbookhq/runbook/modules"
)

// A swap after a prepare runs while the service is stopped, and its checks
// would hash the staged file, the backup and dest again: three reads of what
// may be a large binary, all inside the outage. So the digests this process
// computed are remembered with the identity of the file they were computed
// over (device, inode, size, modification and change times, as stat reports
// them), and a digest is reused only while a fresh lstat/stat shows the very
// same identity. Writing to the file, truncating, renaming another file over
// it, chmod and chown all change its change time, which no user can set
// back; anything that differs is hashed again, so a staged file tampered
// with after its prepare is verified (and replaced) as it always was. A
// resumed run is a new process and hashes everything once.
var digests = struct {
	sync.Mutex
	m map[string]knownDigest
}{m: map[string]knownDigest{}}

type knownDigest struct{ id, sum string }

func digestKey(h *modules.Host, p string) string { return h.Name + "\x00" + p }

// sumOf returns the sha256 of the regular file p whose identity a stat just
// read as id: the digest remembered for that identity, or one computed now
// (and remembered).
func sumOf(ctx context.Context, h *modules.Host, p, id string) (string, error) {
	if id != "" {
		digests.Lock()
		d, ok := digests.m[digestKey(h, p)]
		digests.Unlock()
		if ok && d.id == id {
			return d.sum, nil
		}
	}
	sum, err := hostSum(ctx, h, p)
	if err != nil {
		return "", err
	}
	remember(h, p, id, sum)
	return sum, nil
}

// remember records that p, with identity id (read before its content was
// hashed), has digest sum. A file changed meanwhile has another identity by
// the time anyone looks it up, and is hashed again then.
func remember(h *modules.Host, p, id, sum string) {
	if id == "" {
		return
	}
	digests.Lock()
	defer digests.Unlock()
	digests.m[digestKey(h, p)] = knownDigest{id: id, sum: sum}
}

// localDigest returns the digest remembered for the controller file p with
// identity id (see localID).
func localDigest(p, id string) (string, bool) {
	if id == "" {
		return "", false
	}
	digests.Lock()
	defer digests.Unlock()
	d, ok := digests.m["\x00controller\x00"+p]
	return d.sum, ok && d.id == id
}

func rememberLocal(p, id, sum string) {
	if id == "" {
		return
	}
	digests.Lock()
	defer digests.Unlock()
	digests.m["\x00controller\x00"+p] = knownDigest{id: id, sum: sum}
}
