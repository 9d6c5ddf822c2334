package hostfile

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// KeepLink keeps dest at backup as a second hard link to dest's file
// rather than as a copy of it: no data is written, so there is no large
// flush to disk, and once dest is replaced by a rename the file it had
// lives on at backup with the very content, mode and owner it had then. The
// link is made under a new random name beside backup and renamed over it,
// so backup is never missing nor partial, and then synced (the file's data,
// should any of it not be on disk yet, and the folder).
//
// It links only a file of its own: when dest is not a regular file itself
// (a symbolic link), has other links (another path could then write into
// the backup), or when the host cannot link it there (another filesystem, a
// filesystem without hard links, protected_hardlinks, an ln without -T), it
// leaves everything as it was and returns false, and the caller copies.
// A backup that is a symbolic link or a folder is refused, as by Keep.
func KeepLink(ctx context.Context, h *modules.Host, dest, backup string) (bool, error) {
	if err := NoLink(ctx, h, backup, "the backup"); err != nil {
		return false, err
	}
	// A link changes dest's change time, and with it the identity its
	// digest is remembered with: dest is linked only when the link will
	// be kept, so a dest that is copied instead keeps it.
	out, err := Run(ctx, h, "stat", "-c", "%f %h", "--", dest)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", dest, err)
	}
	if f := strings.Fields(string(out.Stdout)); len(f) != 2 || !isRegular(f[0]) || f[1] != "1" {
		return false, nil
	}
	tmp, err := linkName(TempPrefix(backup, ".runbook-tmp."))
	if err != nil {
		return false, err
	}
	// link(2) never follows a link at its new name, and fails when the name
	// is taken; -T keeps ln from making the link inside a folder of that
	// name. Without -L, GNU ln links a symbolic link itself, which the
	// check below refuses.
	if _, err := Run(ctx, h, "ln", "-T", "--", dest, tmp); err != nil {
		var ee *conn.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			h.Log.Debug().Err(err).Str("dest", dest).Msg("cannot keep the backup as a link; copying it")
			return false, nil
		}
		return false, fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	fail := func(err error) (bool, error) {
		RemoveTemp(h, tmp, true)
		return false, err
	}
	ok, err := soleLink(ctx, h, dest, tmp)
	if err != nil || !ok {
		return fail(err)
	}
	if err := placeBackup(ctx, h, tmp, dest, backup); err != nil {
		return false, err
	}
	return true, nil
}

// soleLink reports whether tmp, just linked to dest, is a regular file
// whose only other link is dest: the same device and inode, two links.
func soleLink(ctx context.Context, h *modules.Host, dest, tmp string) (bool, error) {
	out, err := Run(ctx, h, "stat", "-c", "%f %d %i %h", "--", dest, tmp)
	if err != nil {
		return false, fmt.Errorf("reading the link %s to %s: %w", tmp, dest, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out.Stdout), "\n"), "\n")
	if len(lines) != 2 {
		return false, fmt.Errorf("reading the link %s to %s: unexpected answer from stat: %q", tmp, dest, out.Stdout)
	}
	a, b := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(a) != 4 || len(b) != 4 {
		return false, fmt.Errorf("reading the link %s to %s: unexpected answer from stat: %q", tmp, dest, out.Stdout)
	}
	return isRegular(b[0]) && strings.Join(a, " ") == strings.Join(b, " ") && b[3] == "2", nil
}

// isRegular reports whether stat's raw mode in hex (%f) is a regular file's.
func isRegular(raw string) bool {
	n, err := strconv.ParseUint(raw, 16, 32)
	const typeMask, regular = 0o170000, 0o100000
	return err == nil && n&typeMask == regular
}

// linkName names the link KeepLink makes; a test plants things there.
var linkName = tempName

// tempName is prefix and ten random letters: a name nobody could have
// planted anything at in advance, for a command that creates it and fails
// when it is taken (ln), where mktemp's file would be in the way.
func tempName(prefix string) (string, error) {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a random name: %w", err)
	}
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return prefix + string(b[:]), nil
}

