// Package probe holds the probes that several modules poll: whether a TCP port
// answers and whether a URL answers 2xx, seen from the host, and the poll loop.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/backoff"
	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// IsLocal reports whether h is the machine runbook runs on, where a probe made
// from this process sees exactly what the host sees.
func IsLocal(h *modules.Host) bool {
	if h.Conn == nil {
		return false
	}
	if h.Controller != nil && h.Conn == h.Controller {
		return true
	}
	// local.Local names itself so; it is the connection of ansible_connection:
	// local and of delegate_to: controller.
	return h.Conn.String() == "local"
}

// Dial reports whether addr accepts a TCP connection from this machine within
// timeout, and what was seen, for messages.
func Dial(ctx context.Context, addr string, timeout time.Duration) (open bool, seen string) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, dialError(addr, err)
	}
	_ = c.Close()
	return true, addr + " accepts connections"
}

// dialError says why a connect failed without the "dial tcp" noise.
func dialError(addr string, err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return addr + " did not answer (timeout)"
	}
	return addr + ": " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Viewpoint rewrites an address that means "this host" (127.0.0.1, ::1,
// localhost) to the host's own address, for a probe made from the controller
// on the host's behalf: from here, 127.0.0.1 would be the controller itself.
func Viewpoint(h *modules.Host, host string) (string, error) {
	if !isLoopback(host) {
		return host, nil
	}
	if h.Addr == "" {
		return "", fmt.Errorf("%s means host %s itself, and the host has no address to probe it from the controller", host, h.Name)
	}
	return h.Addr, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Port checks a TCP port as the host sees it. On a local host it dials from
// here. On a remote host it runs `nc -z` there; where the host has no usable
// nc it dials from the controller instead, to the host's own address when the
// port names a loopback address. A Port remembers that nc is missing, so a
// poll does not ask again on every try.
type Port struct {
	h      *modules.Host
	addr   string
	noNC   bool // nc is missing or cannot -z: dial from the controller
	noNCBy string
}

// NewPort returns a probe of addr (host:port) from h.
func NewPort(h *modules.Host, addr string) *Port { return &Port{h: h, addr: addr} }

// Try checks the port once. An error is a failure of the probe itself (the
// connection to the host is lost), not a closed port.
func (p *Port) Try(ctx context.Context, timeout time.Duration) (open bool, seen string, err error) {
	if IsLocal(p.h) {
		open, seen = Dial(ctx, p.addr, timeout)
		return open, seen, nil
	}
	if !p.noNC {
		open, seen, usable, err := p.nc(ctx, timeout)
		if err != nil || usable {
			return open, seen, err
		}
		p.noNC, p.noNCBy = true, seen
		p.h.Log.Debug().Str("addr", p.addr).Str("reason", seen).Msg("no usable nc on the host; probing the port from the controller")
	}
	host, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		return false, "", fmt.Errorf("%q is not host:port", p.addr)
	}
	host, err = Viewpoint(p.h, host)
	if err != nil {
		return false, "", fmt.Errorf("probing %s: no nc on the host (%s), and %w", p.addr, p.noNCBy, err)
	}
	target := net.JoinHostPort(host, port)
	open, seen = Dial(ctx, target, timeout)
	return open, seen + " (from the controller)", nil
}

// ncRefusals are what nc implementations print when they do not know -z or
// -w (busybox builds without them, ncat before 7.x): such an nc also exits 1,
// which must not read as "closed".
var ncRefusals = []string{"invalid option", "illegal option", "unrecognized option", "unknown option", "usage:"}

// nc runs `nc -z` on the host. usable is false when the host has no nc that
// can do it, and the caller must probe another way.
func (p *Port) nc(ctx context.Context, timeout time.Duration) (open bool, seen string, usable bool, err error) {
	host, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		return false, "", false, fmt.Errorf("%q is not host:port", p.addr)
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	cmd := conn.Cmd{Argv: []string{"nc", "-z", "-w", fmt.Sprint(max(secs, 1)), host, port},
		Become: p.h.Become, BecomeUser: p.h.BecomeUser}
	// nc's own -w bounds the connect; this bounds a host that stopped answering.
	rctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	out, err := p.h.Conn.Run(rctx, cmd)
	var ee *conn.ExitError
	switch {
	case err == nil:
		return true, p.addr + " accepts connections (nc -z on the host)", true, nil
	case errors.As(err, &ee) && (ee.ExitCode == 127 || ee.ExitCode == 126):
		return false, "nc: exit status " + fmt.Sprint(ee.ExitCode), false, nil
	case errors.As(err, &ee):
		msg := strings.TrimSpace(string(out.Stderr))
		low := strings.ToLower(msg)
		for _, r := range ncRefusals {
			if strings.Contains(low, r) {
				return false, "nc cannot -z: " + firstLine(msg), false, nil
			}
		}
		if msg == "" {
			msg = "connection refused or timed out"
		}
		return false, p.addr + " does not accept connections (nc -z on the host: " + firstLine(msg) + ")", true, nil
	case ctx.Err() != nil:
		return false, "", true, ctx.Err()
	case rctx.Err() != nil:
		return false, cmd.String() + " did not finish in time", true, nil
	}
	return false, "", true, fmt.Errorf("probing %s on %s: %w", p.addr, p.h.Name, err)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Func is one try of a condition: whether it holds, what was seen (for the
// error when it never does), and an error that ends the poll at once.
type Func func(ctx context.Context) (ok bool, seen string, err error)

// TimeoutError is a condition that did not hold before the time ran out.
type TimeoutError struct {
	What    string // "127.0.0.1:2379 to be open"
	Timeout time.Duration
	Seen    string // what the last try saw
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("timed out after %s waiting for %s", Dur(e.Timeout), e.What)
	if e.Seen != "" {
		msg += "; last seen: " + e.Seen
	}
	return msg
}

// Poll tries f, quickly at first and then every interval, until it holds or
// timeout passes; the last try comes at the deadline, so a condition met just
// in time is seen. It returns what the last try saw, and a *TimeoutError when
// the time ran out.
func Poll(ctx context.Context, what string, timeout, interval time.Duration, f Func) (seen string, err error) {
	deadline := time.Now().Add(timeout)
	// Tries come quickly at first, then at most interval apart: most states
	// waited for arrive within moments, and a wait's remainder is time lost.
	b := backoff.Capped(interval)
	for {
		ok, s, err := f(ctx)
		if err != nil {
			return s, err
		}
		seen = s
		if ok {
			return seen, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return seen, &TimeoutError{What: what, Timeout: timeout, Seen: seen}
		}
		t := time.NewTimer(min(b.Next(), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return seen, fmt.Errorf("waiting for %s: %w; last seen: %s", what, ctx.Err(), seen)
		case <-t.C:
		}
	}
}

// Sleep waits d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Dur prints a duration as runbooks write them: 60s rather than 1m0s.
func Dur(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
