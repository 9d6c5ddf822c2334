// Package conn is how steps reach a host: one small interface with a local and an
// SSH implementation, so the engine never knows which transport it has.
package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Conn runs commands on one host and moves files to and from it. A Conn is safe
// for use by one step at a time; the engine opens one per host and reuses it.
type Conn interface {
	// Run runs c and waits for it. A command that ran and exited non-zero returns
	// its Output and an *ExitError; a transport failure (connection lost, session
	// refused) returns a *TransportError, because then we do not know whether the
	// command ran. Cancelling ctx kills the command (the process group locally,
	// the session remotely) and returns ctx's error wrapped.
	Run(ctx context.Context, c Cmd) (Output, error)
	// Put writes src to dest atomically: a temporary file in dest's folder,
	// fsynced, then renamed into place, so a reader never sees a partial file.
	Put(ctx context.Context, src io.Reader, dest string, mode fs.FileMode) error
	// Get copies the file src on the host to dst.
	Get(ctx context.Context, src string, dst io.Writer) error
	// String names the connection for messages: "local", "ssh://deploy@127.0.0.11:22".
	String() string
	Close() error
}

// Cmd is a command to run. Argv is run without a shell, so values from vars can
// never become shell syntax; only the shell module sets Shell.
type Cmd struct {
	Argv       []string
	Shell      string // run by /bin/sh -c; exclusive with Argv
	Stdin      io.Reader
	Env        map[string]string
	Dir        string
	Become     bool   // run through sudo -n
	BecomeUser string // sudo -u; empty means root
}

// String renders the command for logs and messages.
func (c Cmd) String() string {
	if c.Shell != "" {
		return "/bin/sh -c " + Quote(c.Shell)
	}
	return QuoteArgv(c.Argv)
}

// Brief is the command as an error shows it: a shell script of several
// lines by its first line and its length, since the whole script is in the
// runbook and would bury the error under it.
func (c Cmd) Brief() string {
	if c.Shell == "" {
		return c.String()
	}
	script := strings.TrimRight(c.Shell, "\n")
	first, _, more := strings.Cut(script, "\n")
	if !more {
		return c.String()
	}
	return fmt.Sprintf("/bin/sh -c %s (a script of %d lines)", Quote(first+" …"), strings.Count(script, "\n")+1)
}

// SyncSlice bounds the data of one Put that waits unsynced on the host: a
// larger file is fsynced each time another SyncSlice bytes were written.
// Left to the kernel, tens of megabytes of dirty pages are flushed at once,
// and a colocated database's fsync (etcd's WAL) waits behind that flush.
const SyncSlice = 8 << 20

// Output is what a command printed and how it exited.
type Output struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ExitError is a command that ran and failed.
type ExitError struct {
	Cmd      string
	ExitCode int
	Stderr   []byte
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Cmd, e.ExitCode)
	if s := lastLine(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// TransportError is a failure to reach the host or to keep the session: we do
// not know whether the command ran. The journal records it as unreachable.
type TransportError struct {
	Host string
	Err  error
}

func (e *TransportError) Error() string { return e.Host + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// IsTransport reports whether err is or wraps a *TransportError.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

func lastLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			s = s[i+1:]
			break
		}
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
