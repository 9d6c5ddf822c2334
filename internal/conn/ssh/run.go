package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// Cancelling ctx sends SIGTERM to the session (sshd signals the command's
// whole process group), then SIGKILL after the grace period, and closes the
// session. TERM comes first because sudo passes it on to the command it runs
// but cannot pass on a KILL, which would leave the command running as an
// orphan; it is also what the local transport does.
//
// A connection that breaks while the command runs returns a
// *conn.TransportError: the command may or may not have run to its end.
func (c *Conn) Run(ctx context.Context, cmd conn.Cmd) (conn.Output, error) {
	line, err := commandLine(cmd)
	if err != nil {
		return conn.Output{}, err
	}
	name := cmd.String()
	if err := ctx.Err(); err != nil {
		return conn.Output{}, fmt.Errorf("%s: not started: %w", name, err)
	}
	s, err := c.client.NewSession()
	if err != nil {
		return conn.Output{}, c.transport(fmt.Errorf("%s: opening a session: %w", name, err))
	}
	defer s.Close()
	stdout, stderr := newTail(c.limit), newTail(c.limit)
	s.Stdout, s.Stderr = stdout, stderr
	if cmd.Stdin != nil {
		s.Stdin = cmd.Stdin
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
		waitErr = c.kill(s, waited)
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

	out := conn.Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
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
	if errors.As(waitErr, &missing) {
		// Nothing says how it ended: as unknown as a lost connection.
		return out, c.transport(fmt.Errorf("%s: the host closed the session without an exit status", name))
	}
	return out, c.transport(fmt.Errorf("%s: %w", name, waitErr))
}

// kill ends a cancelled command and returns what Wait said, if it said it in time.
func (c *Conn) kill(s *ssh.Session, waited <-chan error) error {
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
	_ = s.Signal(ssh.SIGTERM)
	if err, ok := wait(c.grace); ok {
		return err
	}
	_ = s.Signal(ssh.SIGKILL)
	if err, ok := wait(c.grace); ok {
		return err
	}
	// The server did not act on the signals (it may refuse them, as sshd
	// does for a session without privilege separation): closing the
	// session is all that is left; the process may live on.
	c.log.Warn().Str("host", c.name).Msg("ssh: a cancelled command did not end on SIGTERM or SIGKILL; closing its session")
	s.Close()
	err, _ := wait(c.grace)
	return err
}

// tail keeps the last limit bytes written to it and counts what it dropped,
// so a chatty command cannot eat the controller's memory (as the local
// transport does).
type tail struct {
	mu      sync.Mutex // a killed session's copier may still write
	limit   int
	buf     []byte
	dropped int64
}

func newTail(limit int) *tail { return &tail{limit: limit} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.limit {
		t.dropped += int64(len(t.buf) + len(p) - t.limit)
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	// Compact only at twice the limit: amortised O(1) per byte.
	if len(t.buf) > 2*t.limit {
		cut := len(t.buf) - t.limit
		t.dropped += int64(cut)
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return n, nil
}

// Bytes returns the kept tail, preceded by a marker line when bytes were dropped.
func (t *tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	dropped := t.dropped
	if len(b) > t.limit {
		dropped += int64(len(b) - t.limit)
		b = b[len(b)-t.limit:]
	}
	if dropped == 0 {
		return bytes.Clone(b)
	}
	marker := fmt.Sprintf("[runbook: output truncated, %d earlier bytes dropped]\n", dropped)
	return append([]byte(marker), b...)
}
