package command

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"reflect"
	"slices"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

// fakeConn records every command and answers with answer; it fails any command
// answer does not expect, so a test never passes on a command it did not foresee.
type fakeConn struct {
	ran    []conn.Cmd
	stdin  []string
	answer func(c conn.Cmd) (conn.Output, error)
}

func (f *fakeConn) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	f.ran = append(f.ran, c)
	in := ""
	if c.Stdin != nil {
		b, err := io.ReadAll(c.Stdin)
		if err != nil {
			return conn.Output{}, err
		}
		in = string(b)
	}
	f.stdin = append(f.stdin, in)
	return f.answer(c)
}

func (f *fakeConn) Put(context.Context, io.Reader, string, fs.FileMode) error {
	return errors.New("fake: Put not expected")
}
func (f *fakeConn) Get(context.Context, string, io.Writer) error {
	return errors.New("fake: Get not expected")
}
func (f *fakeConn) String() string { return "fake" }
func (f *fakeConn) Close() error   { return nil }

// paths answers `test -e` from the set of existing paths and runs everything
// else through run.
func paths(existing []string, run func(conn.Cmd) (conn.Output, error)) func(conn.Cmd) (conn.Output, error) {
	return func(c conn.Cmd) (conn.Output, error) {
		if len(c.Argv) == 3 && c.Argv[0] == "test" && c.Argv[1] == "-e" {
			if slices.Contains(existing, c.Argv[2]) {
				return conn.Output{}, nil
			}
			return conn.Output{ExitCode: 1}, &conn.ExitError{Cmd: c.String(), ExitCode: 1}
		}
		if run == nil {
			return conn.Output{}, errors.New("fake: unexpected command " + c.String())
		}
		return run(c)
	}
}

func ok(stdout string) func(conn.Cmd) (conn.Output, error) {
	return func(conn.Cmd) (conn.Output, error) { return conn.Output{Stdout: []byte(stdout)}, nil }
}

func TestRun(t *testing.T) {
	tests := []struct {
		name        string
		m           Module
		host        modules.Host
		existing    []string
		run         func(conn.Cmd) (conn.Output, error)
		answer      func(conn.Cmd) (conn.Output, error) // replaces existing and run
		wantCmds    []conn.Cmd                          // Stdin left out: compared through wantStdin
		wantStdin   string                              // of the last command
		wantChanged bool
		wantData    map[string]any
		wantErr     string
	}{
		{
			name:        "argv is passed word by word, never joined for a shell",
			m:           Module{Cmd: arg.Argv{"echo", "a b", "$HOME", "; rm -rf /"}},
			run:         ok("a b $HOME ; rm -rf /\n"),
			wantCmds:    []conn.Cmd{{Argv: []string{"echo", "a b", "$HOME", "; rm -rf /"}}},
			wantChanged: true,
			wantData:    map[string]any{"rc": 0, "stdout": "a b $HOME ; rm -rf /", "stderr": "", "skipped": false, "msg": ""},
		},
		{
			name: "env, chdir, stdin and become reach the command",
			m: Module{Cmd: arg.Argv{"etcdctl", "put", "k"}, Chdir: "/var/lib/etcd",
				Env: map[string]string{"ETCDCTL_API": "3"}, Stdin: "value\n"},
			host: modules.Host{Become: true, BecomeUser: "etcd"},
			run:  ok("OK\r\n\n"),
			wantCmds: []conn.Cmd{{Argv: []string{"etcdctl", "put", "k"}, Dir: "/var/lib/etcd",
				Env: map[string]string{"ETCDCTL_API": "3"}, Become: true, BecomeUser: "etcd"}},
			wantStdin:   "value\n",
			wantChanged: true,
			wantData:    map[string]any{"rc": 0, "stdout": "OK", "stderr": "", "skipped": false, "msg": ""},
		},
		{
			name:     "creates skips when the path exists",
			m:        Module{Cmd: arg.Argv{"tar", "-xzf", "etcd.tgz"}, Chdir: "/opt", Creates: "etcd/etcd"},
			host:     modules.Host{Become: true},
			existing: []string{"etcd/etcd"},
			wantCmds: []conn.Cmd{{Argv: []string{"test", "-e", "etcd/etcd"}, Dir: "/opt", Become: true}},
			wantData: map[string]any{"rc": 0, "stdout": "", "stderr": "", "skipped": true, "msg": "skipped: etcd/etcd exists (creates)"},
		},
		{
			name: "creates runs the command when the path is absent",
			m:    Module{Cmd: arg.Argv{"touch", "/done"}, Creates: "/done"},
			run:  ok(""),
			wantCmds: []conn.Cmd{
				{Argv: []string{"test", "-e", "/done"}},
				{Argv: []string{"touch", "/done"}},
			},
			wantChanged: true,
			wantData:    map[string]any{"rc": 0, "stdout": "", "stderr": "", "skipped": false, "msg": ""},
		},
		{
			name:     "removes skips when the path is absent",
			m:        Module{Cmd: arg.Argv{"rm", "/x"}, Removes: "/x"},
			wantCmds: []conn.Cmd{{Argv: []string{"test", "-e", "/x"}}},
			wantData: map[string]any{"rc": 0, "stdout": "", "stderr": "", "skipped": true, "msg": "skipped: /x does not exist (removes)"},
		},
		{
			name:     "removes runs the command when the path exists",
			m:        Module{Cmd: arg.Argv{"rm", "/x"}, Removes: "/x"},
			existing: []string{"/x"},
			run:      ok(""),
			wantCmds: []conn.Cmd{
				{Argv: []string{"test", "-e", "/x"}},
				{Argv: []string{"rm", "/x"}},
			},
			wantChanged: true,
			wantData:    map[string]any{"rc": 0, "stdout": "", "stderr": "", "skipped": false, "msg": ""},
		},
		{
			name: "a failed command keeps its output in the result",
			m:    Module{Cmd: arg.Argv{"false"}},
			run: func(c conn.Cmd) (conn.Output, error) {
				return conn.Output{ExitCode: 3, Stdout: []byte("partial\n"), Stderr: []byte("boom\n")},
					&conn.ExitError{Cmd: c.String(), ExitCode: 3, Stderr: []byte("boom\n")}
			},
			wantCmds:    []conn.Cmd{{Argv: []string{"false"}}},
			wantChanged: true,
			wantData:    map[string]any{"rc": 3, "stdout": "partial", "stderr": "boom", "skipped": false, "msg": ""},
			wantErr:     "false: exit status 3: boom",
		},
		{
			name: "a lost connection is not a result",
			m:    Module{Cmd: arg.Argv{"true"}},
			run: func(conn.Cmd) (conn.Output, error) {
				return conn.Output{}, &conn.TransportError{Host: "etcd1", Err: errors.New("connection reset")}
			},
			wantCmds: []conn.Cmd{{Argv: []string{"true"}}},
			wantErr:  "etcd1: connection reset",
		},
		{
			name: "test failing on its own is an error, not an absent path",
			m:    Module{Cmd: arg.Argv{"true"}, Creates: "/x"},
			answer: func(c conn.Cmd) (conn.Output, error) {
				return conn.Output{ExitCode: 2}, &conn.ExitError{Cmd: c.String(), ExitCode: 2}
			},
			wantCmds: []conn.Cmd{
				{Argv: []string{"test", "-e", "/x"}},
			},
			wantErr: "creates: testing /x on h1: test -e /x: exit status 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeConn{answer: paths(tt.existing, tt.run)}
			if tt.answer != nil {
				fc.answer = tt.answer
			}
			h := tt.host
			h.Name, h.Conn = "h1", fc
			res, err := tt.m.Run(context.Background(), &h)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			var got []conn.Cmd
			for _, c := range fc.ran {
				c.Stdin = nil
				got = append(got, c)
			}
			if !reflect.DeepEqual(got, tt.wantCmds) {
				t.Errorf("commands run:\ngot  %+v\nwant %+v", got, tt.wantCmds)
			}
			if last := fc.stdin[len(fc.stdin)-1]; last != tt.wantStdin {
				t.Errorf("stdin = %q, want %q", last, tt.wantStdin)
			}
			if res.Changed != tt.wantChanged || !reflect.DeepEqual(res.Data, tt.wantData) {
				t.Errorf("result = %+v, want changed %v data %v", res, tt.wantChanged, tt.wantData)
			}
		})
	}
}

