package shell

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"reflect"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

// fakeConn records every command; a `test -e` of a path in existing succeeds,
// any other `test -e` exits 1, and everything else gets out.
type fakeConn struct {
	ran      []conn.Cmd
	stdin    string
	existing map[string]bool
	out      conn.Output
}

func (f *fakeConn) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	f.ran = append(f.ran, c)
	if len(c.Argv) == 3 && c.Argv[0] == "test" && c.Argv[1] == "-e" {
		if f.existing[c.Argv[2]] {
			return conn.Output{}, nil
		}
		return conn.Output{ExitCode: 1}, &conn.ExitError{Cmd: c.String(), ExitCode: 1}
	}
	if c.Shell == "" {
		return conn.Output{}, errors.New("fake: unexpected command " + c.String())
	}
	if c.Stdin != nil {
		b, err := io.ReadAll(c.Stdin)
		if err != nil {
			return conn.Output{}, err
		}
		f.stdin = string(b)
	}
	return f.out, nil
}

func (f *fakeConn) Put(context.Context, io.Reader, string, fs.FileMode) error {
	return errors.New("fake: Put not expected")
}
func (f *fakeConn) Get(context.Context, string, io.Writer) error {
	return errors.New("fake: Get not expected")
}
func (f *fakeConn) String() string { return "fake" }
func (f *fakeConn) Close() error   { return nil }

func TestRun(t *testing.T) {
	tests := []struct {
		name        string
		m           Module
		existing    map[string]bool
		wantCmds    []conn.Cmd
		wantStdin   string
		wantChanged bool
		wantStdout  string
	}{
		{
			name: "the command line goes to the shell as it is",
			m: Module{Cmd: `ls /var/backups/*.db | tail -n +6`, Chdir: "/tmp",
				Env: map[string]string{"KEEP": "5"}, Stdin: "x"},
			wantCmds: []conn.Cmd{{Shell: `ls /var/backups/*.db | tail -n +6`, Dir: "/tmp",
				Env: map[string]string{"KEEP": "5"}, Become: true, BecomeUser: "etcd"}},
			wantStdin:   "x",
			wantChanged: true,
			wantStdout:  "a.db",
		},
		{
			name:     "creates skips when the path exists",
			m:        Module{Cmd: "make install", Creates: "/usr/local/bin/etcd"},
			existing: map[string]bool{"/usr/local/bin/etcd": true},
			wantCmds: []conn.Cmd{{Argv: []string{"test", "-e", "/usr/local/bin/etcd"}, Become: true, BecomeUser: "etcd"}},
		},
		{
			name:     "removes skips when the path is absent",
			m:        Module{Cmd: "rm /tmp/lock", Removes: "/tmp/lock"},
			wantCmds: []conn.Cmd{{Argv: []string{"test", "-e", "/tmp/lock"}, Become: true, BecomeUser: "etcd"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeConn{existing: tt.existing, out: conn.Output{Stdout: []byte("a.db\n")}}
			res, err := tt.m.Run(context.Background(), &modules.Host{Name: "h1", Conn: fc, Become: true, BecomeUser: "etcd"})
			if err != nil {
				t.Fatal(err)
			}
			for i := range fc.ran {
				fc.ran[i].Stdin = nil
			}
			if !reflect.DeepEqual(fc.ran, tt.wantCmds) {
				t.Errorf("commands run:\ngot  %+v\nwant %+v", fc.ran, tt.wantCmds)
			}
			if fc.stdin != tt.wantStdin {
				t.Errorf("stdin = %q, want %q", fc.stdin, tt.wantStdin)
			}
			if res.Changed != tt.wantChanged || res.Data["stdout"] != tt.wantStdout || res.Data["skipped"] != !tt.wantChanged {
				t.Errorf("result = %+v, want changed %v stdout %q", res, tt.wantChanged, tt.wantStdout)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	fc := &fakeConn{}
	res, err := (&Module{Cmd: "systemctl daemon-reload"}).Check(context.Background(), &modules.Host{Name: "h1", Conn: fc})
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.ran) != 0 || !res.Changed || res.Data["msg"] != "would run /bin/sh -c 'systemctl daemon-reload'" {
		t.Errorf("Check ran %+v and returned %+v", fc.ran, res)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"command line", Module{Cmd: "echo $HOME > /tmp/home"}, "", ""},
		{"empty", Module{Cmd: ""}, "cmd", "is empty"},
		{"blank", Module{Cmd: " \n\t"}, "cmd", "is empty"},
		{"bad env name", Module{Cmd: "env", Env: map[string]string{"A B": "1"}}, "env", `"A B" is not a variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}
