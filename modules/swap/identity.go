package swap

import (
	"context"
	"strings"
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

// The swap after a prepare would stat dest, list the staged files, and
// lstat the staged file and the backup, one command each; inside the outage
// those round trips are most of its time. So a prepare records where it
// staged, and the swap reads the three files with one lstat (stat takes
// several paths) before it decides as always. What that one reading says
// stands in for the first read of each file only; the staged file is read
// again right before the rename.
var prepared = struct {
	sync.Mutex
	m map[string]string // digestKey(host, dest) → the staged file
}{m: map[string]string{}}

func rememberStage(h *modules.Host, dest, stage string) {
	prepared.Lock()
	defer prepared.Unlock()
	prepared.m[digestKey(h, dest)] = stage
}

func preparedStage(h *modules.Host, dest string) string {
	prepared.Lock()
	defer prepared.Unlock()
	return prepared.m[digestKey(h, dest)]
}

// reading is the files a swap read at once, each served once.
type reading struct {
	mu    sync.Mutex
	files map[string]hostFile // by path; lstat, and for a regular file also stat -L
	stage string
}

type readingKey struct{}

// readAhead reads dest, the file a prepare staged for it and backup with one
// lstat, and returns ctx carrying what it saw. Nothing is read ahead when no
// prepare of this process staged for dest, when any of the three is missing
// or not a regular file, or when the stat fails: the swap then reads each
// file itself, as it always did.
func readAhead(ctx context.Context, h *modules.Host, dest, backup string) context.Context {
	stage := preparedStage(h, dest)
	if stage == "" {
		return ctx
	}
	paths := []string{dest, stage, backup}
	out, err := run(ctx, h, append([]string{"stat", "-c", statFormat, "--"}, paths...)...)
	if err != nil {
		return ctx
	}
	lines := strings.Split(strings.TrimSuffix(string(out.Stdout), "\n"), "\n")
	if len(lines) != len(paths) {
		return ctx
	}
	r := &reading{files: map[string]hostFile{}, stage: stage}
	for i, l := range lines {
		f, err := parseStat(l)
		if err != nil || !f.regular || f.id == "" {
			return ctx
		}
		r.files[paths[i]] = f
	}
	return context.WithValue(ctx, readingKey{}, r)
}

// readAlready returns what readAhead saw of p, once.
func readAlready(ctx context.Context, p string) (hostFile, bool) {
	r, _ := ctx.Value(readingKey{}).(*reading)
	if r == nil {
		return hostFile{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.files[p]
	delete(r.files, p)
	return f, ok
}

// stagedAlready returns the staged file readAhead found, if it did.
func stagedAlready(ctx context.Context) string {
	r, _ := ctx.Value(readingKey{}).(*reading)
	if r == nil {
		return ""
	}
	return r.stage
}
