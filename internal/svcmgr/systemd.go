package svcmgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
)

// systemd drives a unit with systemctl. systemd itself handles signals,
// timeouts, logs and the environment, so those fields are refused.
type systemd struct{}

func (systemd) Validate(s Service) error {
	cs := common(s)
	cs = append(cs, check{"Name", strings.HasPrefix(s.Name, "-"), "a unit name cannot start with '-'"})
	cs = append(cs, unused("systemd", s, "Pidfile", "StartCmd", "StopCmd", "StatusCmd", "Signal", "KillAfter", "LogFile", "Dir", "Env")...)
	return validate(cs...)
}

// isActive runs `systemctl is-active` and maps what it prints, then its exit
// status, to a State. It prints one word: active, reloading, activating,
// deactivating, inactive, failed. Older systemd versions exit 3 for any
// state that is not active, and some print "unknown" for a unit that does not
// exist; the word is the more precise of the two, so it wins.
// It returns the word printed.
func (systemd) isActive(ctx context.Context, c conn.Conn, s Service) (State, string, error) {
	out, err := c.Run(ctx, s.cmd("systemctl", "is-active", s.Name))
	word := strings.TrimSpace(string(out.Stdout))
	switch word {
	case "active", "reloading", "refreshing":
		return Running, word, nil
	case "inactive", "failed", "dead":
		return Stopped, word, nil
	case "activating", "deactivating", "maintenance":
		return Unknown, word, nil
	}
	var ee *conn.ExitError
	switch {
	case err == nil:
		return Running, word, nil
	case errors.As(err, &ee) && ee.ExitCode == 3:
		return Stopped, word, nil
	}
	return Unknown, word, fmt.Errorf("%s: status: %w", s.Name, err)
}

func said(word string) string { return fmt.Sprintf("systemctl is-active says %q", word) }

func (m systemd) Status(ctx context.Context, c conn.Conn, s Service) (State, error) {
	if err := m.Validate(s); err != nil {
		return Unknown, err
	}
	st, _, err := m.isActive(ctx, c, s)
	return st, err
}

func (m systemd) Start(ctx context.Context, c conn.Conn, s Service) (Result, error) {
	return m.change(ctx, c, s, "start", Running)
}

func (m systemd) Stop(ctx context.Context, c conn.Conn, s Service) (Result, error) {
	return m.change(ctx, c, s, "stop", Stopped)
}

// change runs `systemctl VERB` unless the unit already is in want, then waits
// for want. systemctl itself waits for the job, so the poll usually succeeds at
// once; it is there for units whose job returns early.
func (m systemd) change(ctx context.Context, c conn.Conn, s Service, verb string, want State) (Result, error) {
	if err := m.Validate(s); err != nil {
		return Result{}, err
	}
	st, _, err := m.isActive(ctx, c, s)
	if err != nil {
		return Result{}, err
	}
	if st == want {
		return Result{}, nil
	}
	deadline := time.Now().Add(s.wait())
	if _, err := runBounded(ctx, c, deadline, s.cmd("systemctl", verb, s.Name)); err != nil {
		return Result{}, fmt.Errorf("%s: %s failed: %w%s", s.Name, verb, err, m.journal(ctx, c, s))
	}
	failed := false
	done, seen, err := await(ctx, deadline, want, func(ctx context.Context) (State, string, error) {
		st, word, err := m.isActive(ctx, c, s)
		// A unit that failed while starting stays failed: waiting longer
		// would only hide the reason.
		if want == Running && word == "failed" {
			failed = true
			return want, said(word), nil
		}
		return st, said(word), err
	})
	switch {
	case err != nil:
		return Result{Changed: true}, fmt.Errorf("%s: waiting for %s: %w", s.Name, want, err)
	case failed:
		return Result{Changed: true}, fmt.Errorf("%s failed to start; %s%s", s.Name, seen, m.journal(ctx, c, s))
	case !done:
		return Result{Changed: true}, fmt.Errorf("%s did not %s within %s; %s%s", s.Name, verb, dur(s.wait()), seen, m.journal(ctx, c, s))
	}
	return Result{Changed: true}, nil
}

// journal returns the unit's last log lines for an error message, or nothing
// when they cannot be read: they help, but their absence must not hide the
// error they explain.
func (systemd) journal(ctx context.Context, c conn.Conn, s Service) string {
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := c.Run(jctx, s.cmd("journalctl", "-u", s.Name, "-n", "20", "--no-pager", "-q"))
	if err != nil || len(strings.TrimSpace(string(out.Stdout))) == 0 {
		return ""
	}
	return "\nlast lines of journalctl -u " + s.Name + ":\n" + strings.TrimRight(string(out.Stdout), "\n")
}
