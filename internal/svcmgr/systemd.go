package svcmgr

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	cs = append(cs, check{"KillWhenUnlocked", s.KillWhenUnlocked != "", NoKillWhenUnlocked("systemd")})
	cs = append(cs, unused("systemd", s, "Pidfile", "StartCmd", "StopCmd", "StatusCmd", "Signal", "KillAfter", "LogFile", "Dir", "Env", "Ready")...)
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
func (m systemd) change(ctx context.Context, c conn.Conn, s Service, verb string, want State) (res Result, err error) {
	if err := m.Validate(s); err != nil {
		return Result{}, err
	}
	st, _, err := m.isActive(ctx, c, s)
	if err != nil {
		return Result{}, err
	}
	defer func() { res.Before = st }()
	if st == want {
		return Result{}, nil
	}
	deadline := time.Now().Add(s.wait())
	if _, err := runBounded(ctx, c, deadline, s.cmd("systemctl", verb, s.Name)); err != nil {
		return Result{}, fmt.Errorf("%s: %s failed%s: %w", s.Name, verb, m.journal(ctx, c, s), err)
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
		return Result{Changed: true}, fmt.Errorf("%s failed to start%s; %s", s.Name, m.journal(ctx, c, s), seen)
	case !done:
		return Result{Changed: true}, fmt.Errorf("%s did not %s within %s%s; %s", s.Name, verb, dur(s.wait()), m.journal(ctx, c, s), seen)
	}
	return Result{Changed: true}, nil
}

// journal says what the unit's process last wrote, on one line, for an
// error message: ", saying: ... (journalctl -u NAME)", or nothing when it
// cannot be read (it helps, but its absence must not hide the error it
// explains). Only the unit's last invocation counts: the lines before are
// the previous process's (its shutdown), not why this one failed.
func (systemd) journal(ctx context.Context, c conn.Conn, s Service) string {
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := []string{"journalctl", "-u", s.Name}
	if out, err := c.Run(jctx, s.cmd("systemctl", "show", "-p", "InvocationID", "--value", s.Name)); err == nil {
		if id := strings.TrimSpace(string(out.Stdout)); id != "" && strings.Trim(id, "0123456789abcdef") == "" {
			args = append(args, "_SYSTEMD_INVOCATION_ID="+id)
		}
	}
	args = append(args, "-n", strconv.Itoa(lastWordsLines), "--no-pager", "-q", "-o", "cat")
	out, err := c.Run(jctx, s.cmd(args...))
	if err != nil {
		return ""
	}
	words := LastWords(string(out.Stdout))
	if words == "" {
		return ""
	}
	return ", saying: " + words + " (journalctl -u " + s.Name + ")"
}
