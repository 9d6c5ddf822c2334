// Package local is the conn.Conn that runs commands and writes files on this
// machine, for inventory hosts with `ansible_connection: local` and for tests.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/redact"
)

// Defaults for New; see WithGrace and WithOutputLimit.
const (
	DefaultGrace       = 2 * time.Second
	DefaultOutputLimit = 4 << 20
)

// shellPath is absolute on purpose: looking "sh" up in PATH would let a PATH set
// by a runbook's env (or a hostile one) pick another program to read the script.
// /bin/sh is where POSIX systems keep it, and what system(3) itself runs.
const shellPath = "/bin/sh"

// envPath runs a command with extra variables under sudo: sudo resets the
// environment (env_reset), so variables set on sudo's own process are lost.
// /usr/bin/env is the one location every system agrees on (it is what shebang
// lines use).
const envPath = "/usr/bin/env"

// Local runs commands as child processes of this one. The zero value is not
// usable; call New.
type Local struct {
	grace time.Duration
	limit int
	// lookSudo finds sudo; a field so tests can pretend it is missing.
	lookSudo func() (string, error)
	euid     int
}

// Option changes a Local made by New.
type Option func(*Local)

// WithGrace sets how long a cancelled command's process group has between
// SIGTERM and SIGKILL, and how long Run waits for output after the command
// exited while a process it left behind still holds stdout or stderr open.
func WithGrace(d time.Duration) Option { return func(l *Local) { l.grace = d } }

// WithOutputLimit sets how many bytes of stdout and of stderr Run keeps per
// command; beyond it, the tail is kept and the head is replaced by a marker.
func WithOutputLimit(n int) Option { return func(l *Local) { l.limit = n } }

// New returns a Conn to this machine.
func New(opts ...Option) *Local {
	l := &Local{
		grace:    DefaultGrace,
		limit:    DefaultOutputLimit,
		lookSudo: func() (string, error) { return exec.LookPath("sudo") },
		euid:     os.Geteuid(),
	}
	for _, o := range opts {
		o(l)
	}
	if l.grace <= 0 {
		l.grace = DefaultGrace
	}
	if l.limit <= 0 {
		l.limit = DefaultOutputLimit
	}
	return l
}

var _ conn.Conn = (*Local)(nil)

// String names the connection in messages.
func (l *Local) String() string { return "local" }

// Close does nothing: a local connection holds no resources between commands.
func (l *Local) Close() error { return nil }

// Run runs c as a child process in its own process group. Cancelling ctx sends
// SIGTERM to the whole group, then SIGKILL to whatever is left after the grace
// period, so a command's children die with it.
//
// An executable that cannot be found or run is reported as an *conn.ExitError
// with status 127 or 126, what a shell over SSH reports for the same command, so
// callers see the same error from both transports. A command killed by a signal
// reports status 128+signal, as shells do.
func (l *Local) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	argv, env, err := l.build(c)
	if err != nil {
		return notRun(err)
	}
	if err := ctx.Err(); err != nil {
		return conn.Output{}, fmt.Errorf("%s: not started: %w", c, err)
	}
	name := c.Brief()
	// os/exec checks Dir itself only when SysProcAttr is nil; without this a
	// missing folder comes back as ENOENT on the program, a wrong reason.
	if c.Dir != "" {
		fi, err := os.Stat(c.Dir)
		if err != nil {
			return conn.Output{}, fmt.Errorf("%s: cannot start: %w", name, err)
		}
		if !fi.IsDir() {
			return conn.Output{}, fmt.Errorf("%s: cannot start: %s is not a directory", name, c.Dir)
		}
	}

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env != nil {
		// A PATH given in Env must also decide which program runs, as it
		// would for `PATH=... cmd` in a shell; exec.Command looked it up in ours.
		if p, ok := c.Env["PATH"]; ok && !strings.Contains(argv[0], "/") {
			cmd.Path, cmd.Err = lookPathIn(argv[0], p)
		}
		cmd.Env = env
	}
	cmd.Dir = c.Dir
	cmd.Stdin = c.Stdin
	stdout, stderr := conn.NewTail(l.limit), conn.NewTail(l.limit)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var cancelledAt atomic.Int64 // unix nanos; 0 while not cancelled
	cmd.Cancel = func() error {
		cancelledAt.Store(time.Now().UnixNano())
		// The group's id is the leader's pid (Setpgid with Pgid 0).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		return nil
	}
	// Bounds both the SIGTERM grace (os/exec then kills the leader and closes
	// the pipes) and the wait for pipes held open by a process the command left
	// behind after it exited on its own.
	cmd.WaitDelay = l.grace

	if err := cmd.Start(); err != nil {
		return notRun(startError(name, argv[0], err))
	}
	pgid := cmd.Process.Pid
	conn.NotifyProc(ctx, conn.Proc{PGID: pgid, Start: procStart(pgid), Boot: bootID(), Become: c.Become, BecomeUser: c.BecomeUser})
	waitErr := cmd.Wait()
	at := cancelledAt.Load()
	if at != 0 {
		l.reapGroup(pgid, time.Unix(0, at).Add(l.grace))
	}
	out := conn.Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if at != 0 {
		out.ExitCode = exitCode(cmd.ProcessState)
		cause := ctx.Err()
		if cerr := context.Cause(ctx); cerr != nil && !errors.Is(cerr, cause) {
			return out, fmt.Errorf("%s: killed: %w (%v)", name, cause, cerr)
		}
		return out, fmt.Errorf("%s: killed: %w", name, cause)
	}
	if cmd.ProcessState == nil {
		return out, fmt.Errorf("%s: %w", name, waitErr)
	}
	out.ExitCode = exitCode(cmd.ProcessState)
	if out.ExitCode != 0 {
		return out, &conn.ExitError{Cmd: name, ExitCode: out.ExitCode, Stderr: out.Stderr}
	}
	// exec.ErrWaitDelay: the command succeeded but left a process holding its
	// output open. Its result stands; output printed after it exited is lost.
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return out, fmt.Errorf("%s: %w", name, waitErr)
	}
	return out, nil
}

