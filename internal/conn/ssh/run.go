package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/runbookhq/runbook/internal/conn"
)

// Run runs c in a new session. The command line is built by commandLine:
// every word quoted, become through `sudo -n`, env through /usr/bin/env. The
// host's shell reports a program it cannot find or run as exit status 127 or
// 126, as the local transport does, and a command killed by a signal as
// 128+signal.
//
// Cancelling ctx sends SIGTERM to the command's process group, then SIGKILL
// after the grace period, and closes the session. Each signal goes two ways:
// as an SSH signal request (sshd then signals the group itself) and by kill(1)
// in a second session, because sshd refuses signal requests where it runs
// without privilege separation, which is the case for every root login. The
// kill runs with the command's become, so it reaches what sudo started. TERM
// comes first because sudo passes it on to the command but cannot pass on a
// KILL; it is also what the local transport does.
//
// A connection that breaks while the command runs returns a
// *conn.TransportError: the command may or may not have run to its end.
func (c *Conn) Run(ctx context.Context, cmd conn.Cmd) (conn.Output, error) {
	line, err := commandLine(cmd)
	if err != nil {
		return conn.Output{}, err
	}
	name := cmd.Brief()
	if err := ctx.Err(); err != nil {
		return conn.Output{}, fmt.Errorf("%s: not started: %w", name, err)
	}
	s, err := c.client.NewSession()
	if err != nil {
		return conn.Output{}, c.transport(fmt.Errorf("%s: opening a session: %w", name, err))
	}
	defer s.Close()
	stdout, stderr := conn.NewTail(c.limit), conn.NewTail(c.limit)
	pg := &pgidFilter{w: stderr, notify: func(p conn.Proc) {
		p.Become, p.BecomeUser = cmd.Become, cmd.BecomeUser
		conn.NotifyProc(ctx, p)
	}}
	s.Stdout, s.Stderr = stdout, pg
	var in *stdinReader
	if cmd.Stdin != nil {
		in = &stdinReader{r: cmd.Stdin}
		s.Stdin = in
	}
	if err := s.Start(line); err != nil {
		return conn.Output{}, c.transport(fmt.Errorf("%s: starting: %w", name, err))
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()

	var waitErr error
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		waitErr = c.kill(s, waited, pg, cmd)
		pg.flush()
		out := conn.Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: -1}
		var ee *ssh.ExitError
		if errors.As(waitErr, &ee) {
			out.ExitCode = ee.ExitStatus()
		}
		cause := ctx.Err()
		if cerr := context.Cause(ctx); cerr != nil && !errors.Is(cerr, cause) {
			return out, fmt.Errorf("%s: killed: %w (%v)", name, cause, cerr)
		}
		return out, fmt.Errorf("%s: killed: %w", name, cause)
	}

	pg.flush()
	out := conn.Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err := in.failed(); err != nil {
		// The command saw its input end early; what it did with a part is
		// not what was asked.
		out.ExitCode = -1
		if ee, ok := waitErr.(*ssh.ExitError); ok {
			out.ExitCode = ee.ExitStatus()
		}
		return out, fmt.Errorf("%s: reading its standard input: %w", name, err)
	}
	// The library reports a clean exit whose input was not all read as the
	// input copy's EOF; os/exec ignores the same broken pipe locally.
	if in != nil && waitErr == io.EOF && c.lost() == nil {
		waitErr = nil
	}
	var ee *ssh.ExitError
	switch {
	case waitErr == nil:
		return out, nil
	case errors.As(waitErr, &ee):
		out.ExitCode = ee.ExitStatus()
		return out, &conn.ExitError{Cmd: name, ExitCode: out.ExitCode, Stderr: out.Stderr}
	}
	out.ExitCode = -1
	var missing *ssh.ExitMissingError
	// A cut connection ends its sessions a moment before its reader says so.
	c.settle()
	if c.lost() != nil {
		return out, c.transport(fmt.Errorf("%s: the connection ended while it ran", name))
	}
	if errors.As(waitErr, &missing) {
		// Nothing says how it ended: as unknown as a lost connection.
		return out, c.transport(fmt.Errorf("%s: the host closed the session without an exit status", name))
	}
	return out, c.transport(fmt.Errorf("%s: %w", name, waitErr))
}

// settle waits a moment for the connection's end to be known, when a
// session ended in a way that suggests it.
func (c *Conn) settle() {
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}

