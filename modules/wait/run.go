package wait

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/probe"
)

// maxTry bounds one try of a port, so that a long interval does not leave a
// connect hanging past the point where the answer is useful.
const maxTry = 5 * time.Second

// Run waits for the one thing the step names. It changes nothing.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	begin := time.Now()
	if d.For > 0 {
		if err := probe.Sleep(ctx, d.For.Std()); err != nil {
			return modules.Result{}, fmt.Errorf("wait for %s: %w after %s", probe.Dur(d.For.Std()), err, probe.Dur(time.Since(begin).Round(time.Millisecond)))
		}
		return modules.Result{Data: map[string]any{"waited": probe.Dur(d.For.Std())}}, nil
	}
	try, what, err := d.condition(h)
	if err != nil {
		return modules.Result{}, err
	}
	seen, err := probe.Poll(ctx, what, d.Timeout.Std(), d.Interval.Std(), try)
	data := d.data(seen)
	data["waited"] = probe.Dur(time.Since(begin).Round(time.Millisecond))
	return modules.Result{Data: data}, err
}

// Check tries once and reports what it sees, without waiting: nothing changes
// in --check, so a state another step would bring about never comes.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	if d.For > 0 {
		return modules.Result{Data: map[string]any{"waited": "0s", "msg": "would wait " + probe.Dur(d.For.Std())}}, nil
	}
	try, what, err := d.condition(h)
	if err != nil {
		return modules.Result{}, err
	}
	ok, seen, err := try(ctx)
	if err != nil {
		return modules.Result{}, err
	}
	data := d.data(seen)
	if ok {
		data["msg"] = "would not wait: " + seen
	} else {
		data["msg"] = fmt.Sprintf("would wait up to %s for %s; now: %s", probe.Dur(d.Timeout.Std()), what, seen)
	}
	return modules.Result{Data: data}, nil
}

func (m *Module) data(seen string) map[string]any {
	data := map[string]any{"state": m.State, "seen": seen}
	if m.Port != "" {
		data["port"] = m.Port
	} else {
		data["path"] = m.Path
	}
	return data
}

// condition returns one try of what d waits for, and its description.
func (m *Module) condition(h *modules.Host) (probe.Func, string, error) {
	switch {
	case m.Port != "":
		p := probe.NewPort(h, m.Port)
		wantOpen := m.State == "open"
		timeout := min(max(m.Interval.Std(), 500*time.Millisecond), maxTry)
		return func(ctx context.Context) (bool, string, error) {
			open, seen, err := p.Try(ctx, timeout)
			return open == wantOpen, seen, err
		}, fmt.Sprintf("%s to be %s", m.Port, m.State), nil
	case m.Path != "":
		wantPresent := m.State == "present"
		return func(ctx context.Context) (bool, string, error) {
			present, err := exists(ctx, h, m.Path)
			if err != nil {
				return false, "", err
			}
			seen := m.Path + " exists"
			if !present {
				seen = m.Path + " does not exist"
			}
			return present == wantPresent, seen, nil
		}, fmt.Sprintf("%s to be %s", m.Path, m.State), nil
	}
	return nil, "", errors.New("nothing to wait for; give one of for, port or path")
}

// exists tests path on the host with the step's privileges, since a path
// under a root-only folder looks absent to anyone else.
func exists(ctx context.Context, h *modules.Host, path string) (bool, error) {
	_, err := h.Conn.Run(ctx, conn.Cmd{Argv: []string{"test", "-e", path}, Become: h.Become, BecomeUser: h.BecomeUser})
	var ee *conn.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode == 1:
		return false, nil
	}
	return false, fmt.Errorf("testing %s on %s: %w", path, h.Name, err)
}
