// Package service holds the stop, start and restart modules: one service on the
// host, driven by systemd, by a pidfile and a start command, or by commands.
package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/svcmgr"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
)

// action is what a registration does to the service.
type action int

const (
	stop action = iota
	start
	restart
)

func (a action) String() string { return [...]string{"stop", "start", "restart"}[a] }

// Managers are the values of `manager`.
var Managers = []string{"systemd", "pidfile", "command"}

const definitions = `The service is driven by its manager:
  systemd  systemctl stop/start/is-active on the unit named by service
  pidfile  a process started by start_cmd in the background, its pid kept in
           pidfile; stop sends signal, then KILL after kill_after
  command  start_cmd, stop_cmd and status_cmd (exit 0 means running)
Unless the step names it, the manager is the one of the service's entry in
the host var services (below), else the host var service_manager, else systemd.

How a host runs a service can be said once, in a host or group var, instead of
in every step:

  services:
    etcd:
      manager: pidfile
      pidfile: /var/run/etcd.pid
      start_cmd: /usr/local/bin/etcd --config-file /etc/etcd/etcd.yml
      log_file: /var/log/etcd.log
      ready: { http: 'http://127.0.0.1:2379/readyz' }

A step then says only stop: { service: etcd }. The keys of an entry are manager,
pidfile, start_cmd, stop_cmd, status_cmd, signal, kill_after, log_file and
ready; an argument given in the step wins over the entry. The manager's own
required arguments are checked when the runbook is loaded if the step names its
manager, and on the host otherwise.

The result has manager, state_before (running, stopped or unknown), pid (the
process, with pidfile), killed (stop had to send KILL) and kill_reason (why
and when: "SIGKILL 30s after TERM, the kill-after limit: ..." or "SIGKILL 12ms
after TERM: FILE unlocked"). In --check the state is read and the step reports
whether it would change it; nothing is signalled.`

// killWhenUnlocked documents the argument of the same name, for stop and restart.
const killWhenUnlocked = `kill_when_unlocked (manager pidfile) ends the wait for a process that has
closed its data but lingers in its shutdown: etcd closes its database within
milliseconds of TERM, then waits up to a second for its peers' connections,
holding the peer port a new process needs. It names a file the service keeps
locked with flock(2) while its data is open (etcd's bbolt database,
DATA_DIR/member/snap/db). After the stop signal, each check for the process's
exit also tries to lock that file, without waiting, read-only, never creating
it (flock(1) on the host). Once the file exists and is unlocked while the
process still runs, the process gets KILL, and the stop still ends only when it
is gone, within wait. It applies only when the file was locked as the stop
began: a file that is missing or was not locked then, a host without flock, or
a check that fails otherwise never lead to a kill, and the stop waits as without
it (kill_after included), saying why in its result. Locks taken with fcntl(2)
(POSIX record locks) are not seen: name only a file the service flocks. The
path must be absolute. The systemd and command managers cannot honour it (they
do not send the signals): a step that names one of them with it is refused,
and where the manager comes from the host, the stop goes on as without it and
says so, so that one runbook serves hosts run either way.`

func init() {
	modules.Register(modules.Info{
		Name: "stop",
		New:  func() modules.Module { return &Module{action: stop} },
		Doc: modules.Doc{
			Summary: "stop a service and wait until it has stopped",
			Description: `Stops the service and waits up to wait for it to be stopped; a service that
is already stopped is left as it is and the step reports no change.

` + definitions + "\n\n" + killWhenUnlocked,
			Example: `- stop: { service: etcd }
- name: stop the member, SIGKILL after 45s
  stop:
    service: etcd
    manager: pidfile
    pidfile: /var/run/etcd.pid
    kill_after: 45s
- name: stop etcd, cut short once its database is closed
  stop:
    service: etcd
    kill_when_unlocked: '{{ etcd_data_dir }}/member/snap/db'`,
			Undo: `start the service again, if this step stopped it; with manager pidfile or
command, that needs start_cmd (in the step or the services entry).`,
		},
	})
	modules.Register(modules.Info{
		Name: "start",
		New:  func() modules.Module { return &Module{action: start} },
		Doc: modules.Doc{
			Summary: "start a service and wait until it runs and is ready",
			Description: `Starts the service and waits up to wait for it to be running and, when ready
is given, for the readiness probe to answer; a service that is already running
is left as it is (its readiness is still awaited) and the step reports no
change. The probe sees the host as the host does: 127.0.0.1 is the host itself.

` + definitions,
			Example: `- start: { service: etcd, wait: 120s }
- name: start the member and wait for readyz
  start:
    service: etcd
    ready: { http: 'http://{{ host.addr }}:2379/readyz' }`,
			Undo: "stop the service again, if this step started it.",
		},
	})
	modules.Register(modules.Info{
		Name: "restart",
		New:  func() modules.Module { return (*Restart)(&Module{action: restart}) },
		Doc: modules.Doc{
			Summary: "stop a service, start it again and wait until it is ready",
			Description: `Stops the service (if it runs), then starts it and waits as start does; wait
applies to each half. A restart always reports a change.

` + definitions + "\n\n" + killWhenUnlocked,
			Example: `- restart:
    service: etcd
    ready: { tcp: '127.0.0.1:2379' }`,
		},
	})
}

