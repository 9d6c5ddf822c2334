package ssh

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
)

// PutOptions are what PutWith adds to Put.
type PutOptions struct {
	// Become writes the file as BecomeUser (root when empty) through
	// `sudo -n`, for folders the login user may not write to. See PutWith.
	Become     bool
	BecomeUser string
	// Progress is called as data goes out with the bytes sent so far and
	// the total (-1 when src does not tell its size). Nil: Put logs a line
	// at every tenth of a file of at least ProgressMin bytes.
	Progress func(sent, total int64)
}

// ProgressMin is the size from which Put logs its progress by itself.
const ProgressMin = 16 << 20

// tidyTimeout bounds the removal of a temporary file after a failure, which
// runs even when the step's context is done.
const tidyTimeout = 10 * time.Second

// Put writes src to dest on the host atomically, as the login user: see PutWith.
func (c *Conn) Put(ctx context.Context, src io.Reader, dest string, mode fs.FileMode) error {
	return c.PutWith(ctx, src, dest, mode, PutOptions{})
}

// PutWith writes src to dest on the host atomically, as conn.Conn's Put
// says: the data is streamed over SFTP into a temporary file in dest's
// folder (created 0600, so nothing is readable before its mode is set),
// fsynced (fsync@openssh.com, every syncSlice bytes on the way and at the
// end; else sync(1) at the end), given dest's owner and group
// when dest exists (chown before chmod, which would clear setuid), given
// mode, checked with sha256sum on the host against the digest computed while
// streaming, renamed over dest (posix-rename@openssh.com, else mv), and the
// folder is synced. Like the local transport, an owner the login user may
// not give away is left as it is, and a symbolic link at dest is replaced,
// not followed.
//
// With Become the login user usually cannot write to dest's folder, and a
// file it wrote in /tmp would have to be readable by the become user (by
// everyone, when that is not root) before sudo could move it. So the data
// goes instead through the standard input of `sudo -n [-u USER] -- /bin/sh`,
// which writes it to a temporary file in dest's folder as the become user;
// a second sudo command checks the digest, sets owner and mode, syncs and
// renames. The file is never readable by anyone else, and the rename is as
// atomic as without become.
func (c *Conn) PutWith(ctx context.Context, src io.Reader, dest string, mode fs.FileMode, o PutOptions) error {
	if dest == "" {
		return errors.New("ssh: put: empty destination path")
	}
	dest = path.Clean(dest)
	total := sizeOf(src)
	progress := o.Progress
	if progress == nil && total >= ProgressMin {
		progress = LogProgress(c.log, c.name, dest)
	}
	m := &meter{ctx: ctx, r: src, h: sha256.New(), total: total, progress: progress}
	var err error
	if o.Become {
		err = c.putBecome(ctx, m, dest, mode, o.BecomeUser)
	} else {
		err = c.putSFTP(ctx, m, dest, mode)
	}
	if err == nil {
		return nil
	}
	var te *conn.TransportError
	if errors.As(err, &te) {
		return err
	}
	if c.lost() != nil {
		return c.transport(fmt.Errorf("put %s: %w", dest, err))
	}
	return fmt.Errorf("ssh: put %s: %w", dest, err)
}

func (c *Conn) putSFTP(ctx context.Context, m *meter, dest string, mode fs.FileMode) (err error) {
	sc, done, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	defer done()
	old, statErr := sc.Lstat(dest)
	switch {
	case statErr == nil && old.IsDir():
		return errors.New("is a directory")
	case statErr != nil && !errors.Is(statErr, fs.ErrNotExist):
		return fmt.Errorf("stat: %w", statErr)
	}
	dir, base := path.Split(dest)
	tmp := dir + "." + base + ".runbook-" + randomSuffix()
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("creating a temporary file in %s: %w", path.Clean(dir+"."), ctxErr(ctx, err))
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			c.removeTemp(tmp, PutOptions{})
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, ctxErr(ctx, err))
	}
	syncByCommand, err := writeSynced(ctx, f, m, tmp, syncSlice)
	if err != nil {
		return err
	}
	if statErr == nil {
		if err := c.keepOwner(f, old); err != nil {
			return fmt.Errorf("chown %s: %w", tmp, ctxErr(ctx, err))
		}
	}
	if err := f.Chmod(fs.FileMode(conn.UnixMode(mode))); err != nil {
		return fmt.Errorf("chmod %#o %s: %w", conn.UnixMode(mode), tmp, ctxErr(ctx, err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, ctxErr(ctx, err))
	}
	if err := c.verify(ctx, tmp, m.sum()); err != nil {
		return err
	}
	if syncByCommand {
		if _, err := c.Run(ctx, conn.Cmd{Argv: []string{"sync", "--", tmp}}); err != nil {
			return fmt.Errorf("the SFTP server cannot fsync, and sync failed: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); ok {
		if err := sc.PosixRename(tmp, dest); err != nil {
			return fmt.Errorf("renaming %s to %s: %w", tmp, dest, ctxErr(ctx, err))
		}
	} else if _, err := c.Run(ctx, conn.Cmd{Argv: []string{"mv", "-f", "--", tmp, dest}}); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, dest, err)
	}
	folder := path.Clean(dir + ".")
	if _, err := c.Run(ctx, conn.Cmd{Argv: []string{"sync", "--", folder}}); err != nil {
		// The file is in place; only the rename's durability across a crash is unsure.
		c.log.Warn().Err(err).Str("host", c.name).Str("folder", folder).Msg("ssh: put: written, but the folder could not be synced")
	}
	return nil
}

