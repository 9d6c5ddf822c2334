package svcmgr

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn/conntest"
)

func TestGet(t *testing.T) {
	for _, name := range []string{"systemd", "pidfile", "command"} {
		if m, err := Get(name); err != nil || m == nil {
			t.Errorf("Get(%q) = %v, %v", name, m, err)
		}
	}
	tests := []struct{ name, want string }{
		{"sytemd", `unknown service manager "sytemd"; want one of command, pidfile, systemd; did you mean "systemd"?`},
		{"upstart", `unknown service manager "upstart"; want one of command, pidfile, systemd`},
	}
	for _, tt := range tests {
		if _, err := Get(tt.name); err == nil || err.Error() != tt.want {
			t.Errorf("Get(%q) = %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	pid := Service{Name: "etcd", Pidfile: "/run/etcd.pid", StartCmd: []string{"/usr/local/bin/etcd"}}
	cmd := Service{Name: "etcd", StartCmd: []string{"rc-service", "etcd", "start"},
		StopCmd: []string{"rc-service", "etcd", "stop"}, StatusCmd: []string{"rc-service", "etcd", "status"}}
	with := func(s Service, edit func(*Service)) Service { edit(&s); return s }

	tests := []struct {
		name    string
		manager string
		s       Service
		want    []string // "Field: message" of each error; nil: valid
	}{
		{"systemd ok", "systemd", Service{Name: "etcd", Wait: time.Minute, Become: true}, nil},
		{"systemd no name", "systemd", Service{}, []string{"Name: is required"}},
		{"systemd option as name", "systemd", Service{Name: "--host=x"}, []string{"Name: a unit name cannot start with '-'"}},
		{"systemd refuses what it does itself", "systemd", Service{Name: "etcd", Pidfile: "/run/x.pid", Signal: "INT", Env: map[string]string{"A": "1"}},
			[]string{"Pidfile: is not used by the systemd manager; remove it", "Signal: is not used by the systemd manager; remove it",
				"Env: is not used by the systemd manager; remove it"}},
		{"systemd cannot kill when unlocked", "systemd", Service{Name: "etcd", KillWhenUnlocked: "/var/lib/etcd/member/snap/db"},
			[]string{"KillWhenUnlocked: " + NoKillWhenUnlocked("systemd")}},
		{"negative wait", "systemd", Service{Name: "etcd", Wait: -time.Second}, []string{"Wait: must not be negative"}},

		{"pidfile ok", "pidfile", pid, nil},
		{"pidfile full", "pidfile", with(pid, func(s *Service) {
			s.Signal, s.KillAfter, s.Wait, s.LogFile, s.Dir = "sigint", 10*time.Second, time.Minute, "/var/log/etcd.log", "/var/lib/etcd"
		}), nil},
		{"pidfile missing", "pidfile", Service{Name: "etcd"}, []string{"Pidfile: is required", "StartCmd: is required"}},
		{"pidfile relative", "pidfile", with(pid, func(s *Service) { s.Pidfile, s.LogFile = "etcd.pid", "etcd.log" }),
			[]string{"Pidfile: must be an absolute path", "LogFile: must be an absolute path"}},
		{"pidfile bad signal", "pidfile", with(pid, func(s *Service) { s.Signal = "15" }),
			[]string{`Signal: unknown signal "15"; want one of TERM, INT, QUIT, HUP, USR1, USR2, WINCH, ABRT, ALRM, KILL`}},
		{"kill after too long", "pidfile", with(pid, func(s *Service) { s.KillAfter, s.Wait = time.Minute, time.Minute }),
			[]string{"KillAfter: (60s) must be shorter than Wait (60s), to leave time for SIGKILL"}},
		{"kill after beyond default wait", "pidfile", with(pid, func(s *Service) { s.KillAfter = 45 * time.Second }),
			[]string{"KillAfter: (45s) must be shorter than Wait (30s), to leave time for SIGKILL"}},
		{"kill after with KILL", "pidfile", with(pid, func(s *Service) { s.Signal, s.KillAfter = "SIGKILL", time.Second }),
			[]string{"KillAfter: is not used when Signal is KILL; remove it"}},
		{"pidfile refuses commands", "pidfile", with(pid, func(s *Service) { s.StopCmd = []string{"x"} }),
			[]string{"StopCmd: is not used by the pidfile manager; remove it"}},
		{"kill when unlocked", "pidfile", with(pid, func(s *Service) { s.KillWhenUnlocked = "/var/lib/etcd/member/snap/db" }), nil},
		{"kill when unlocked relative", "pidfile", with(pid, func(s *Service) { s.KillWhenUnlocked = "member/snap/db" }),
			[]string{`KillWhenUnlocked: ("member/snap/db") must be an absolute path: the file the service keeps locked while its data is open`}},
		{"kill when unlocked with KILL", "pidfile", with(pid, func(s *Service) { s.Signal, s.KillWhenUnlocked = "KILL", "/var/lib/etcd/member/snap/db" }),
			[]string{"KillWhenUnlocked: is not used when Signal is KILL; remove it"}},
		{"empty program", "pidfile", with(pid, func(s *Service) { s.StartCmd = []string{""} }),
			[]string{"StartCmd: has an empty program name"}},

		{"command ok", "command", cmd, nil},
		{"command missing", "command", Service{Name: "etcd", StartCmd: []string{"x"}},
			[]string{"StopCmd: is required", "StatusCmd: is required"}},
		{"command cannot kill when unlocked", "command", with(cmd, func(s *Service) { s.KillWhenUnlocked = "/var/lib/etcd/member/snap/db" }),
			[]string{"KillWhenUnlocked: " + NoKillWhenUnlocked("command")}},
		{"command refuses pidfile", "command", with(cmd, func(s *Service) { s.Pidfile, s.LogFile = "/run/x", "/var/log/x" }),
			[]string{"Pidfile: is not used by the command manager; remove it", "LogFile: is not used by the command manager; remove it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Get(tt.manager)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Validate(tt.s)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("error is not a *FieldError: %T", err)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// An invalid Service never reaches the host.
func TestInvalidServiceRunsNothing(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			f := conntest.New(nil) // no rules: any command would be unmatched
			m, _ := Get(name)
			ctx := context.Background()
			if _, err := m.Start(ctx, f, Service{}); err == nil {
				t.Error("Start accepted an empty service")
			}
			if _, err := m.Stop(ctx, f, Service{}); err == nil {
				t.Error("Stop accepted an empty service")
			}
			if _, err := m.Status(ctx, f, Service{}); err == nil {
				t.Error("Status accepted an empty service")
			}
			if len(f.Calls()) != 0 {
				t.Errorf("ran %q", f.Commands())
			}
		})
	}
}

func TestAwaitHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done, _, err := await(ctx, time.Now().Add(time.Hour), Running, func(context.Context) (State, string, error) {
		calls++
		if calls == 3 {
			cancel()
		}
		return Stopped, "stopped", nil
	})
	if done || !errors.Is(err, context.Canceled) {
		t.Errorf("await = %v, %v; want cancelled", done, err)
	}
}

func TestNoKillWhenUnlocked(t *testing.T) {
	for _, tt := range []struct{ manager, has string }{
		{"pidfile", ""},
		{"systemd", "Result=signal"},
		{"command", "not by a process it could send SIGKILL"},
	} {
		got := NoKillWhenUnlocked(tt.manager)
		if tt.has == "" && got != "" || !strings.Contains(got, tt.has) {
			t.Errorf("NoKillWhenUnlocked(%s) = %q, want %q in it", tt.manager, got, tt.has)
		}
	}
}

func TestDur(t *testing.T) {
	tests := map[time.Duration]string{
		60 * time.Second:        "60s",
		90 * time.Second:        "90s",
		1500 * time.Millisecond: "1.5s",
		200 * time.Millisecond:  "200ms",
	}
	for d, want := range tests {
		if got := dur(d); got != want {
			t.Errorf("dur(%v) = %q, want %q", d, got, want)
		}
	}
}