// Module holds the arguments of stop and start; restart has the same arguments
// in its own type, because it has no undo. The arguments that say how the host
// runs the service are a Definition, the schema of a services entry too.
type Module struct {
	Service    string `yaml:"service" runbook:"required" doc:"name of the service: the systemd unit, or a key of the host var services"`
	Definition `yaml:",inline"`
	Wait       arg.Duration `yaml:"wait" default:"60s" doc:"how long to wait for the service to reach the state"`
	// A pointer, so that a template that renders to nothing is refused
	// rather than taken for an argument not given.
	KillWhenUnlocked *string `yaml:"kill_when_unlocked" doc:"stop, restart with manager pidfile: absolute path of a file the service keeps flock-locked while its data is open (etcd: DATA_DIR/member/snap/db); once it is unlocked after the stop signal, a process still running gets KILL"`

	action action
}

// Definition is how a host runs a service: the arguments of that kind in a
// step, and one entry of the host var services, where a step's own arguments
// win over it.
type Definition struct {
	Manager   string       `yaml:"manager" default:"<from the host, else systemd>" doc:"how the service is run: systemd, pidfile or command"`
	Pidfile   string       `yaml:"pidfile" doc:"pidfile: file holding the process id"`
	StartCmd  arg.Argv     `yaml:"start_cmd" doc:"pidfile, command: the command that starts the service"`
	StopCmd   arg.Argv     `yaml:"stop_cmd" doc:"command: the command that stops the service"`
	StatusCmd arg.Argv     `yaml:"status_cmd" doc:"command: the command that exits 0 while the service runs"`
	Signal    string       `yaml:"signal" default:"TERM" doc:"pidfile: the signal that asks the process to stop"`
	KillAfter arg.Duration `yaml:"kill_after" default:"<half of wait>" doc:"pidfile: send KILL when the process still runs this long after signal"`
	LogFile   string       `yaml:"log_file" doc:"pidfile: file on the host that gets the process's output"`
	Ready     *Ready       `yaml:"ready" doc:"start, restart: a probe that must answer before the start counts as done"`
}

// Ready is the readiness probe: exactly one of its fields.
type Ready struct {
	TCP  string `yaml:"tcp" doc:"host:port that must accept a connection, tried from the host as wait's port"`
	HTTP string `yaml:"http" doc:"URL that must answer a GET with a 2xx status, from the host (curl there, else from the controller)"`
}

// Restart holds the restart module's arguments, which are those of Module.
type Restart Module

// Defaults returns the arguments as Run sees them. The manager is left empty
// when the step does not name it, because its default comes from the host.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Defaults returns the arguments as Run sees them.
func (r *Restart) Defaults() *Restart { return (*Restart)((*Module)(r).Defaults()) }

// Validate checks the arguments given in the step. The manager's required
// arguments are checked only when the step names the manager, since otherwise
// they may come from the host var services.
func (m *Module) Validate() error {
	if strings.TrimSpace(m.Service) == "" || strings.ContainsAny(m.Service, " \t\n/") {
		return &modules.FieldError{Field: "service", Msg: fmt.Sprintf("%q is not a service name; give the unit or services entry, like etcd", m.Service)}
	}
	if m.Signal != "" {
		if err := argcheck.Signal(m.Signal); err != nil {
			return &modules.FieldError{Field: "signal", Msg: err.Error()}
		}
	}
	for _, p := range []struct{ field, path string }{{"pidfile", m.Pidfile}, {"log_file", m.LogFile}} {
		if p.path == "" {
			continue
		}
		if err := argcheck.AbsPath(p.path); err != nil {
			return &modules.FieldError{Field: p.field, Msg: err.Error()}
		}
	}
	if err := m.validateKillWhenUnlocked(); err != nil {
		return err
	}
	if m.KillAfter != 0 && m.KillAfter >= m.Defaults().Wait {
		return &modules.FieldError{Field: "kill_after", Msg: fmt.Sprintf("%s is not shorter than wait (%s), so the wait would end before the KILL; shorten it or raise wait",
			time.Duration(m.KillAfter), time.Duration(m.Defaults().Wait))}
	}
	if err := m.validateReady(); err != nil {
		return err
	}
	if m.Manager == "" {
		return nil
	}
	if err := argcheck.OneOf("a service manager", m.Manager, Managers...); err != nil {
		return &modules.FieldError{Field: "manager", Msg: err.Error()}
	}
	return m.validateManager()
}

