package swap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// hostFile is what the host says of one path.
type hostFile struct {
	exists  bool
	regular bool
	perm    fs.FileMode // the twelve permission bits, as chmod takes them
	uid     int
	gid     int
	user    string // "UNKNOWN" when the uid has no name
	group   string
	sha256  string // only when asked for, and the path is a regular file
	// id is what tells this file from any other and from itself after a
	// change (device, inode, size, modification and change times); "" when
	// stat cannot say.
	id string
}

// run runs argv on the host with the step's privileges.
func run(ctx context.Context, h *modules.Host, argv ...string) (conn.Output, error) {
	return h.Conn.Run(ctx, conn.Cmd{Argv: argv, Become: h.Become, BecomeUser: h.BecomeUser})
}

// inspect reads p on the host: whether it exists, its type, mode and owner,
// and with sum its sha256. Everything is an argv (test, stat, sha256sum), so
// no path can become shell syntax. stat -L and sha256sum follow a symbolic
// link, as cp -p does when it keeps the file as backup.
func inspect(ctx context.Context, h *modules.Host, p string, sum bool) (hostFile, error) {
	return inspectAs(ctx, h, p, sum, true)
}

// inspectFile reads p itself with its sha256 when it is a regular file: a
// symbolic link is not followed, so it is not regular, and has no digest.
func inspectFile(ctx context.Context, h *modules.Host, p string) (hostFile, error) {
	return inspectAs(ctx, h, p, true, false)
}

// lstat reads p itself, as inspect without its sha256: a symbolic link is
// not followed, so it is not regular.
func lstat(ctx context.Context, h *modules.Host, p string) (hostFile, error) {
	return inspectAs(ctx, h, p, false, false)
}

func inspectAs(ctx context.Context, h *modules.Host, p string, sum, follow bool) (hostFile, error) {
	if f, ok := readAlready(ctx, p); ok {
		// A regular file read ahead: its lstat is its stat.
		if sum {
			var err error
			if f.sha256, err = sumOf(ctx, h, p, f.id); err != nil {
				return hostFile{}, err
			}
		}
		return f, nil
	}
	exists := []string{"test", "-e", p}
	if !follow {
		// test -e follows a link, and a dangling one is still there.
		exists = append(exists, "-o", "-L", p)
	}
	_, err := run(ctx, h, exists...)
	var ee *conn.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode == 1:
		return hostFile{}, nil
	case err != nil:
		return hostFile{}, fmt.Errorf("testing %s: %w", p, err)
	}
	stat := []string{"stat", "-c", statFormat, "--", p}
	if follow {
		stat = slices.Insert(stat, 1, "-L")
	}
	out, err := run(ctx, h, stat...)
	if err != nil {
		return hostFile{}, fmt.Errorf("reading the mode and owner of %s: %w", p, err)
	}
	f, err := parseStat(string(out.Stdout))
	if err != nil {
		return hostFile{}, fmt.Errorf("reading the mode and owner of %s: %w", p, err)
	}
	if sum && f.regular {
		if f.sha256, err = sumOf(ctx, h, p, f.id); err != nil {
			return hostFile{}, err
		}
	}
	return f, nil
}

// statFormat asks stat for the raw mode in hex (type and permission bits, the
// same in every locale), uid, gid, user and group, then the file's identity:
// device, inode, size, and the modification and change times to the
// nanosecond where the host's stat shows them.
const statFormat = "%f %u %g %U %G %d %i %s %y %z"

