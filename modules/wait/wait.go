// Package wait is the wait module: it waits for time to pass, for a port to open
// or close, or for a path to appear or go away.
package wait

import (
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
)

func init() {
	modules.Register(modules.Info{
		Name: "wait",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "wait for a while, for a port, or for a path",
			Description: `Waits for exactly one thing:
  for   just wait this long (a soak between two steps)
  port  until host:port accepts connections (state: open) or refuses
        them (state: closed), as the host sees it
  path  until the path exists on the host (state: present) or does not
        (state: absent)
port and path are tried quickly at first (10ms apart, growing), then every
interval, and the step fails when timeout
passes first, saying what the last try saw. For anything richer (an HTTP
answer, a command's output) use check with retries and until.

A port is tried from the host, so 127.0.0.1 means the host itself: on a
local host runbook connects itself; on a remote one it runs nc -z there, and
when the host has no nc that can, connects from the controller, to the host's
address in place of 127.0.0.1, ::1 or localhost.

In --check, for does not wait, and port and path are tried once and reported.`,
			Example: `- name: let the member settle
  wait: { for: 30s }
- name: the old process has let go of the client port
  wait: { port: '127.0.0.1:2379', state: closed, timeout: 90s }
- name: the data dir is in place
  wait:
    path: /var/lib/etcd/member/snap/db
    interval: 2s`,
		},
	})
}

// Module holds the wait module's arguments: exactly one of for, port and path.
type Module struct {
	For      arg.Duration `yaml:"for" doc:"wait exactly this long"`
	Port     string       `yaml:"port" doc:"host:port to wait for, from the host"`
	Path     string       `yaml:"path" doc:"absolute path on the host to wait for"`
	State    string       `yaml:"state" default:"<open for port, present for path>" doc:"port: open or closed; path: present or absent"`
	Timeout  arg.Duration `yaml:"timeout" default:"60s" doc:"port, path: fail when the state is not reached in this time"`
	Interval arg.Duration `yaml:"interval" default:"1s" doc:"port, path: the longest time between two tries (the first come sooner)"`
}

// Defaults returns the arguments as Run sees them, state chosen by the form.
func (m *Module) Defaults() *Module {
	d := modules.WithDefaults(m)
	if d.State == "" {
		switch {
		case d.Port != "":
			d.State = "open"
		case d.Path != "":
			d.State = "present"
		}
	}
	return d
}

// Validate checks that exactly one thing is waited for, with arguments that fit it.
func (m *Module) Validate() error {
	var given []string
	if m.For != 0 {
		given = append(given, "for")
	}
	if m.Port != "" {
		given = append(given, "port")
	}
	if m.Path != "" {
		given = append(given, "path")
	}
	switch len(given) {
	case 0:
		return errors.New("nothing to wait for; give one of for, port or path")
	case 1:
	default:
		return &modules.FieldError{Field: given[1], Msg: fmt.Sprintf("a wait waits for one thing, and %s is also given; split it into two steps", given[0])}
	}
	switch given[0] {
	case "for":
		for _, f := range []struct {
			field string
			given bool
		}{{"state", m.State != ""}, {"timeout", m.Timeout != 0}, {"interval", m.Interval != 0}} {
			if f.given {
				return &modules.FieldError{Field: f.field, Msg: "is for port and path; for waits exactly its own time"}
			}
		}
		return nil
	case "port":
		if err := argcheck.HostPort(m.Port); err != nil {
			return &modules.FieldError{Field: "port", Msg: err.Error()}
		}
		if m.State != "" {
			if err := argcheck.OneOf("a port state", m.State, "open", "closed"); err != nil {
				return &modules.FieldError{Field: "state", Msg: err.Error()}
			}
		}
	case "path":
		if err := argcheck.AbsPath(m.Path); err != nil {
			return &modules.FieldError{Field: "path", Msg: err.Error()}
		}
		if m.State != "" {
			if err := argcheck.OneOf("a path state", m.State, "present", "absent"); err != nil {
				return &modules.FieldError{Field: "state", Msg: err.Error()}
			}
		}
	}
	d := m.Defaults()
	if d.Interval > d.Timeout {
		field := "interval"
		if m.Interval == 0 {
			field = "timeout"
		}
		return &modules.FieldError{Field: field, Msg: fmt.Sprintf("interval (%s) is longer than timeout (%s), so there would be one try; shorten interval or raise timeout",
			time.Duration(d.Interval), time.Duration(d.Timeout))}
	}
	return nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
