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

// lstat reads p itself, as inspect without its sha256: a symbolic link is
// not followed, so it is not regular.
func lstat(ctx context.Context, h *modules.Host, p string) (hostFile, error) {
	return inspectAs(ctx, h, p, false, false)
}

func inspectAs(ctx context.Context, h *modules.Host, p string, sum, follow bool) (hostFile, error) {
	_, err := run(ctx, h, "test", "-e", p)
	var ee *conn.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode == 1:
		return hostFile{}, nil
	case err != nil:
		return hostFile{}, fmt.Errorf("testing %s: %w", p, err)
	}
	stat := []string{"stat", "-c", "%f %u %g %U %G", "--", p}
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
		if f.sha256, err = hostSum(ctx, h, p); err != nil {
			return hostFile{}, err
		}
	}
	return f, nil
}

// parseStat reads `stat -c '%f %u %g %U %G'`: the raw mode in hex (type and
// permission bits, the same in every locale), uid, gid, user and group.
func parseStat(s string) (hostFile, error) {
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return hostFile{}, fmt.Errorf("unexpected answer from stat: %q", strings.TrimSpace(s))
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

// stagingPath is where a new file is prepared before it is renamed over p: in
// p's folder, so that the rename stays on one filesystem and is atomic, and
// hidden, so that globs over the folder do not pick it up.
func stagingPath(p string) string {
	dir, base := path.Split(p)
	return dir + "." + base + ".runbook-new"
}

// upload copies the controller file src to the host file dest with mode. The
// connection writes as the user it logs in as, so with become the file is
// put in a temporary file of that user first and moved into place as the
// step's user, who may write where the login user may not.
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
// -p to a staging file beside dest, then a rename.
func putBack(ctx context.Context, h *modules.Host, from, dest string) error {
	stage := stagingPath(dest)
	if _, err := run(ctx, h, "cp", "-p", "--", from, stage); err != nil {
		removeTemp(h, stage, true)
		return fmt.Errorf("copying %s beside %s: %w", from, dest, err)
	}
	if _, err := run(ctx, h, "mv", "-f", "--", stage, dest); err != nil {
		removeTemp(h, stage, true)
		return fmt.Errorf("renaming %s to %s: %w", stage, dest, err)
	}
	syncPaths(ctx, h, dest, path.Dir(dest))
	return nil
}

// keep copies dest to backup atomically (a partial backup is never seen, even
// after a crash), then makes it durable.
func keep(ctx context.Context, h *modules.Host, dest, backup string) error {
	tmp := backup + ".runbook-tmp"
	if _, err := run(ctx, h, "cp", "-p", "--", dest, tmp); err != nil {
		removeTemp(h, tmp, true)
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	if _, err := run(ctx, h, "mv", "-f", "--", tmp, backup); err != nil {
		removeTemp(h, tmp, true)
		return fmt.Errorf("backing up %s to %s: %w", dest, backup, err)
	}
	syncPaths(ctx, h, backup, path.Dir(backup))
	return nil
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", conn.UnixMode(m)) }