// syncSlice: see conn.SyncSlice; each slice is fsynced before the next goes out.
const syncSlice = conn.SyncSlice

// syncedFile is what writeSynced needs of an *sftp.File.
type syncedFile interface {
	ReadFromWithConcurrency(r io.Reader, concurrency int) (int64, error)
	Sync() error
}

// writeSynced sends all of r to f and fsyncs it: after each slice when more
// follows (a file up to one slice gets only the final fsync), and at the end.
// A server without fsync@openssh.com gets the whole file unsynced, and
// byCommand tells the caller to sync it with sync(1).
func writeSynced(ctx context.Context, f syncedFile, r io.Reader, tmp string, slice int64) (byCommand bool, err error) {
	// Peeking tells a last full slice from one that more data follows.
	br := bufio.NewReader(r)
	for {
		n, err := f.ReadFromWithConcurrency(io.LimitReader(br, slice), 64)
		if err != nil {
			return false, fmt.Errorf("writing %s: %w", tmp, ctxErr(ctx, err))
		}
		if n < slice {
			break
		}
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return false, fmt.Errorf("writing %s: %w", tmp, ctxErr(ctx, err))
		}
		if !byCommand {
			if byCommand, err = fsync(ctx, f, tmp); err != nil {
				return false, err
			}
		}
	}
	if byCommand {
		return true, nil
	}
	return fsync(ctx, f, tmp)
}

// fsync syncs f on the host, or reports that the server cannot.
func fsync(ctx context.Context, f syncedFile, tmp string) (unsupported bool, err error) {
	err = f.Sync()
	var se *sftp.StatusError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported:
		return true, nil
	}
	return false, fmt.Errorf("fsync %s: %w", tmp, ctxErr(ctx, err))
}

// keepOwner gives the temporary file the owner and group of the file it
// replaces. Only root may give a file away; the login user's own file
// stays its own, as an editor's save would.
func (c *Conn) keepOwner(f *sftp.File, old fs.FileInfo) error {
	want, ok := old.Sys().(*sftp.FileStat)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if have, ok := fi.Sys().(*sftp.FileStat); ok && have.UID == want.UID && have.GID == want.GID {
		return nil
	}
	err = f.Chown(int(want.UID), int(want.GID))
	if errors.Is(err, fs.ErrPermission) {
		c.log.Debug().Str("host", c.name).Msg("ssh: put: cannot keep the replaced file's owner without become")
		return nil
	}
	return err
}

// verify checks on the host that p holds what was sent.
func (c *Conn) verify(ctx context.Context, p, want string) error {
	out, err := c.Run(ctx, conn.Cmd{Argv: []string{"sha256sum", "--", p}})
	if err != nil {
		return fmt.Errorf("checking the uploaded file: %w", err)
	}
	got, _, _ := strings.Cut(strings.TrimPrefix(string(out.Stdout), "\\"), " ")
	if got != want {
		return fmt.Errorf("the uploaded file is not what was sent: sha256 %s on the host, %s sent", got, want)
	}
	return nil
}

// stageScript writes its standard input to a new temporary file in the
// folder of $1 and prints the file's name. It runs as the become user.
const stageScript = `set -e
dest=$1
case $dest in */*) dir=${dest%/*}; dir=${dir:-/};; *) dir=.;; esac
base=${dest##*/}
if [ -d "$dest" ] && [ ! -L "$dest" ]; then echo "$dest: is a directory" >&2; exit 1; fi
tmp=$(mktemp "$dir/.$base.runbook-XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 143' TERM
trap 'exit 129' HUP
cat >"$tmp"
trap - EXIT
printf '%s\n' "$tmp"
`

// finishScript checks the digest of $1, gives it the owner of $2 (when $2
// exists) and mode $3, syncs it and renames it over $2, then syncs the folder.
const finishScript = `set -e
tmp=$1 dest=$2 mode=$3 want=$4
trap 'rm -f -- "$tmp"' EXIT
got=$(sha256sum <"$tmp")
got=${got%% *}
if [ "$got" != "$want" ]; then echo "the uploaded file is not what was sent: sha256 $got on the host, $want sent" >&2; exit 1; fi
if [ -e "$dest" ] || [ -L "$dest" ]; then
	owner=$(stat -c %u:%g -- "$dest")
	chown "$owner" "$tmp" 2>/dev/null || [ "$(id -u)" != 0 ] || chown "$owner" "$tmp"
fi
chmod "$mode" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$dest"
trap - EXIT
sync -- "$(dirname -- "$dest")" 2>/dev/null || true
`

