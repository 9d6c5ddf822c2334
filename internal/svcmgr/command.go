package svcmgr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
)

// command drives a service with three commands of the user's: start, stop
// and status (exit status 0 means running, any other stopped), for init
// systems and tools runbook does not know (OpenRC, runit, docker, a vendor
// script).
type command struct{}

func (command) Validate(s Service) error {
	cs := common(s)
	cs = append(cs,
		argvCheck("StartCmd", s.StartCmd, true),
		argvCheck("StopCmd", s.StopCmd, true),
		argvCheck("StatusCmd", s.StatusCmd, true),
	)
	cs = append(cs, check{"KillWhenUnlocked", s.KillWhenUnlocked != "", NoKillWhenUnlocked("command")})
	cs = append(cs, unused("command", s, "Pidfile", "Signal", "KillAfter", "LogFile", "Ready")...)
	return validate(cs...)
}

func (command) status(ctx context.Context, c conn.Conn, s Service) (State, string, error) {
	cmd := s.cmd(s.StatusCmd...)
	_, err := c.Run(ctx, cmd)
	var ee *conn.ExitError
	switch {
	case err == nil:
		return Running, fmt.Sprintf("%s exits 0", cmd), nil
	case errors.As(err, &ee):
		return Stopped, fmt.Sprintf("%s exits %d", cmd, ee.ExitCode), nil
	}
	return Unknown, "", fmt.Errorf("%s: status: %w", s.Name, err)
}

func (m command) Status(ctx context.Context, c conn.Conn, s Service) (State, error) {
	if err := m.Validate(s); err != nil {
		return Unknown, err
	}
	st, _, err := m.status(ctx, c, s)
	return st, err
}

func (m command) Start(ctx context.Context, c conn.Conn, s Service) (Result, error) {
	return m.change(ctx, c, s, "start", s.StartCmd, Running)
}

func (m command) Stop(ctx context.Context, c conn.Conn, s Service) (Result, error) {
	return m.change(ctx, c, s, "stop", s.StopCmd, Stopped)
}

func (m command) change(ctx context.Context, c conn.Conn, s Service, verb string, argv []string, want State) (res Result, err error) {
	if err := m.Validate(s); err != nil {
		return Result{}, err
	}
	st, _, err := m.status(ctx, c, s)
	if err != nil {
		return Result{}, err
	}
	defer func() { res.Before = st }()
	if st == want {
		return Result{}, nil
	}
	deadline := time.Now().Add(s.wait())
	if _, err := runBounded(ctx, c, deadline, s.cmd(argv...)); err != nil {
		return Result{}, fmt.Errorf("%s: %s: %w", s.Name, verb, err)
	}
	done, seen, err := await(ctx, deadline, want, func(ctx context.Context) (State, string, error) { return m.status(ctx, c, s) })
	switch {
	case err != nil:
		return Result{Changed: true}, fmt.Errorf("%s: waiting for %s: %w", s.Name, want, err)
	case !done:
		return Result{Changed: true}, fmt.Errorf("%s did not %s within %s; %s", s.Name, verb, dur(s.wait()), seen)
	}
	return Result{Changed: true}, nil
}