// parseStat reads a stat of statFormat.
func parseStat(s string) (hostFile, error) {
	fields := strings.Fields(s)
	if len(fields) < 5 {
		return hostFile{}, fmt.Errorf("unexpected answer from stat: %q", strings.TrimSpace(s))
	}
	id := ""
	if len(fields) > 8 {
		id = strings.Join(fields[5:], " ")
	}
	raw, err1 := strconv.ParseUint(fields[0], 16, 32)
	uid, err2 := strconv.Atoi(fields[1])
	gid, err3 := strconv.Atoi(fields[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return hostFile{}, fmt.Errorf("unexpected answer from stat: %q", strings.TrimSpace(s))
	}
	const typeMask, regular = 0o170000, 0o100000
	return hostFile{
		exists:  true,
		regular: raw&typeMask == regular,
		perm:    fs.FileMode(raw & 0o7777),
		uid:     uid,
		gid:     gid,
		user:    fields[3],
		group:   fields[4],
		id:      id,
	}, nil
}

// hostSum returns the sha256 of p as sha256sum on the host computes it.
func hostSum(ctx context.Context, h *modules.Host, p string) (string, error) {
	out, err := run(ctx, h, "sha256sum", "--", p)
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
	id := localID(fi)
	if sum, ok := localDigest(p, id); ok {
		return sum, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("src: reading %s: %w", p, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	rememberLocal(p, id, sum)
	return sum, nil
}

// srcPath is src on the controller: relative to the runbook's folder.
func srcPath(h *modules.Host, src string) string {
	if filepath.IsAbs(src) {
		return src
	}
	return filepath.Join(h.RunbookDir, src)
}

// stagePrefix is how the name of a file staged to replace p begins: in p's
// folder, so that the rename stays on one filesystem and is atomic, and
// hidden, so that globs over the folder do not pick it up. The rest of the
// name is random (see makeTemp).
func stagePrefix(p string) string { return tempPrefix(p, ".runbook-new.") }

// tempPrefix is p's folder, a dot, p's name and suffix.
func tempPrefix(p, suffix string) string {
	return path.Join(path.Dir(p), "."+path.Base(p)+suffix)
}

// isStageOf reports whether stage is named as a file staged for dest.
func isStageOf(stage, dest string) bool {
	prefix := stagePrefix(dest)
	return strings.HasPrefix(stage, prefix) && len(stage) > len(prefix) && !strings.Contains(stage[len(prefix):], "/")
}

// makeTemp creates an empty file whose name is prefix and random letters,
// with mktemp (O_EXCL, mode 0600, owned by whoever runs it), and returns its
// path. Everything the swap writes with the step's privileges goes through
// such a file: a name nobody knew in advance cannot have been planted as a
// link to something else, so the root that copies, chowns and chmods it
// never reaches past it. become runs mktemp as the step's user.
func makeTemp(ctx context.Context, h *modules.Host, prefix string, become bool) (string, error) {
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

// staged lists the files a prepare may have staged for dest: regular files
// (find -type f does not follow links, so a link is never one) named as
// stagePrefix(dest) and random letters.
func staged(ctx context.Context, h *modules.Host, dest string) ([]string, error) {
	if stage := stagedAlready(ctx); stage != "" {
		// The prepare of this run staged it and removed the others.
		return []string{stage}, nil
	}
	prefix := stagePrefix(dest)
	out, err := run(ctx, h, "find", path.Dir(dest), "-maxdepth", "1", "-type", "f", "-name", globQuote(path.Base(prefix))+"*")
	if err != nil {
		return nil, fmt.Errorf("looking for a file staged for %s: %w", dest, err)
	}
	var list []string
	for _, line := range strings.Split(string(out.Stdout), "\n") {
		if p := path.Clean(line); line != "" && isStageOf(p, dest) {
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

// upload copies the controller file src to the host file dest, a file of
// ours made by makeTemp, with mode. The connection writes as the user it
// logs in as, so with become the file is put in a temporary file of that
// user first and moved over dest as the step's user, who may write where the
// login user may not.
func upload(ctx context.Context, h *modules.Host, src, dest string, mode fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("src: %w", err)
	}
	defer f.Close()
	if !h.Become {
		if err := h.Conn.Put(ctx, f, dest, mode); err != nil {
			return fmt.Errorf("copying %s to %s: %w", src, dest, err)
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
	if err := h.Conn.Put(ctx, f, tmp, mode); err != nil {
		removeTemp(h, tmp, false)
		return fmt.Errorf("copying %s to %s: %w", src, tmp, err)
	}
	if _, err := run(ctx, h, "mv", "-f", "--", tmp, dest); err != nil {
		removeTemp(h, tmp, false)
		return fmt.Errorf("moving the uploaded file to %s: %w", dest, err)
	}
	return nil
}

// ownFile checks, without following a link, that p is a regular file: what
// the swap is about to chown, chmod or rename into place must be the file
// it made, never a link to another.
func ownFile(ctx context.Context, h *modules.Host, p string) (hostFile, error) {
	// Most often it is there: one stat says so. Otherwise the full lstat
	// says what is wrong.
	if out, err := run(ctx, h, "stat", "-c", statFormat, "--", p); err == nil {
		if f, err := parseStat(string(out.Stdout)); err == nil && f.regular {
			return f, nil
		}
	}
	f, err := lstat(ctx, h, p)
	switch {
	case err != nil:
		return f, err
	case !f.exists:
		return f, fmt.Errorf("%s, made by this step, is missing on the host", p)
	case !f.regular:
		return f, fmt.Errorf("%s, made by this step, is no longer a regular file; not following it", p)
	}
	return f, nil
}

// noLink refuses a path the swap replaces by a rename (the backup, a
// restored file) when it is there and is not a regular file: a rename onto a
// link to a folder would move the file into that folder.
func noLink(ctx context.Context, h *modules.Host, p, what string) error {
	f, err := lstat(ctx, h, p)
	if err != nil || !f.exists || f.regular {
		return err
	}
	return fmt.Errorf("%s %s is not a regular file (a symbolic link or a folder); swap replaces only a file it made or one that is a file itself: remove it", what, p)
}

// removeTemp removes a file of ours that a failed step leaves behind. It is
// tidying only, so it has its own short time limit, runs even when the
// step's context is done, and its failure is logged, not returned: the error
// that made it necessary matters more.
func removeTemp(h *modules.Host, p string, become bool) {
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

// syncPaths asks the host to write files and folders to disk, so that the
// backup is durable before dest is replaced, and a rename survives a power
// loss. GNU sync takes paths since coreutils 8.24; an older sync syncs
// everything, which is also enough. A host without sync is logged, not an
// error: the data is written, and only its durability is less sure.
func syncPaths(ctx context.Context, h *modules.Host, paths ...string) {
	_, err := run(ctx, h, append([]string{"sync", "--"}, paths...)...)
	if err != nil {
		h.Log.Warn().Err(err).Strs("paths", paths).Msg("sync failed; the change is made, but may not survive a crash of the host")
	}
}

// putBack copies the kept file from over dest atomically, keeping from: cp
// -p into a file of ours beside dest, then a rename. The caller checked that
// from is a regular file, not a link.
func putBack(ctx context.Context, h *modules.Host, from, dest string) error {
	if err := noLink(ctx, h, dest, "the file to restore"); err != nil {
		return err
	}
	stage, err := makeTemp(ctx, h, stagePrefix(dest), true)
	if err != nil {
		return err
	}
	if _, err := run(ctx, h, "cp", "-p", "--", from, stage); err != nil {
		removeTemp(h, stage, true)
		return fmt.Errorf("copying %s beside %s: %w", from, dest, err)
	}
	if _, err := ownFile(ctx, h, stage); err != nil {
		removeTemp(h, stage, true)
		return err
	}
	if _, err := run(ctx, h, "mv", "-f", "--", stage, dest); err != nil {
		removeTemp(h, stage, true)
		return fmt.Errorf("renaming %s to %s: %w", stage, dest, err)
	}
	syncPaths(ctx, h, dest, path.Dir(dest))
	return nil
}

// keep copies dest to backup atomically (a partial backup is never seen, even
// after a crash), then makes it durable. The copy goes into a file of ours
// beside backup; a backup that is a link or a folder is refused, not followed.
func keep(ctx context.Context, h *modules.Host, dest, backup string) error {
	if err := noLink(ctx, h, backup, "the backup"); err != nil {
		return err
	}
	tmp, err := makeTemp(ctx, h, tempPrefix(backup, ".runbook-tmp."), true)
	if err != nil {
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	if _, err := run(ctx, h, "cp", "-p", "--", dest, tmp); err != nil {
		removeTemp(h, tmp, true)
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	if _, err := ownFile(ctx, h, tmp); err != nil {
		removeTemp(h, tmp, true)
		return err
	}
	if _, err := run(ctx, h, "mv", "-f", "--", tmp, backup); err != nil {
		removeTemp(h, tmp, true)
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	syncPaths(ctx, h, backup, path.Dir(backup))
	return nil
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", conn.UnixMode(m)) }