func TestCheckNeverRunsTheCommand(t *testing.T) {
	tests := []struct {
		name        string
		existing    []string
		wantChanged bool
		wantMsg     string
	}{
		{"would run", nil, true, "would run tar -xzf 'a b.tgz'"},
		{"would skip", []string{"/opt/etcd"}, false, "skipped: /opt/etcd exists (creates)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeConn{answer: paths(tt.existing, nil)}
			m := Module{Cmd: arg.Argv{"tar", "-xzf", "a b.tgz"}, Creates: "/opt/etcd"}
			res, err := m.Check(context.Background(), &modules.Host{Name: "h1", Conn: fc})
			if err != nil {
				t.Fatal(err)
			}
			if len(fc.ran) != 1 || fc.ran[0].Argv[0] != "test" {
				t.Errorf("Check ran %+v, want only the creates test", fc.ran)
			}
			if res.Changed != tt.wantChanged || res.Data["msg"] != tt.wantMsg {
				t.Errorf("Check = %+v, want changed %v msg %q", res, tt.wantChanged, tt.wantMsg)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string // "" means valid
		wantMsg   string
	}{
		{"list", Module{Cmd: arg.Argv{"etcdctl", "endpoint", "health"}}, "", ""},
		{"env", Module{Cmd: arg.Argv{"env"}, Env: map[string]string{"ETCDCTL_API": "3", "_x1": ""}}, "", ""},
		{"empty command", Module{Cmd: arg.Argv{}}, "cmd", "is empty"},
		{"empty program", Module{Cmd: arg.Argv{" ", "x"}}, "cmd", "is empty"},
		{"env name with a dash", Module{Cmd: arg.Argv{"env"}, Env: map[string]string{"OK": "", "ETCD-API": "3"}}, "env", `"ETCD-API" is not a variable name`},
		{"env name with a digit first", Module{Cmd: arg.Argv{"env"}, Env: map[string]string{"1X": ""}}, "env", `"1X"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}
