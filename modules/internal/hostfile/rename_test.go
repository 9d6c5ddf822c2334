package hostfile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

// TestRenameAtOnceOutcomes: each exit code of the script is the error (or
// the warning) Rename gives for the same outcome, a failed rename removes
// the staged file and nothing else does, and the command runs with the
// step's become.
func TestRenameAtOnceOutcomes(t *testing.T) {
	const stage, dest = "/opt/.etcd.runbook-new.Kq3v8Zp2Ld", "/opt/etcd"
	lost := &conn.TransportError{Host: "fake", Err: context.DeadlineExceeded}
	tests := []struct {
		name    string
		exit    int
		stderr  string
		err     error
		wantErr string // "" for none
		removed bool   // the staged file is removed
		warned  bool
	}{
		{name: "renamed and synced"},
		{name: "staged file missing", exit: 3, wantErr: stage + ", made by this step, is missing on the host"},
		{name: "staged file not regular", exit: 4, wantErr: stage + ", made by this step, is no longer a regular file; not following it"},
		{name: "mv failed", exit: 5, stderr: "mv: cannot move 'a' to 'b': Read-only file system\n",
			wantErr: "renaming " + stage + " to " + dest + ": mv -f -- " + stage + " " + dest + " failed: mv: cannot move 'a' to 'b': Read-only file system", removed: true},
		{name: "sync failed", exit: 6, stderr: "sync: error syncing '/opt': Input/output error\n", warned: true},
		{name: "sudo refused", exit: 1, stderr: "sudo: a password is required\n", wantErr: "renaming " + stage + " to " + dest + ": sh -c <rename script>: exit status 1: sudo: a password is required", removed: true},
		{name: "connection lost", err: lost, wantErr: "renaming " + stage + " to " + dest + ": fake: context deadline exceeded", removed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := conntest.New(t)
			r := f.On(conntest.Exact(RenameCmd(stage, dest)...)).Exit(tt.exit).Stderr(tt.stderr)
			if tt.err != nil {
				r.Err(tt.err)
			}
			f.On(conntest.Exact("rm", "-f", "--", stage))
			var log bytes.Buffer
			h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.New(&log), Become: true, BecomeUser: "root"}
			err := RenameAtOnce(context.Background(), h, stage, dest)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("RenameAtOnce = %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("RenameAtOnce = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.err != nil && !conn.IsTransport(err) {
				t.Errorf("RenameAtOnce = %v, want the transport error wrapped", err)
			}
			var removed bool
			for _, c := range f.Calls() {
				if !c.Cmd.Become || c.Cmd.BecomeUser != "root" {
					t.Errorf("%s ran without the step's become", c.Cmd)
				}
				removed = removed || c.Cmd.Argv[0] == "rm"
			}
			if removed != tt.removed {
				t.Errorf("staged file removed: %v, want %v", removed, tt.removed)
			}
			warned := strings.Contains(log.String(), "sync failed") && strings.Contains(log.String(), "Input/output error")
			if warned != tt.warned {
				t.Errorf("warned: %v, want %v; log: %s", warned, tt.warned, log.String())
			}
		})
	}
}

// TestRenameAtOnceNames: the paths reach the script as its arguments, so
// names a shell would read as syntax are only names.
func TestRenameAtOnceNames(t *testing.T) {
	for _, name := range []string{
		"etcd",
		"with space",
		"it's",
		`$(touch pwned)`,
		"`touch pwned`",
		"a;touch pwned",
		"star*?[x]",
		"new\nline",
		"-dash",
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d "+name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(dir, name)
			stage := StagePrefix(dest) + "abc"
			if err := os.WriteFile(dest, []byte("old"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stage, []byte("new"), 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var log bytes.Buffer
			h := &modules.Host{Name: "etcd-1", Conn: local.New(), Log: zerolog.New(&log)}
			if err := RenameAtOnce(ctx, h, stage, dest); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(dest); err != nil || string(got) != "new" {
				t.Errorf("dest = %q, %v; want the staged file", got, err)
			}
			if _, err := os.Lstat(stage); !os.IsNotExist(err) {
				t.Errorf("the staged file is still there: %v", err)
			}
			if log.Len() > 0 {
				t.Errorf("logged %s", log.String())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("the folder holds %d entries, want dest only", len(entries))
			}
			if _, err := os.Lstat("pwned"); err == nil {
				t.Error("a name ran as a command")
			}
		})
	}
}