// kill ends a cancelled command and returns what Wait said, if it said it in time.
func (c *Conn) kill(s *ssh.Session, waited <-chan error, pg *pgidFilter, cmd conn.Cmd) error {
	wait := func(d time.Duration) (error, bool) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case err := <-waited:
			return err, true
		case <-t.C:
			return nil, false
		}
	}
	signal := func(sig ssh.Signal) {
		_ = s.Signal(sig)
		if pgid := pg.get(); pgid > 0 {
			c.killGroup(pgid, sig, cmd)
		}
	}
	signal(ssh.SIGTERM)
	if err, ok := wait(c.grace); ok {
		return err
	}
	signal(ssh.SIGKILL)
	if err, ok := wait(c.grace); ok {
		return err
	}
	// Neither way worked (no kill on the host, sudo refused it): closing
	// the session is all that is left; the process may live on.
	c.log.Warn().Str("host", c.name).Str("cmd", cmd.String()).Msg("ssh: a cancelled command did not end on SIGTERM or SIGKILL; closing its session")
	s.Close()
	err, _ := wait(c.grace)
	return err
}

// killGroup sends sig to the process group pgid on the host, in a session
// of its own, as the command's user. Its own time limit: ctx is done.
func (c *Conn) killGroup(pgid int, sig ssh.Signal, cmd conn.Cmd) {
	ctx, cancel := context.WithTimeout(context.Background(), c.grace+5*time.Second)
	defer cancel()
	k := conn.Cmd{
		Argv:   []string{shellPath, "-c", `kill -s "$1" -- "-$2"`, "sh", string(sig), strconv.Itoa(pgid)},
		Become: cmd.Become, BecomeUser: cmd.BecomeUser,
	}
	if _, err := c.Run(ctx, k); err != nil {
		// Exit 1 when the group is gone already: it ended by itself.
		c.log.Debug().Err(err).Str("host", c.name).Int("pgid", pgid).Msg("ssh: kill")
	}
}

// pgidFilter takes the line commandLine's prefix prints out of stderr and
// keeps the process group id it names. The line comes first, unless the
// login shell's start-up files print something before it: lines before it
// are passed on, up to pgidScan bytes, after which the filter gives up.
type pgidFilter struct {
	w       io.Writer
	notify  func(conn.Proc) // told the group once it is known; may be nil
	mu      sync.Mutex
	buf     []byte
	scanned int
	done    bool
	pgid    int
}

const (
	pgidMarker = "runbook-pgid="
	pgidScan   = 4096
)

func (f *pgidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return f.w.Write(p)
	}
	f.buf = append(f.buf, p...)
	for !f.done {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			if f.scanned+len(f.buf) >= pgidScan {
				f.done = true
				break
			}
			return len(p), nil
		}
		line := f.buf[:i+1]
		if v, ok := bytes.CutPrefix(line[:i], []byte(pgidMarker)); ok {
			if p, ok := parseMarker(string(v)); ok {
				f.pgid, f.done = p.PGID, true
				f.buf = f.buf[i+1:]
				if f.notify != nil {
					f.notify(p)
				}
				break
			}
		}
		if _, err := f.w.Write(line); err != nil {
			return 0, err
		}
		f.scanned += len(line)
		f.buf = f.buf[i+1:]
		if f.scanned >= pgidScan {
			f.done = true
		}
	}
	rest := f.buf
	f.buf = nil
	if len(rest) > 0 {
		if _, err := f.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// ReadFrom copies the session's stderr with a pooled buffer (see conn.CopyPooled).
func (f *pgidFilter) ReadFrom(r io.Reader) (int64, error) { return conn.CopyPooled(f, r) }

// flush passes on a first line that never ended: it was not the marker.
func (f *pgidFilter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		f.done = true
		_, _ = f.w.Write(f.buf)
		f.buf = nil
	}
}

func (f *pgidFilter) get() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pgid
}

// stdinReader passes a command's input on and keeps the error that ended it
// early. The session sees a plain end of input instead: the library would
// otherwise leave the remote side waiting for more.
type stdinReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *stdinReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		err = io.EOF
	}
	return n, err
}

func (s *stdinReader) failed() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// tail keeps the last limit bytes written to it and counts what it dropped,
// so a chatty command cannot eat the controller's memory (as the local

// parseMarker reads what follows pgidMarker: the pid, then the text of
// /proc/PID/stat and the boot id, both empty on a host without /proc (and
// absent from older lines).
func parseMarker(v string) (conn.Proc, bool) {
	pid, rest, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 1 {
		return conn.Proc{}, false
	}
	p := conn.Proc{PGID: n}
	rest = strings.TrimSpace(rest)
	if i := strings.LastIndexByte(rest, ' '); i >= 0 || rest != "" {
		last := rest[i+1:]
		if len(last) == 36 && strings.Count(last, "-") == 4 {
			p.Boot = last
			rest = strings.TrimSpace(rest[:max(i, 0)])
		}
	}
	if rest != "" {
		p.Start, _ = conn.ParseStatStart(rest)
	}
	return p, true
}
