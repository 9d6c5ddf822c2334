// Package hostfile installs files on a host the way swap does, for every
// module that writes one (swap, template, copy): staged beside the target
// under a name nobody could guess, checked with lstat before it is chowned,
// chmodded or renamed, its sha256 checked on the host, the replaced file kept
// as a backup, and an undo that puts it back or removes what was created.
package hostfile

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// File is what the host says of one path.
type File struct {
	Exists  bool
	Regular bool
	Perm    fs.FileMode // the twelve permission bits, as chmod takes them
	UID     int
	GID     int
	User    string // "UNKNOWN" when the uid has no name
	Group   string
	SHA256  string // only when asked for, and the path is a regular file
	// ID is what tells this file from any other and from itself after a
	// change (device, inode, size, modification and change times); "" when
	// stat cannot say.
	ID string
}

// Run runs argv on the host with the step's privileges.
func Run(ctx context.Context, h *modules.Host, argv ...string) (conn.Output, error) {
	return h.Conn.Run(ctx, conn.Cmd{Argv: argv, Become: h.Become, BecomeUser: h.BecomeUser})
}

// Inspect reads p on the host: whether it exists, its type, mode and owner,
// and with sum its sha256. Everything is an argv (test, stat, sha256sum), so
// no path can become shell syntax. stat -L and sha256sum follow a symbolic
// link, as cp -p does when it keeps the file as backup.
func Inspect(ctx context.Context, h *modules.Host, p string, sum bool) (File, error) {
	return inspectAs(ctx, h, p, sum, true)
}

// InspectFile reads p itself with its sha256 when it is a regular file: a
// symbolic link is not followed, so it is not regular, and has no digest.
func InspectFile(ctx context.Context, h *modules.Host, p string) (File, error) {
	return inspectAs(ctx, h, p, true, false)
}

// Lstat reads p itself, as inspect without its sha256: a symbolic link is
// not followed, so it is not regular.
func Lstat(ctx context.Context, h *modules.Host, p string) (File, error) {
	return inspectAs(ctx, h, p, false, false)
}

func inspectAs(ctx context.Context, h *modules.Host, p string, sum, follow bool) (File, error) {
	if f, ok := readAlready(ctx, p); ok {
		// A regular file read ahead: its lstat is its stat.
		if sum {
			var err error
			if f.SHA256, err = Digest(ctx, h, p, f); err != nil {
				return File{}, err
			}
		}
		return f, nil
	}
	exists := []string{"test", "-e", p}
	if !follow {
		// test -e follows a link, and a dangling one is still there.
		exists = append(exists, "-o", "-L", p)
	}
	_, err := Run(ctx, h, exists...)
	var ee *conn.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode == 1:
		return File{}, nil
	case err != nil:
		return File{}, fmt.Errorf("testing %s: %w", p, err)
	}
	stat := []string{"stat", "-c", statFormat, "--", p}
	if follow {
		stat = slices.Insert(stat, 1, "-L")
	}
	out, err := Run(ctx, h, stat...)
	if err != nil {
		return File{}, fmt.Errorf("reading the mode and owner of %s: %w", p, err)
	}
	f, err := parseStat(string(out.Stdout))
	if err != nil {
		return File{}, fmt.Errorf("reading the mode and owner of %s: %w", p, err)
	}
	if sum && f.Regular {
		if f.SHA256, err = Digest(ctx, h, p, f); err != nil {
			return File{}, err
		}
	}
	return f, nil
}

// statFormat asks stat for the raw mode in hex (type and permission bits, the
// same in every locale), uid, gid, user and group, then the file's identity:
// device, inode, size, and the modification and change times to the
// nanosecond where the host's stat shows them.
const statFormat = "%f %u %g %U %G %d %i %s %y %z"

