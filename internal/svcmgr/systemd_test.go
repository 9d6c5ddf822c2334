package svcmgr

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
)

func isActive(f *conntest.Fake, word string, code int) *conntest.Rule {
	return f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stdout(word + "\n").Exit(code)
}

func TestSystemdStatus(t *testing.T) {
	transport := &conn.TransportError{Host: "etcd-1", Err: errors.New("connection reset")}
	tests := []struct {
		name    string
		setup   func(f *conntest.Fake)
		want    State
		wantErr error // nil: no error; errAny: some error
	}{
		{"active", func(f *conntest.Fake) { isActive(f, "active", 0) }, Running, nil},
		{"reloading", func(f *conntest.Fake) { isActive(f, "reloading", 0) }, Running, nil},
		{"inactive", func(f *conntest.Fake) { isActive(f, "inactive", 3) }, Stopped, nil},
		{"failed", func(f *conntest.Fake) { isActive(f, "failed", 3) }, Stopped, nil},
		{"activating", func(f *conntest.Fake) { isActive(f, "activating", 3) }, Unknown, nil},
		{"deactivating", func(f *conntest.Fake) { isActive(f, "deactivating", 0) }, Unknown, nil},
		{"no such unit, old systemd", func(f *conntest.Fake) { isActive(f, "unknown", 3) }, Stopped, nil},
		{"no bus", func(f *conntest.Fake) {
			f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stderr("Failed to connect to bus").Exit(1)
		}, Unknown, errAny},
		{"transport", func(f *conntest.Fake) { f.On(conntest.Prefix("systemctl")).Err(transport) }, Unknown, transport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := conntest.New(t)
			tt.setup(f)
			st, err := systemd{}.Status(context.Background(), f, Service{Name: "etcd"})
			if st != tt.want {
				t.Errorf("Status = %v, want %v", st, tt.want)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("err = %v", err)
			case tt.wantErr == errAny && err == nil:
				t.Error("want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestSystemdStartStop(t *testing.T) {
	tests := []struct {
		name     string
		stop     bool
		setup    func(f *conntest.Fake)
		changed  bool
		errHas   []string
		commands []string
	}{
		{
			name: "start when stopped",
			setup: func(f *conntest.Fake) {
				isActive(f, "inactive", 3).Times(1)
				f.On(conntest.Exact("systemctl", "start", "etcd"))
				isActive(f, "activating", 3).Times(1)
				isActive(f, "active", 0)
			},
			changed:  true,
			commands: []string{"systemctl is-active etcd", "systemctl start etcd", "systemctl is-active etcd", "systemctl is-active etcd"},
		},
		{
			name:     "start when running is a no-op",
			setup:    func(f *conntest.Fake) { isActive(f, "active", 0) },
			commands: []string{"systemctl is-active etcd"},
		},
		{
			name: "start that fails shows the journal",
			setup: func(f *conntest.Fake) {
				isActive(f, "inactive", 3)
				f.On(conntest.Exact("systemctl", "start", "etcd")).
					Stderr("Job for etcd.service failed because the control process exited with error code.\n").Exit(1)
				f.On(conntest.Exact("systemctl", "show", "-p", "InvocationID", "--value", "etcd")).Stdout("8a3f0c\n")
				f.On(conntest.Prefix("journalctl", "-u", "etcd")).Stdout(`{"level":"info","msg":"starting"}` + "\n" +
					`{"level":"fatal","msg":"failed to verify flags","error":"unknown flag: --initial-cluster-x"}` + "\n")
			},
			errHas: []string{`etcd: start failed, saying: info: starting | fatal: failed to verify flags: unknown flag: --initial-cluster-x (journalctl -u etcd): `,
				"exit status 1", "Job for etcd.service failed"},
			commands: []string{"systemctl is-active etcd", "systemctl start etcd", "systemctl show -p InvocationID --value etcd",
				"journalctl -u etcd _SYSTEMD_INVOCATION_ID=8a3f0c -n 5 --no-pager -q -o cat"},
		},
		{
			name: "unit that fails after starting",
			setup: func(f *conntest.Fake) {
				isActive(f, "inactive", 3).Times(1)
				f.On(conntest.Exact("systemctl", "start", "etcd"))
				isActive(f, "failed", 3)
				f.On(conntest.Prefix("systemctl", "show")).Exit(1)
				f.On(conntest.Prefix("journalctl")).Exit(1) // no journal: the error still stands
			},
			changed: true,
			errHas:  []string{`etcd failed to start; systemctl is-active says "failed"`},
		},
		{
			name: "start that never gets there",
			setup: func(f *conntest.Fake) {
				isActive(f, "inactive", 3).Times(1)
				f.On(conntest.Exact("systemctl", "start", "etcd"))
				isActive(f, "activating", 3)
				f.On(conntest.Prefix("systemctl", "show")).Stdout("\n")
				f.On(conntest.Prefix("journalctl")).Stdout("")
			},
			changed: true,
			errHas:  []string{`etcd did not start within 150ms; systemctl is-active says "activating"`},
		},
		{
			name: "stop when running",
			stop: true,
			setup: func(f *conntest.Fake) {
				isActive(f, "active", 0).Times(1)
				f.On(conntest.Exact("systemctl", "stop", "etcd"))
				isActive(f, "inactive", 3)
			},
			changed:  true,
			commands: []string{"systemctl is-active etcd", "systemctl stop etcd", "systemctl is-active etcd"},
		},
		{
			name:     "stop when failed is a no-op",
			stop:     true,
			setup:    func(f *conntest.Fake) { isActive(f, "failed", 3) },
			commands: []string{"systemctl is-active etcd"},
		},
		{
			name: "stop that hangs",
			stop: true,
			setup: func(f *conntest.Fake) {
				isActive(f, "active", 0).Times(1)
				f.On(conntest.Exact("systemctl", "stop", "etcd")).Hang()
				f.On(conntest.Prefix("systemctl", "show")).Stdout("\n")
				f.On(conntest.Prefix("journalctl")).Stdout("")
			},
			errHas: []string{"etcd: stop failed", "did not finish in time"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := conntest.New(t)
			tt.setup(f)
			s := Service{Name: "etcd", Become: true, BecomeUser: "root", Wait: 150 * time.Millisecond}
			op := systemd{}.Start
			if tt.stop {
				op = systemd{}.Stop
			}
			res, err := op(testCtx(t), f, s)
			if res.Changed != tt.changed {
				t.Errorf("Changed = %v, want %v", res.Changed, tt.changed)
			}
			if len(tt.errHas) == 0 && err != nil {
				t.Errorf("err = %v", err)
			}
			for _, w := range tt.errHas {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if tt.commands != nil && !slices.Equal(f.Commands(), tt.commands) {
				t.Errorf("commands = %q\nwant %q", f.Commands(), tt.commands)
			}
			for _, c := range f.Calls() {
				if !c.Cmd.Become || c.Cmd.BecomeUser != "root" {
					t.Errorf("%s ran without become root", c.Cmd)
				}
			}
		})
	}
}

func TestSystemdTransportErrorStopsTheWait(t *testing.T) {
	f := conntest.New(t)
	isActive(f, "inactive", 3)
	f.On(conntest.Exact("systemctl", "start", "etcd"))
	f.FailAfter(2, nil)
	_, err := systemd{}.Start(testCtx(t), f, Service{Name: "etcd", Wait: time.Minute})
	if !conn.IsTransport(err) {
		t.Fatalf("err = %v, want a transport error", err)
	}
}