func (m *Module) validateKillWhenUnlocked() error {
	if m.KillWhenUnlocked == nil {
		return nil
	}
	p := *m.KillWhenUnlocked
	switch {
	case m.action == start:
		return &modules.FieldError{Field: "kill_when_unlocked", Msg: "ends the wait of a stop; a start stops nothing (use it on stop or restart)"}
	case strings.TrimSpace(p) == "":
		return &modules.FieldError{Field: "kill_when_unlocked", Msg: "is empty (a template that rendered to nothing?); give the absolute path of the file the service keeps locked while its data is open, like /var/lib/etcd/member/snap/db"}
	case strings.TrimPrefix(strings.ToUpper(m.Signal), "SIG") == "KILL":
		return &modules.FieldError{Field: "kill_when_unlocked", Msg: "is not used when signal is KILL: the first signal kills already; remove one of them"}
	}
	if err := argcheck.AbsPath(p); err != nil {
		return &modules.FieldError{Field: "kill_when_unlocked", Msg: err.Error() + " (the file the service keeps locked while its data is open, like /var/lib/etcd/member/snap/db)"}
	}
	return nil
}

func (m *Module) validateReady() error {
	if m.Ready == nil {
		return nil
	}
	if m.action == stop {
		return &modules.FieldError{Field: "ready", Msg: "says when a start is done; a stop waits for the service to be stopped"}
	}
	switch {
	case m.Ready.TCP == "" && m.Ready.HTTP == "":
		return &modules.FieldError{Field: "ready", Msg: "is empty; give tcp: host:port or http: URL"}
	case m.Ready.TCP != "" && m.Ready.HTTP != "":
		return &modules.FieldError{Field: "ready.http", Msg: "ready takes one probe, and tcp is also given; keep one"}
	case m.Ready.TCP != "":
		if err := argcheck.HostPort(m.Ready.TCP); err != nil {
			return &modules.FieldError{Field: "ready.tcp", Msg: err.Error()}
		}
	default:
		if err := argcheck.URL(m.Ready.HTTP); err != nil {
			return &modules.FieldError{Field: "ready.http", Msg: err.Error()}
		}
	}
	return nil
}

// validateManager checks the arguments the named manager needs and refuses those
// it would not use, so that no argument is silently ignored.
func (m *Module) validateManager() error {
	type argUse struct {
		field    string
		given    bool
		managers []string // the managers that use it
		needed   bool     // required for this manager and action
	}
	starts := m.action != stop
	stops := m.action != start
	args := []argUse{
		{"pidfile", m.Pidfile != "", []string{"pidfile"}, m.Manager == "pidfile"},
		{"start_cmd", len(m.StartCmd) > 0, []string{"pidfile", "command"}, starts && m.Manager != "systemd"},
		{"stop_cmd", len(m.StopCmd) > 0, []string{"command"}, stops && m.Manager == "command"},
		{"status_cmd", len(m.StatusCmd) > 0, []string{"command"}, m.Manager == "command"},
		{"signal", m.Signal != "", []string{"pidfile"}, false},
		{"kill_after", m.KillAfter != 0, []string{"pidfile"}, false},
		{"log_file", m.LogFile != "", []string{"pidfile"}, false},
	}
	if m.KillWhenUnlocked != nil {
		if why := svcmgr.NoKillWhenUnlocked(m.Manager); why != "" {
			return &modules.FieldError{Field: "kill_when_unlocked", Msg: why}
		}
	}
	for _, a := range args {
		used := false
		for _, mg := range a.managers {
			used = used || mg == m.Manager
		}
		switch {
		case a.given && !used:
			return &modules.FieldError{Field: a.field, Msg: fmt.Sprintf("is not used by manager %s (only by %s); remove it", m.Manager, strings.Join(a.managers, ", "))}
		case a.needed && !a.given:
			return &modules.FieldError{Field: a.field, Msg: fmt.Sprintf("is required to %s a service with manager %s", m.action, m.Manager)}
		}
	}
	for _, a := range []struct {
		field string
		argv  arg.Argv
	}{{"start_cmd", m.StartCmd}, {"stop_cmd", m.StopCmd}, {"status_cmd", m.StatusCmd}} {
		if len(a.argv) > 0 && strings.TrimSpace(a.argv[0]) == "" {
			return &modules.FieldError{Field: a.field, Msg: "is empty; give the program to run and its arguments"}
		}
	}
	return nil
}

// Validate checks restart's arguments as stop's and start's are checked.
func (r *Restart) Validate() error { return (*Module)(r).Validate() }

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.Undoer    = (*Module)(nil)
	_ modules.Validator = (*Restart)(nil)
	_ modules.Checker   = (*Restart)(nil)
)
