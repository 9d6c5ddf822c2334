package hostfile

import (
	"context"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/modules"
)

// A swap after a prepare runs while the service is stopped, and its checks
// would hash the staged file, the backup and dest again: three reads of what
// may be a large binary, all inside the outage. So, in a context that asks
// for it (TrustIdentity), the digests this process computed are remembered
// with the identity of the file they were computed over (device, inode,
// size, modification and change times, as stat reports them), and a digest
// is reused only while a fresh stat shows the very same identity. Writing to
// the file, truncating, renaming another file over it, chmod and chown all
// change its change time, which no user can set back; anything that differs
// is hashed again, so a staged file tampered with after its prepare is
// verified (and replaced) as it always was. A resumed run is a new process
// and hashes everything once.
//
// It is opt-in because a change time is only as fine as the host's clock
// tick (a second on some filesystems): a same-size rewrite within the tick
// of the last stat goes unseen. The swap's files are ones nobody else
// writes (a staged file with a random name, its backup, an installed
// binary), and prepare and swap are a service stop apart; modules that
// install files other programs edit hash each file once per step anyway,
// and gain nothing from it.
var digests = struct {
	sync.Mutex
	m map[string]knownDigest
}{m: map[string]knownDigest{}}

type knownDigest struct{ id, sum string }

func digestKey(h *modules.Host, p string) string { return h.Name + "\x00" + p }

type trustKey struct{}

// TrustIdentity returns ctx in which the digests this process computed are
// reused while stat shows the file unchanged (see digests).
func TrustIdentity(ctx context.Context) context.Context {
	return context.WithValue(ctx, trustKey{}, true)
}

func trusting(ctx context.Context) bool {
	b, _ := ctx.Value(trustKey{}).(bool)
	return b
}

// Digest returns the sha256 of the regular file p of which a stat just read
// f: with TrustIdentity, the digest remembered for f's identity, or one
// computed now (and remembered).
func Digest(ctx context.Context, h *modules.Host, p string, f File) (string, error) {
	if !trusting(ctx) || f.ID == "" {
		return HostSum(ctx, h, p)
	}
	digests.Lock()
	d, ok := digests.m[digestKey(h, p)]
	digests.Unlock()
	if ok && d.id == f.ID {
		return d.sum, nil
	}
	sum, err := HostSum(ctx, h, p)
	if err != nil {
		return "", err
	}
	remember(ctx, h, p, f.ID, sum)
	return sum, nil
}

// remember records that p, with identity id (read before its content was
// hashed), has digest sum. A file changed meanwhile has another identity by
// the time anyone looks it up, and is hashed again then.
func remember(ctx context.Context, h *modules.Host, p, id, sum string) {
	if id == "" || !trusting(ctx) {
		return
	}
	digests.Lock()
	defer digests.Unlock()
	digests.m[digestKey(h, p)] = knownDigest{id: id, sum: sum}
}

// The swap after a prepare would stat dest, list the staged files, and
// lstat the staged file and the backup, one command each; inside the outage
// those round trips are most of its time. So a prepare records where it
// staged (RememberStage), and the swap reads the three files with one stat
// (ReadAhead) before it decides as always. What that one reading says
// stands in for the first read of each file only; the staged file is read
// again right before the rename, in the command that renames it
// (RenameAtOnce).
var prepared = struct {
	sync.Mutex
	m map[string]string // digestKey(host, dest) → the staged file
}{m: map[string]string{}}

// RememberStage records that a prepare of this process staged stage for
// dest; "" forgets it. Only a stage whose digest is remembered with its
// identity is recorded: where stat gives no identity (an old stat, a
// host that does not say), the read-ahead would save nothing.
func RememberStage(h *modules.Host, dest, stage string) {
	digests.Lock()
	_, known := digests.m[digestKey(h, stage)]
	digests.Unlock()
	prepared.Lock()
	defer prepared.Unlock()
	if stage == "" || !known {
		delete(prepared.m, digestKey(h, dest))
		return
	}
	prepared.m[digestKey(h, dest)] = stage
}

func preparedStage(h *modules.Host, dest string) string {
	prepared.Lock()
	defer prepared.Unlock()
	return prepared.m[digestKey(h, dest)]
}

// reading is the files read at once by ReadAhead, each served once.
type reading struct {
	mu    sync.Mutex
	files map[string]File // by path; an lstat of a regular file, so also its stat -L
	dest  string
	stage string
}

type readingKey struct{}

// ReadAhead reads dest, the file a prepare of this process staged for it
// and backup with one stat (which does not follow links), and returns ctx
// carrying what it saw. Nothing is read ahead without TrustIdentity, when no
// prepare staged for dest, when any of the three is missing or not a
// regular file, or when the stat fails: each file is then read on its own,
// as always.
func ReadAhead(ctx context.Context, h *modules.Host, dest, backup string) context.Context {
	stage := preparedStage(h, dest)
	if stage == "" || !trusting(ctx) {
		return ctx
	}
	paths := []string{dest, stage, backup}
	out, err := Run(ctx, h, append([]string{"stat", "-c", statFormat, "--"}, paths...)...)
	if err != nil {
		return ctx
	}
	lines := strings.Split(strings.TrimSuffix(string(out.Stdout), "\n"), "\n")
	if len(lines) != len(paths) {
		return ctx
	}
	r := &reading{files: map[string]File{}, dest: dest, stage: stage}
	for i, l := range lines {
		f, err := parseStat(l)
		if err != nil || !f.Regular || f.ID == "" {
			return ctx
		}
		r.files[paths[i]] = f
	}
	return context.WithValue(ctx, readingKey{}, r)
}

// readAlready returns what ReadAhead saw of p, once.
func readAlready(ctx context.Context, p string) (File, bool) {
	r, _ := ctx.Value(readingKey{}).(*reading)
	if r == nil {
		return File{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.files[p]
	delete(r.files, p)
	return f, ok
}

// stagedAlready returns the file staged for dest that ReadAhead found: the
// prepare staged it and removed the others.
func stagedAlready(ctx context.Context, dest string) string {
	r, _ := ctx.Value(readingKey{}).(*reading)
	if r == nil || r.dest != dest {
		return ""
	}
	return r.stage
}