func (c *Conn) putBecome(ctx context.Context, m *meter, dest string, mode fs.FileMode, user string) error {
	out, err := c.Run(ctx, conn.Cmd{Argv: []string{"/bin/sh", "-c", stageScript, "sh", dest}, Stdin: m, Become: true, BecomeUser: user})
	tmp := strings.TrimSuffix(string(out.Stdout), "\n")
	dir, base := path.Split(dest)
	if dir == "" {
		dir = "./"
	}
	named := strings.HasPrefix(tmp, dir+"."+base+".runbook-") && !strings.ContainsAny(tmp, "\n\x00")
	if err != nil {
		// The source failed after the file was made: it holds a part.
		if named {
			c.removeTemp(tmp, PutOptions{Become: true, BecomeUser: user})
		}
		return fmt.Errorf("writing a temporary file beside it with sudo: %w", err)
	}
	if !named {
		return fmt.Errorf("writing a temporary file beside it with sudo: the host answered %q, not the file's name", tmp)
	}
	if err := ctx.Err(); err != nil {
		c.removeTemp(tmp, PutOptions{Become: true, BecomeUser: user})
		return err
	}
	modeArg := fmt.Sprintf("%o", conn.UnixMode(mode))
	if _, err := c.Run(ctx, conn.Cmd{Argv: []string{"/bin/sh", "-c", finishScript, "sh", tmp, dest, modeArg, m.sum()}, Become: true, BecomeUser: user}); err != nil {
		c.removeTemp(tmp, PutOptions{Become: true, BecomeUser: user})
		return err
	}
	return nil
}

// removeTemp removes a temporary file a failed Put leaves behind. It is
// tidying only: it has its own time limit, runs after the step's context is
// done, and its failure is logged, not returned.
func (c *Conn) removeTemp(p string, o PutOptions) {
	ctx, cancel := context.WithTimeout(context.Background(), tidyTimeout)
	defer cancel()
	if _, err := c.Run(ctx, conn.Cmd{Argv: []string{"rm", "-f", "--", p}, Become: o.Become, BecomeUser: o.BecomeUser}); err != nil {
		c.log.Warn().Err(err).Str("host", c.name).Str("path", p).Msg("ssh: could not remove a temporary file")
	}
}

// Get copies the file src on the host to dst over SFTP.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	err := c.get(ctx, src, dst)
	if err == nil {
		return nil
	}
	var te *conn.TransportError
	if errors.As(err, &te) {
		return err
	}
	if c.lost() != nil {
		return c.transport(fmt.Errorf("get %s: %w", src, err))
	}
	return fmt.Errorf("ssh: get %s: %w", src, ctxErr(ctx, err))
}

func (c *Conn) get(ctx context.Context, src string, dst io.Writer) error {
	sc, done, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	defer done()
	f, err := sc.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	// sftp.File's WriteTo reads ahead with concurrent requests.
	_, err = io.Copy(dst, f)
	return err
}

// sftp opens an SFTP session for one Put or Get. A session each keeps a
// cancelled transfer (whose session is closed to stop it) from touching
// another one.
func (c *Conn) sftp(ctx context.Context) (*sftp.Client, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	sc, err := sftp.NewClient(c.client, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		// EOF: the session closed under it, which a server without SFTP
		// does not do (it refuses the subsystem); the connection is gone.
		if c.lost() != nil || errors.Is(err, io.EOF) {
			return nil, nil, c.transport(fmt.Errorf("starting SFTP: %w", err))
		}
		return nil, nil, fmt.Errorf("starting SFTP (the host's sshd needs a Subsystem sftp line): %w", err)
	}
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	return sc, func() { stop(); sc.Close() }, nil
}

// ctxErr prefers the context's error to the one a closed session caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sizeOf returns src's size when it says it, else -1.
func sizeOf(src io.Reader) int64 {
	switch r := src.(type) {
	case interface{ Len() int }:
		return int64(r.Len())
	case interface{ Size() int64 }:
		return r.Size()
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return -1
}

// meter is Put's source: it stops when ctx is done, hashes what it reads
// (the digest the host's copy is checked against) and reports progress.
type meter struct {
	ctx      context.Context
	r        io.Reader
	h        hash.Hash
	n, total int64
	progress func(sent, total int64)
}

func (m *meter) Read(p []byte) (int, error) {
	if err := m.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := m.r.Read(p)
	if n > 0 {
		m.h.Write(p[:n])
		m.n += int64(n)
		if m.progress != nil {
			m.progress(m.n, m.total)
		}
	}
	return n, err
}

func (m *meter) sum() string { return hex.EncodeToString(m.h.Sum(nil)) }

// LogProgress returns a PutOptions.Progress that logs a line each time
// another tenth of the file has been sent.
func LogProgress(log zerolog.Logger, host, dest string) func(sent, total int64) {
	last := int64(0)
	return func(sent, total int64) {
		if total <= 0 {
			return
		}
		tenth := sent * 10 / total
		if tenth > last {
			last = tenth
			log.Info().Str("host", host).Str("dest", dest).Int64("sent", sent).Int64("total", total).
				Msgf("ssh: put %d%%", tenth*10)
		}
	}
}