// parseStat reads a stat of statFormat. A stat that prints less than the
// identity (the times are several words) gives a File without ID, whose
// digest is never reused.
func parseStat(s string) (File, error) {
	fields := strings.Fields(s)
	if len(fields) < 5 {
		return File{}, fmt.Errorf("unexpected answer from stat: %q", strings.TrimSpace(s))
	}
	id := ""
	if len(fields) > 8 {
		id = strings.Join(fields[5:], " ")
	}
	raw, err1 := strconv.ParseUint(fields[0], 16, 32)
	uid, err2 := strconv.Atoi(fields[1])
	gid, err3 := strconv.Atoi(fields[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return File{}, fmt.Errorf("unexpected answer from stat: %q", strings.TrimSpace(s))
	}
	const typeMask, regular = 0o170000, 0o100000
	return File{
		Exists:  true,
		Regular: raw&typeMask == regular,
		Perm:    fs.FileMode(raw & 0o7777),
		UID:     uid,
		GID:     gid,
		User:    fields[3],
		Group:   fields[4],
		ID:      id,
	}, nil
}

// HostSum returns the sha256 of p as sha256sum on the host computes it.
func HostSum(ctx context.Context, h *modules.Host, p string) (string, error) {
	out, err := Run(ctx, h, "sha256sum", "--", p)
	if err != nil {
		return "", fmt.Errorf("sha256 of %s: %w", p, err)
	}
	// sha256sum escapes a name holding a newline or a backslash and then
	// starts the line with a backslash.
	sum, _, _ := strings.Cut(strings.TrimPrefix(string(out.Stdout), `\`), " ")
	if _, err := hex.DecodeString(sum); err != nil || len(sum) != 64 {
		return "", fmt.Errorf("sha256 of %s: unexpected answer from sha256sum: %q", p, strings.TrimSpace(string(out.Stdout)))
	}
	return strings.ToLower(sum), nil
}

// StagePrefix is how the name of a file staged to replace p begins: in p's
// folder, so that the rename stays on one filesystem and is atomic, and
// hidden, so that globs over the folder do not pick it up. The rest of the
// name is random (see makeTemp).
func StagePrefix(p string) string { return TempPrefix(p, ".runbook-new.") }

// TempPrefix is p's folder, a dot, p's name and suffix.
func TempPrefix(p, suffix string) string {
	return path.Join(path.Dir(p), "."+path.Base(p)+suffix)
}

// IsStageOf reports whether stage is named as a file staged for dest.
func IsStageOf(stage, dest string) bool {
	prefix := StagePrefix(dest)
	return strings.HasPrefix(stage, prefix) && len(stage) > len(prefix) && !strings.Contains(stage[len(prefix):], "/")
}

// MakeTemp creates an empty file whose name is prefix and random letters,
// with mktemp (O_EXCL, mode 0600, owned by whoever runs it), and returns its
// path. Everything a module writes with the step's privileges goes through
// such a file: a name nobody knew in advance cannot have been planted as a
// link to something else, so the root that copies, chowns and chmods it
// never reaches past it. become runs mktemp as the step's user.
func MakeTemp(ctx context.Context, h *modules.Host, prefix string, become bool) (string, error) {
	dir := path.Dir(prefix)
	c := conn.Cmd{Argv: []string{"mktemp", "-p", dir, path.Base(prefix) + "XXXXXXXXXX"}}
	if become {
		c.Become, c.BecomeUser = h.Become, h.BecomeUser
	}
	out, err := h.Conn.Run(ctx, c)
	if err != nil {
		return "", fmt.Errorf("making a file in %s: %w", dir, err)
	}
	p := strings.TrimSpace(string(out.Stdout))
	if strings.Contains(p, "\n") || !strings.HasPrefix(path.Clean(p), prefix) {
		return "", fmt.Errorf("making a file in %s: mktemp printed %q, not a path starting with %s", dir, p, prefix)
	}
	return path.Clean(p), nil
}

// Staged lists the files a prepare may have staged for dest: regular files
// (find -type f does not follow links, so a link is never one) named as
// StagePrefix(dest) and random letters.
func Staged(ctx context.Context, h *modules.Host, dest string) ([]string, error) {
	if stage := stagedAlready(ctx, dest); stage != "" {
		// The prepare of this run staged it and removed the others.
		return []string{stage}, nil
	}
	prefix := StagePrefix(dest)
	out, err := Run(ctx, h, "find", path.Dir(dest), "-maxdepth", "1", "-type", "f", "-name", globQuote(path.Base(prefix))+"*")
	if err != nil {
		return nil, fmt.Errorf("looking for a file staged for %s: %w", dest, err)
	}
	var list []string
	for _, line := range strings.Split(string(out.Stdout), "\n") {
		if p := path.Clean(line); line != "" && IsStageOf(p, dest) {
			list = append(list, p)
		}
	}
	return list, nil
}

// globQuote escapes what find's -name would read as a pattern.
func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Upload copies r (what names it in errors: a controller file, "the
// rendered template") to the host file dest, a file of ours made by MakeTemp,
// with mode. The connection writes as the user it logs in as, so with become
// the file is put in a temporary file of that user first and moved over dest
// as the step's user, who may write where the login user may not.
func Upload(ctx context.Context, h *modules.Host, r io.Reader, what, dest string, mode fs.FileMode) error {
	if !h.Become {
		if err := h.Conn.Put(ctx, r, dest, mode); err != nil {
			return fmt.Errorf("copying %s to %s: %w", what, dest, err)
		}
		return nil
	}
	out, err := h.Conn.Run(ctx, conn.Cmd{Argv: []string{"mktemp"}})
	if err != nil {
		return fmt.Errorf("making a temporary file on the host: %w", err)
	}
	tmp := strings.TrimSpace(string(out.Stdout))
	if !strings.HasPrefix(tmp, "/") || strings.Contains(tmp, "\n") {
		return fmt.Errorf("making a temporary file on the host: mktemp printed %q, not a path", tmp)
	}
	if err := h.Conn.Put(ctx, r, tmp, mode); err != nil {
		RemoveTemp(h, tmp, false)
		return fmt.Errorf("copying %s to %s: %w", what, tmp, err)
	}
	if _, err := Run(ctx, h, "mv", "-f", "--", tmp, dest); err != nil {
		RemoveTemp(h, tmp, false)
		return fmt.Errorf("moving the uploaded file to %s: %w", dest, err)
	}
	return nil
}

// OwnFile checks, without following a link, that p is a regular file: what
// the module is about to chown, chmod or rename into place must be the file
// it made, never a link to another.
func OwnFile(ctx context.Context, h *modules.Host, p string) (File, error) {
	// Most often it is there: one stat (which does not follow a link) says
	// so. Otherwise the full lstat says what is wrong.
	if out, err := Run(ctx, h, "stat", "-c", statFormat, "--", p); err == nil {
		if f, err := parseStat(string(out.Stdout)); err == nil && f.Regular {
			return f, nil
		}
	}
	f, err := Lstat(ctx, h, p)
	switch {
	case err != nil:
		return f, err
	case !f.Exists:
		return f, errStageMissing(p)
	case !f.Regular:
		return f, errStageNotRegular(p)
	}
	return f, nil
}

// errStageMissing and errStageNotRegular say what is wrong with a file a
// step made beside its target (OwnFile, RenameAtOnce).
func errStageMissing(p string) error {
	return fmt.Errorf("%s, made by this step, is missing on the host", p)
}

func errStageNotRegular(p string) error {
	return fmt.Errorf("%s, made by this step, is no longer a regular file; not following it", p)
}

// NoLink refuses a path a module replaces by a rename (the backup, a
// restored file) when it is there and is not a regular file: a rename onto a
// link to a folder would move the file into that folder.
func NoLink(ctx context.Context, h *modules.Host, p, what string) error {
	f, err := Lstat(ctx, h, p)
	if err != nil || !f.Exists || f.Regular {
		return err
	}
	return fmt.Errorf("%s %s is not a regular file (a symbolic link or a folder); runbook replaces only a file it made or one that is a file itself: remove it", what, p)
}

// RemoveTemp removes a file of ours that a failed step leaves behind. It is
// tidying only, so it has its own short time limit, runs even when the
// step's context is done, and its failure is logged, not returned: the error
// that made it necessary matters more.
func RemoveTemp(h *modules.Host, p string, become bool) {
	ctx, cancel := context.WithTimeout(context.Background(), tidyTimeout)
	defer cancel()
	c := conn.Cmd{Argv: []string{"rm", "-f", "--", p}}
	if become {
		c.Become, c.BecomeUser = h.Become, h.BecomeUser
	}
	if _, err := h.Conn.Run(ctx, c); err != nil {
		h.Log.Warn().Err(err).Str("path", p).Msg("could not remove a temporary file")
	}
}

// SyncPaths asks the host to write files and folders to disk, so that the
// backup is durable before dest is replaced, and a rename survives a power
// loss. GNU sync takes paths since coreutils 8.24; an older sync syncs
// everything, which is also enough. A host without sync is logged, not an
// error: the data is written, and only its durability is less sure.
func SyncPaths(ctx context.Context, h *modules.Host, paths ...string) {
	_, err := Run(ctx, h, append([]string{"sync", "--"}, paths...)...)
	if err != nil {
		warnSync(h, err, paths)
	}
}

// warnSync logs a failed sync: not an error, since the change is made.
func warnSync(h *modules.Host, err error, paths []string) {
	h.Log.Warn().Err(err).Strs("paths", paths).Msg("sync failed; the change is made, but may not survive a crash of the host")
}

// PutBack copies the kept file from over dest atomically, keeping from: cp
// -p into a file of ours beside dest, then a rename. The caller checked that
// from is a regular file, not a link.
func PutBack(ctx context.Context, h *modules.Host, from, dest string) error {
	if err := NoLink(ctx, h, dest, "the file to restore"); err != nil {
		return err
	}
	stage, err := MakeTemp(ctx, h, StagePrefix(dest), true)
	if err != nil {
		return err
	}
	if _, err := Run(ctx, h, "cp", "-p", "--", from, stage); err != nil {
		RemoveTemp(h, stage, true)
		return fmt.Errorf("copying %s beside %s: %w", from, dest, err)
	}
	if _, err := OwnFile(ctx, h, stage); err != nil {
		RemoveTemp(h, stage, true)
		return err
	}
	if _, err := Run(ctx, h, "mv", "-f", "--", stage, dest); err != nil {
		RemoveTemp(h, stage, true)
		return fmt.Errorf("renaming %s to %s: %w", stage, dest, err)
	}
	SyncPaths(ctx, h, dest, path.Dir(dest))
	return nil
}

// Keep copies dest to backup atomically (a partial backup is never seen, even
// after a crash), then makes it durable. The copy goes into a file of ours
// beside backup; a backup that is a link or a folder is refused, not followed.
func Keep(ctx context.Context, h *modules.Host, dest, backup string) error {
	if err := NoLink(ctx, h, backup, "the backup"); err != nil {
		return err
	}
	tmp, err := MakeTemp(ctx, h, TempPrefix(backup, ".runbook-tmp."), true)
	if err != nil {
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	if _, err := Run(ctx, h, "cp", "-p", "--", dest, tmp); err != nil {
		RemoveTemp(h, tmp, true)
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	if _, err := OwnFile(ctx, h, tmp); err != nil {
		RemoveTemp(h, tmp, true)
		return err
	}
	return placeBackup(ctx, h, tmp, dest, backup)
}

// placeBackup renames tmp, a file of ours that holds dest, over backup and
// makes that durable; on an error tmp is removed.
func placeBackup(ctx context.Context, h *modules.Host, tmp, dest, backup string) error {
	if _, err := Run(ctx, h, "mv", "-f", "--", tmp, backup); err != nil {
		RemoveTemp(h, tmp, true)
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	SyncPaths(ctx, h, backup, path.Dir(backup))
	return nil
}

func ModeString(m fs.FileMode) string { return fmt.Sprintf("%04o", conn.UnixMode(m)) }

// tidyTimeout bounds the removal of a temporary file after a failure.
const tidyTimeout = 10 * time.Second

// IsStageLike reports whether p is named as TempPrefix(of, suffix) and
// something without a slash: a name a module made beside of.
func IsStageLike(p, of, suffix string) bool {
	prefix := TempPrefix(of, suffix)
	return strings.HasPrefix(p, prefix) && len(p) > len(prefix) && !strings.Contains(p[len(prefix):], "/")
}
