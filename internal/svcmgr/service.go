// Package svcmgr starts, stops and inspects services on a host through any
// conn.Conn, with one stateless Manager per kind: systemd, pidfile, command.
package svcmgr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/backoff"
	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/diag"
)

// DefaultWait is how long Start and Stop wait for the state they asked for when
// Service.Wait is zero.
const DefaultWait = 30 * time.Second

// State is what Status saw.
type State int

const (
	Unknown State = iota // the status command failed, or the service is between states
	Running
	Stopped
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Service says what to manage and how. Which fields apply depends on the
// manager; Validate rejects fields a manager would not use, so no setting is
// silently ignored.
type Service struct {
	Name string // systemd: the unit; otherwise the name used in messages

	Pidfile   string   // pidfile: where the pid is kept (absolute path)
	StartCmd  []string // pidfile, command: argv of the start command
	StopCmd   []string // command
	StatusCmd []string // command: exit status 0 means running, any other stopped

	Signal    string        // pidfile: stop signal, "TERM" (default), "INT", "QUIT", ...
	KillAfter time.Duration // pidfile: SIGKILL after this long; default Wait/2
	// KillWhenUnlocked (pidfile only), an absolute path, ends a stop's wait
	// early: once that file exists and no process holds a flock(2) lock on
	// it, a process still running after the stop signal is only finishing
	// its shutdown (it closed its data), and gets SIGKILL. It applies only
	// when the file was locked as the stop began; a check that cannot run
	// (no file, no flock on the host) never kills.
	KillWhenUnlocked string
	Wait             time.Duration // how long Start and Stop wait for the state; default DefaultWait

	LogFile string            // pidfile: stdout and stderr of the process, appended; default discarded
	Dir     string            // pidfile, command: working folder of the commands
	Env     map[string]string // pidfile, command: added to the commands' environment

	// Ready, when set, says whether the started process serves (pidfile
	// only): a start is done once it does, rather than after StartSettle.
	// ok false with a nil error means "not yet"; an error ends the start.
	Ready func(ctx context.Context) (ok bool, seen string, err error)

	// Become and BecomeUser are set on every command the manager runs.
	Become     bool
	BecomeUser string
}

// Result says what Start or Stop did.
type Result struct {
	// Changed is false when the service already was in the state asked for.
	Changed bool
	// Before is the state found before anything was done; Unknown when
	// the check failed. Callers report it rather than check again, which
	// would add a round trip before a stop signal or a start.
	Before State
	// PID is the process started, stopped or found running (pidfile only).
	PID int
	// Killed says Stop sent SIGKILL (pidfile only): because the process
	// outlived KillAfter after the stop signal, or because it still ran
	// after releasing the lock on KillWhenUnlocked (then Unlocked is set
	// too). KillReason says which, and when; callers should report it.
	Killed     bool
	Unlocked   bool
	KillReason string
	// Note says why KillWhenUnlocked did not apply to this stop, when it
	// was given and did not (the file was not locked as the stop began, or
	// could not be checked): the stop waited as it would without it.
	Note string
}

// Manager drives one kind of service. Managers keep no state between calls:
// everything they know they read from the host, so any Manager works for any
// host and after a restart of runbook.
type Manager interface {
	// Validate checks s before anything runs: required fields, values, and
	// fields this manager would not use. Problems are *FieldError values
	// joined with errors.Join.
	Validate(s Service) error
	// Start starts s unless it is running, then waits up to s.Wait for it to
	// be running. The error says what was seen last.
	Start(ctx context.Context, c conn.Conn, s Service) (Result, error)
	// Stop stops s unless it is stopped, then waits up to s.Wait for it to be
	// stopped. The error says what was seen last.
	Stop(ctx context.Context, c conn.Conn, s Service) (Result, error)
	// Status reports whether s runs. Unknown comes with an error when the
	// check itself failed, and without one when the service is between states.
	Status(ctx context.Context, c conn.Conn, s Service) (State, error)
}

// FieldError is a Validate problem with one Service field, named as in the
// Go struct ("Pidfile", "KillAfter"), for callers to map to their own keys.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var managers = map[string]Manager{
	"systemd": systemd{},
	"pidfile": pidfile{},
	"command": command{},
}