// reapGroup waits for the members of a cancelled command's process group to
// exit and SIGKILLs them when the grace period is over. The leader is gone
// already; its children (which may ignore SIGTERM, or be slow to clean up) are
// still in the group. Nothing can wait on processes that are not our
// children, so this polls. The group id cannot be reused by a new process while
// any member of the group lives.
func (l *Local) reapGroup(pgid int, deadline time.Time) {
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// build returns the argv to execute and its environment: ours without the
// controller's secrets, with c.Env added.
func (l *Local) build(c conn.Cmd) (argv, env []string, err error) {
	switch {
	case c.Shell != "" && len(c.Argv) > 0:
		return nil, nil, fmt.Errorf("local: command sets both Argv %q and Shell %q; set one", c.Argv, c.Shell)
	case c.Shell != "":
		argv = []string{shellPath, "-c", c.Shell}
	case len(c.Argv) == 0 || c.Argv[0] == "":
		return nil, nil, errors.New("local: empty command: Argv or Shell must be set")
	default:
		argv = c.Argv
	}
	keys := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, nil, fmt.Errorf("local: %s: invalid environment variable %q", c, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assign := make([]string, len(keys))
	for i, k := range keys {
		assign[i] = k + "=" + c.Env[k]
	}

	// Commands inherit the controller's environment, but never its own
	// secrets (RUNBOOK_SSH_PASSPHRASE): a step that prints its environment
	// would put them in the journal, and a command has no business with them.
	env = append(redact.ChildEnv(os.Environ()), assign...)
	if !c.Become {
		return argv, env, nil
	}
	sudo, err := l.lookSudo()
	if err != nil {
		// Becoming root when we already are root changes nothing, and minimal
		// hosts and containers that run as root often have no sudo at all.
		if l.euid == 0 && (c.BecomeUser == "" || c.BecomeUser == "root") {
			return argv, env, nil
		}
		// Exit 127 is what a shell over SSH reports for the same missing sudo.
		return nil, nil, &conn.ExitError{Cmd: c.String(), ExitCode: 127,
			Stderr: []byte("sudo: " + err.Error() + " (become needs sudo)\n")}
	}
	// -n: never prompt; a password prompt would hang an unattended run.
	wrapped := []string{sudo, "-n"}
	if c.BecomeUser != "" {
		wrapped = append(wrapped, "-u", c.BecomeUser)
	}
	wrapped = append(wrapped, "--")
	if len(assign) > 0 {
		if strings.Contains(argv[0], "=") {
			return nil, nil, fmt.Errorf("local: %s: a program name containing '=' cannot be run with env under become", c)
		}
		wrapped = append(wrapped, envPath)
		wrapped = append(wrapped, assign...)
	}
	// sudo gets the filtered environment too: whether it passes it on
	// depends on its configuration (env_keep, !env_reset), not on us.
	return append(wrapped, argv...), redact.ChildEnv(os.Environ()), nil
}

// notRun returns err for a command that did not start, with an Output that
// agrees with it when it is reported as an exit status.
func notRun(err error) (conn.Output, error) {
	var ee *conn.ExitError
	if errors.As(err, &ee) {
		return conn.Output{Stderr: ee.Stderr, ExitCode: ee.ExitCode}, err
	}
	return conn.Output{}, err
}

func startError(name, prog string, err error) error {
	var code int
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist) && !isChdir(err):
		code = 127
	case errors.Is(err, fs.ErrPermission) && !isChdir(err):
		code = 126
	default:
		return fmt.Errorf("%s: cannot start: %w", name, err)
	}
	reason := err
	if u := errors.Unwrap(err); u != nil {
		reason = u
	}
	stderr := fmt.Sprintf("%s: %v\n", prog, reason)
	return &conn.ExitError{Cmd: name, ExitCode: code, Stderr: []byte(stderr)}
}

func isChdir(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "chdir"
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// lookPathIn finds name in the directories of path, as a shell would.
func lookPathIn(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// procStart is the start time of process pid in clock ticks after boot, 0
// when this system has no /proc.
func procStart(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	n, err := conn.ParseStatStart(string(b))
	if err != nil {
		return 0
	}
	return n
}

// bootID is this system's boot id, "" when it has none.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})