// SameFile records, for TrustIdentity, the digest remembered for p as that
// of q too when a stat of q now shows the identity p's digest was
// remembered with: the same device and inode, unchanged since p was hashed.
// A backup kept as a link to dest is hashed once for both.
func SameFile(ctx context.Context, h *modules.Host, p, q string) {
	if !trusting(ctx) {
		return
	}
	digests.Lock()
	d, ok := digests.m[digestKey(h, p)]
	digests.Unlock()
	if !ok {
		return
	}
	out, err := Run(ctx, h, "stat", "-c", statFormat, "--", q)
	if err != nil {
		return
	}
	f, err := parseStat(string(out.Stdout))
	if err != nil || !f.Regular || f.ID == "" || f.ID != d.id {
		return
	}
	remember(ctx, h, q, f.ID, d.sum)
}

// DecideBySize is Decide for content of size bytes, without reading dest's
// content when it cannot be w's: when dest is a regular file whose size stat
// gives and it is another, the plan is to replace it, and its Cur.SHA256 is
// left "" for the caller to fill in once it hashes dest anyway (the backup
// kept as a link to dest is dest's file: one hash then serves both).
// Otherwise dest is hashed and decided on as by Decide.
func DecideBySize(ctx context.Context, h *modules.Host, w Want, size int64) (Plan, error) {
	var cur File
	var err error
	if w.NoFollow {
		cur, err = Lstat(ctx, h, w.Dest)
	} else {
		cur, err = Inspect(ctx, h, w.Dest, false)
	}
	if err != nil {
		return Plan{}, err
	}
	if cur.Exists && cur.Regular {
		if n, ok := sizeOf(cur); !ok || n == size {
			if cur.SHA256, err = Digest(ctx, h, w.Dest, cur); err != nil {
				return Plan{}, err
			}
		}
	}
	p, err := decide(w, cur)
	if err == nil && cur.Exists && cur.SHA256 == "" {
		p.Changed, p.Why = true, fmt.Sprintf("replaces %s (of another size than %s) and keeps it at %s", w.Dest, w.Of, w.Backup)
	}
	return p, err
}

// sizeOf is the size in bytes in f's identity (device, inode, size, ...).
func sizeOf(f File) (int64, bool) {
	fields := strings.Fields(f.ID)
	if len(fields) < 3 {
		return 0, false
	}
	n, err := strconv.ParseInt(fields[2], 10, 64)
	return n, err == nil
}

// SameFileDigest reports whether p and q are one regular file, by one stat
// of both that does not follow links: the same device, inode, size,
// modification and change times. When they are, it hashes the file once
// and returns its digest, remembered (see TrustIdentity) for both paths.
func SameFileDigest(ctx context.Context, h *modules.Host, p, q string) (sum string, same bool, err error) {
	out, err := Run(ctx, h, "stat", "-c", statFormat, "--", p, q)
	var ee *conn.ExitError
	switch {
	case errors.As(err, &ee):
		// One of them is missing (or cannot be read): not one file.
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("reading %s and %s: %w", p, q, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out.Stdout), "\n"), "\n")
	if len(lines) != 2 {
		return "", false, fmt.Errorf("reading %s and %s: unexpected answer from stat: %q", p, q, out.Stdout)
	}
	a, err1 := parseStat(lines[0])
	b, err2 := parseStat(lines[1])
	if err := errors.Join(err1, err2); err != nil {
		return "", false, fmt.Errorf("reading %s and %s: %w", p, q, err)
	}
	if !a.Regular || !b.Regular || a.ID == "" || a.ID != b.ID {
		return "", false, nil
	}
	if sum, err = HostSum(ctx, h, q); err != nil {
		return "", false, err
	}
	remember(ctx, h, p, a.ID, sum)
	remember(ctx, h, q, b.ID, sum)
	return sum, true, nil
}