// Names returns the manager names, sorted.
func Names() []string {
	names := make([]string, 0, len(managers))
	for n := range managers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the manager called name: "systemd", "pidfile" or "command".
func Get(name string) (Manager, error) {
	if m, ok := managers[name]; ok {
		return m, nil
	}
	msg := fmt.Sprintf("unknown service manager %q; want one of %s", name, strings.Join(Names(), ", "))
	if s := diag.Suggest(name, Names()); s != "" {
		msg += "; " + s
	}
	return nil, errors.New(msg)
}

func (s Service) wait() time.Duration {
	if s.Wait > 0 {
		return s.Wait
	}
	return DefaultWait
}

// cmd returns argv as a command carrying s's become, folder and environment.
func (s Service) cmd(argv ...string) conn.Cmd {
	return conn.Cmd{Argv: argv, Dir: s.Dir, Env: s.Env, Become: s.Become, BecomeUser: s.BecomeUser}
}

// shell returns a shell command with s's become and environment; its folder is
// set by the script itself, so a bad one fails with the shell's message.
func (s Service) shell(script string) conn.Cmd {
	return conn.Cmd{Shell: script, Env: s.Env, Become: s.Become, BecomeUser: s.BecomeUser}
}

// check is one Validate rule.
type check struct {
	field string
	bad   bool
	msg   string
}

func validate(checks ...check) error {
	var errs []error
	for _, c := range checks {
		if c.bad {
			errs = append(errs, &FieldError{Field: c.field, Msg: c.msg})
		}
	}
	return errors.Join(errs...)
}

// common holds the rules every manager shares.
func common(s Service) []check {
	return []check{
		{"Name", s.Name == "", "is required"},
		{"Wait", s.Wait < 0, "must not be negative"},
	}
}

// unused rejects fields a manager does not use.
func unused(manager string, s Service, fields ...string) []check {
	set := map[string]bool{
		"Pidfile":   s.Pidfile != "",
		"StartCmd":  len(s.StartCmd) > 0,
		"StopCmd":   len(s.StopCmd) > 0,
		"StatusCmd": len(s.StatusCmd) > 0,
		"Signal":    s.Signal != "",
		"KillAfter": s.KillAfter != 0,
		"LogFile":   s.LogFile != "",
		"Dir":       s.Dir != "",
		"Env":       len(s.Env) > 0,
		"Ready":     s.Ready != nil,
	}
	var cs []check
	for _, f := range fields {
		cs = append(cs, check{f, set[f], "is not used by the " + manager + " manager; remove it"})
	}
	return cs
}

// NoKillWhenUnlocked says why manager cannot honour Service.KillWhenUnlocked,
// or "" when it can.
func NoKillWhenUnlocked(manager string) string {
	switch manager {
	case "systemd":
		// A stop through systemd is systemd's: systemctl stop returns once
		// the unit is down, and a SIGKILL sent from outside during its stop
		// job makes the unit end "failed" (Result=signal) and start its
		// OnFailure= units.
		return "is not supported by the systemd manager: systemctl stop waits until systemd has stopped the unit, " +
			"and a SIGKILL from outside during that stop leaves the unit failed (Result=signal) and starts its OnFailure= units; " +
			"leave it out for this manager (a shorter TimeoutStopSec= would kill whether the data is closed or not), or run the service with manager pidfile"
	case "command":
		return "is not supported by the command manager: it knows the service only by stop_cmd and status_cmd, " +
			"not by a process it could send SIGKILL; make stop_cmd end the shutdown, or run the service with manager pidfile"
	}
	return ""
}

func argvCheck(field string, argv []string, required bool) check {
	switch {
	case len(argv) == 0:
		return check{field, required, "is required"}
	case argv[0] == "":
		return check{field, true, "has an empty program name"}
	}
	return check{}
}

// probe checks a state once; seen describes what it saw, for messages
// ("pid 1234 still running").
type probe func(ctx context.Context) (st State, seen string, err error)

// probeSlack is how far past the wait's deadline one status check may run.
// The last check comes at the deadline and must have time to answer (over SSH
// a round trip alone takes a while), but a hung one must not hold the wait.
const probeSlack = 5 * time.Second

// await polls p until it reports want or deadline passes. done tells whether
// want was reached; seen is what p saw last.
func await(ctx context.Context, deadline time.Time, want State, p probe) (done bool, seen string, err error) {
	return awaitFunc(ctx, deadline, func(ctx context.Context) (bool, string, error) {
		st, seen, err := p(ctx)
		return st == want, seen, err
	})
}

// awaitFunc polls p until it reports done or deadline passes; seen is what p
// saw last.
func awaitFunc(ctx context.Context, deadline time.Time, p func(ctx context.Context) (done bool, seen string, err error)) (done bool, seen string, err error) {
	// Quick at first, because most state changes are fast and every wait
	// past one adds to a member's outage; slower later, so a long wait over
	// SSH does not flood the host.
	return awaitWith(ctx, deadline, &backoff.Backoff{}, p)
}

// awaitWith is awaitFunc with the intervals of b.
func awaitWith(ctx context.Context, deadline time.Time, b *backoff.Backoff, p func(ctx context.Context) (done bool, seen string, err error)) (done bool, seen string, err error) {
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline.Add(probeSlack))
		ok, s, err := p(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return false, seen, err
		}
		if err != nil {
			if timedOut {
				return false, "the status check did not answer", nil
			}
			return false, seen, err
		}
		seen = s
		if ok {
			return true, seen, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, seen, nil
		}
		t := time.NewTimer(min(b.Next(), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, seen, ctx.Err()
		case <-t.C:
		}
	}
}

// runBounded runs c with ctx bounded by deadline and says so when the deadline
// was what stopped it.
func runBounded(ctx context.Context, c conn.Conn, deadline time.Time, cmd conn.Cmd) (conn.Output, error) {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	out, err := c.Run(rctx, cmd)
	if err != nil && ctx.Err() == nil && rctx.Err() != nil {
		return out, fmt.Errorf("%s did not finish in time: %w", cmd, err)
	}
	return out, err
}

// dur prints a duration as users write it in runbooks: 60s rather than 1m0s.
func dur(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// trimOut returns command output as one short, clean string for messages.
func trimOut(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}
