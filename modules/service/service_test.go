package service

import (
	"testing"
	"time"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

func str(s string) *string { return &s }

func sec(n int) arg.Duration { return arg.Duration(time.Duration(n) * time.Second) }

func TestValidate(t *testing.T) {
	pidStart := arg.Argv{"/usr/local/bin/etcd", "--config-file", "/etc/etcd.yml"}
	tests := []struct {
		name      string
		action    action
		m         Module
		wantField string
		wantMsg   string
	}{
		{"name only: the rest comes from the host", stop, Module{Service: "etcd"}, "", ""},
		{"systemd", start, Module{Service: "etcd.service", Definition: Definition{Manager: "systemd"}, Wait: sec(120)}, "", ""},
		{"pidfile stop", stop, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: "/run/etcd.pid", Signal: "SIGINT", KillAfter: sec(30)}}, "", ""},
		{"pidfile start", start, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: "/run/etcd.pid", StartCmd: pidStart, LogFile: "/var/log/etcd.log", Ready: &Ready{HTTP: "http://127.0.0.1:2379/readyz"}}}, "", ""},
		{"command restart", restart, Module{Service: "etcd", Definition: Definition{Manager: "command", StartCmd: arg.Argv{"start-etcd"}, StopCmd: arg.Argv{"stop-etcd"}, StatusCmd: arg.Argv{"pgrep", "etcd"}, Ready: &Ready{TCP: "127.0.0.1:2379"}}}, "", ""},
		{"inline fields without a manager are checked on the host", start, Module{Service: "etcd", Definition: Definition{StopCmd: arg.Argv{"x"}}}, "", ""},

		{"blank service", stop, Module{Service: " "}, "service", "is not a service name"},
		{"service with a space", stop, Module{Service: "etcd member"}, "service", "is not a service name"},
		{"unknown manager", stop, Module{Service: "etcd", Definition: Definition{Manager: "upstart"}}, "manager", "use one of systemd, pidfile, command"},
		{"manager typo", stop, Module{Service: "etcd", Definition: Definition{Manager: "sytemd"}}, "manager", `did you mean "systemd"?`},
		{"bad signal", stop, Module{Service: "etcd", Definition: Definition{Signal: "STOP"}}, "signal", `"STOP" is not a signal`},
		{"relative pidfile", stop, Module{Service: "etcd", Definition: Definition{Pidfile: "run/etcd.pid"}}, "pidfile", "is relative"},
		{"relative log file", start, Module{Service: "etcd", Definition: Definition{LogFile: "etcd.log"}}, "log_file", "is relative"},
		{"kill_after not shorter than the default wait", stop, Module{Service: "etcd", Definition: Definition{KillAfter: sec(60)}}, "kill_after", "is not shorter than wait (1m0s)"},
		{"kill_after not shorter than wait", stop, Module{Service: "etcd", Definition: Definition{KillAfter: sec(30)}, Wait: sec(20)}, "kill_after", "wait (20s)"},
		{"ready on stop", stop, Module{Service: "etcd", Definition: Definition{Ready: &Ready{TCP: "a:1"}}}, "ready", "a stop waits"},
		{"empty ready", start, Module{Service: "etcd", Definition: Definition{Ready: &Ready{}}}, "ready", "is empty"},
		{"two ready probes", start, Module{Service: "etcd", Definition: Definition{Ready: &Ready{TCP: "a:1", HTTP: "http://a"}}}, "ready.http", "tcp is also given"},
		{"bad ready tcp", start, Module{Service: "etcd", Definition: Definition{Ready: &Ready{TCP: "a"}}}, "ready.tcp", "is not host:port"},
		{"bad ready http", start, Module{Service: "etcd", Definition: Definition{Ready: &Ready{HTTP: "a:1/readyz"}}}, "ready.http", "want an http://"},
		{"pidfile without pidfile", stop, Module{Service: "etcd", Definition: Definition{Manager: "pidfile"}}, "pidfile", "required to stop a service with manager pidfile"},
		{"pidfile start without start_cmd", start, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: "/run/etcd.pid"}}, "start_cmd", "required to start"},
		{"pidfile with stop_cmd", stop, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: "/run/etcd.pid", StopCmd: arg.Argv{"x"}}}, "stop_cmd", "not used by manager pidfile (only by command)"},
		{"systemd with pidfile", start, Module{Service: "etcd", Definition: Definition{Manager: "systemd", Pidfile: "/run/etcd.pid"}}, "pidfile", "not used by manager systemd"},
		{"systemd with signal", stop, Module{Service: "etcd", Definition: Definition{Manager: "systemd", Signal: "TERM"}}, "signal", "not used by manager systemd"},
		{"command without status_cmd", stop, Module{Service: "etcd", Definition: Definition{Manager: "command", StopCmd: arg.Argv{"x"}}}, "status_cmd", "required to stop"},
		{"command stop without stop_cmd", stop, Module{Service: "etcd", Definition: Definition{Manager: "command", StatusCmd: arg.Argv{"x"}}}, "stop_cmd", "required to stop"},
		{"command restart without start_cmd", restart, Module{Service: "etcd", Definition: Definition{Manager: "command", StopCmd: arg.Argv{"x"}, StatusCmd: arg.Argv{"x"}}}, "start_cmd", "required to restart"},
		{"command with kill_after", stop, Module{Service: "etcd", Definition: Definition{Manager: "command", StopCmd: arg.Argv{"x"}, StatusCmd: arg.Argv{"x"}, KillAfter: sec(5)}}, "kill_after", "only by pidfile"},
		{"kill_when_unlocked", stop, Module{Service: "etcd", KillWhenUnlocked: str("/var/lib/etcd/member/snap/db")}, "", ""},
		{"kill_when_unlocked on restart", restart, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: "/run/etcd.pid", StartCmd: pidStart}, KillWhenUnlocked: str("/var/lib/etcd/member/snap/db")}, "", ""},
		{"kill_when_unlocked templated", stop, Module{Service: "etcd", KillWhenUnlocked: str("{{ etcd_data_dir }}/member/snap/db")}, "", ""},
		{"kill_when_unlocked relative", stop, Module{Service: "etcd", KillWhenUnlocked: str("member/snap/db")}, "kill_when_unlocked", `"member/snap/db" is relative; give an absolute path`},
		{"kill_when_unlocked not clean", stop, Module{Service: "etcd", KillWhenUnlocked: str("/var/lib/etcd/../db")}, "kill_when_unlocked", "is not a clean path"},
		{"kill_when_unlocked rendered empty", stop, Module{Service: "etcd", KillWhenUnlocked: str("")}, "kill_when_unlocked", "is empty (a template that rendered to nothing?); give the absolute path"},
		{"kill_when_unlocked on start", start, Module{Service: "etcd", KillWhenUnlocked: str("/var/lib/etcd/member/snap/db")}, "kill_when_unlocked", "a start stops nothing"},
		{"kill_when_unlocked with signal KILL", stop, Module{Service: "etcd", Definition: Definition{Signal: "KILL"}, KillWhenUnlocked: str("/db")}, "kill_when_unlocked", "is not used when signal is KILL"},
		{"kill_when_unlocked with systemd", stop, Module{Service: "etcd", Definition: Definition{Manager: "systemd"}, KillWhenUnlocked: str("/db")}, "kill_when_unlocked", "not supported by the systemd manager: systemctl stop waits"},
		{"kill_when_unlocked with command", stop, Module{Service: "etcd", Definition: Definition{Manager: "command", StopCmd: arg.Argv{"x"}, StatusCmd: arg.Argv{"x"}}, KillWhenUnlocked: str("/db")}, "kill_when_unlocked", "not supported by the command manager"},
		{"command with an empty status_cmd", start, Module{Service: "etcd", Definition: Definition{Manager: "command", StartCmd: arg.Argv{"x"}, StatusCmd: arg.Argv{""}}}, "status_cmd", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.action = tt.action
			if tt.action == restart {
				r := Restart(tt.m)
				modtest.Validate(t, &r, tt.wantField, tt.wantMsg)
				return
			}
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

// TestRegistrations checks that each name builds its own action, and that only
// stop and start claim an undo.
func TestRegistrations(t *testing.T) {
	for _, tt := range []struct {
		name   string
		action action
		undo   bool
	}{{"stop", stop, true}, {"start", start, true}, {"restart", restart, false}} {
		info, ok := modules.Default.Lookup(tt.name)
		if !ok {
			t.Fatalf("%s is not registered", tt.name)
		}
		m := info.New()
		var got action
		switch v := m.(type) {
		case *Module:
			got = v.action
		case *Restart:
			got = v.action
		}
		if got != tt.action {
			t.Errorf("%s builds action %v", tt.name, got)
		}
		if _, undo := m.(modules.Undoer); undo != tt.undo {
			t.Errorf("%s is an Undoer: %v, want %v", tt.name, undo, tt.undo)
		}
	}
}

// TestDefinitionIsPartOfTheStep checks that every key of a services entry is
// documented as a step argument too, so `runbook doc stop` shows the whole schema.
func TestDefinitionIsPartOfTheStep(t *testing.T) {
	info, _ := modules.Default.Lookup("stop")
	step := map[string]modules.Arg{}
	for _, a := range modules.Args(info) {
		step[a.Name] = a
	}
	def := modules.ArgsOf(Definition{})
	if len(def) != 11 { // nine keys, ready.tcp and ready.http
		t.Errorf("ArgsOf(Definition) = %d arguments", len(def))
	}
	for _, a := range def {
		if step[a.Name] != a {
			t.Errorf("services entry key %s = %+v, step argument = %+v", a.Name, a, step[a.Name])
		}
	}
}

func TestDefaults(t *testing.T) {
	r := &Restart{Service: "etcd"}
	d := r.Defaults()
	if d.Wait != sec(60) || d.Signal != "TERM" || d.Manager != "" {
		t.Errorf("Defaults = %+v; want wait 60s, signal TERM, manager left to the host", *d)
	}
	if r.Wait != 0 || r.Signal != "" {
		t.Errorf("Defaults changed the decoded value: %+v", *r)
	}
}
