package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
)

// run runs c with a bound so that a bug never hangs the test binary.
func run(t *testing.T, l *Local, c conn.Cmd) (conn.Output, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.Run(ctx, c)
}

func TestRunArgvIsVerbatim(t *testing.T) {
	hostile := []string{
		"$(touch pwned1)",
		"`touch pwned2`",
		"; touch pwned3",
		"&& touch pwned4 &&",
		"| touch pwned5",
		`a'b"c\d`,
		"line1\nline2\n",
		"*",
		"$HOME ${PATH}",
		"",
		"-n",
	}
	l := New()
	for _, v := range hostile {
		t.Run(strconv.Quote(v), func(t *testing.T) {
			dir := t.TempDir()
			out, err := run(t, l, conn.Cmd{Argv: []string{"printf", "%s", v}, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out.Stdout); got != v {
				t.Errorf("stdout = %q, want %q", got, v)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("the argument was run by a shell: %s now holds %v", dir, ents)
			}
		})
	}
}

func TestRunShell(t *testing.T) {
	out, err := run(t, New(), conn.Cmd{Shell: `echo "$((1+2))" "$0"; echo err >&2`})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out.Stdout), "3 /bin/sh\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got := string(out.Stderr); got != "err\n" {
		t.Errorf("stderr = %q", got)
	}
}

func TestRunExitStatus(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		cmd        conn.Cmd
		code       int
		stderrHas  string
		errHas     string
		wantStdout string
	}{
		{name: "argv exit", cmd: conn.Cmd{Argv: []string{"sh", "-c", "echo out; echo bad thing >&2; exit 3"}},
			code: 3, stderrHas: "bad thing", errHas: "exit status 3: bad thing", wantStdout: "out\n"},
		{name: "shell exit", cmd: conn.Cmd{Shell: "exit 42"}, code: 42, errHas: "/bin/sh -c 'exit 42': exit status 42"},
		{name: "not found in PATH", cmd: conn.Cmd{Argv: []string{"runbook-no-such-program"}}, code: 127,
			stderrHas: "runbook-no-such-program: executable file not found"},
		{name: "absolute not found", cmd: conn.Cmd{Argv: []string{filepath.Join(dir, "missing")}}, code: 127,
			stderrHas: "no such file or directory"},
		{name: "not executable", cmd: conn.Cmd{Argv: []string{notExec}}, code: 126, stderrHas: "permission denied"},
		{name: "killed by signal", cmd: conn.Cmd{Shell: "kill -KILL $$"}, code: 128 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, New(), tt.cmd)
			var ee *conn.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v (%T), want *conn.ExitError", err, err)
			}
			if conn.IsTransport(err) {
				t.Errorf("a failed command must not be a transport error")
			}
			if ee.ExitCode != tt.code {
				t.Errorf("exit code = %d, want %d", ee.ExitCode, tt.code)
			}
			if !strings.Contains(string(ee.Stderr), tt.stderrHas) {
				t.Errorf("stderr = %q, want it to contain %q", ee.Stderr, tt.stderrHas)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q does not contain %q", err, tt.errHas)
			}
			if out.ExitCode != tt.code || !bytes.Equal(out.Stderr, ee.Stderr) {
				t.Errorf("Output = %d %q, want it to match the error", out.ExitCode, out.Stderr)
			}
			if string(out.Stdout) != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", out.Stdout, tt.wantStdout)
			}
		})
	}
}

func TestRunEnvDirStdin(t *testing.T) {
	t.Setenv("RUNBOOK_TEST_PARENT", "inherited")
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "hello"), []byte("#!/bin/sh\necho hello from path\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		cmd  conn.Cmd
		want string
	}{
		{"env added", conn.Cmd{Shell: `printf '%s|%s' "$FOO" "$RUNBOOK_TEST_PARENT"`, Env: map[string]string{"FOO": "a b$c"}},
			"a b$c|inherited"},
		{"env overrides", conn.Cmd{Shell: `printf %s "$RUNBOOK_TEST_PARENT"`, Env: map[string]string{"RUNBOOK_TEST_PARENT": "mine"}},
			"mine"},
		{"env PATH finds the program", conn.Cmd{Argv: []string{"hello"}, Env: map[string]string{"PATH": bin + ":/usr/bin:/bin"}},
			"hello from path\n"},
		{"dir", conn.Cmd{Argv: []string{"pwd"}, Dir: dir}, dir + "\n"},
		{"stdin", conn.Cmd{Argv: []string{"cat"}, Stdin: strings.NewReader("fed\x00to stdin")}, "fed\x00to stdin"},
		{"no stdin reads nothing", conn.Cmd{Argv: []string{"cat"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, New(), tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if string(out.Stdout) != tt.want {
				t.Errorf("stdout = %q, want %q", out.Stdout, tt.want)
			}
		})
	}
}

func TestRunRefusesBadCommands(t *testing.T) {
	tests := []struct {
		name string
		cmd  conn.Cmd
		want string
	}{
		{"empty", conn.Cmd{}, "empty command"},
		{"both", conn.Cmd{Argv: []string{"true"}, Shell: "true"}, "both"},
		{"env key with =", conn.Cmd{Argv: []string{"true"}, Env: map[string]string{"A=B": "x"}}, "invalid environment variable"},
		{"empty env key", conn.Cmd{Argv: []string{"true"}, Env: map[string]string{"": "x"}}, "invalid environment variable"},
		{"missing dir", conn.Cmd{Argv: []string{"true"}, Dir: "/nonexistent/runbook"}, "stat /nonexistent/runbook: no such file or directory"},
		{"dir is a file", conn.Cmd{Argv: []string{"true"}, Dir: "/etc/passwd"}, "/etc/passwd is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, New(), tt.cmd)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			var ee *conn.ExitError
			if errors.As(err, &ee) {
				t.Errorf("a refused command is not an exit error: %v", err)
			}
		})
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New().Run(ctx, conn.Cmd{Argv: []string{"touch", "ran"}, Dir: dir})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran although ctx was already cancelled")
	}
}

// gone reports whether pid no longer runs. This machine's init may never reap
// orphans, so a zombie counts as gone: it runs nothing and holds nothing.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(stat)
	s = s[strings.LastIndexByte(s, ')')+2:]
	return s[0] == 'Z' || s[0] == 'X'
}

// waitFile waits until path holds a pid and returns it.
func waitPid(t *testing.T, path string) int {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return 0
}

// waitGone waits, bounded, until pid is gone: a killed process may need a
// moment to exit after Run returned.
func waitGone(pid int) bool {
	for i := 0; i < 200; i++ {
		if gone(pid) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func killLater(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}

func TestCancelKillsProcessTree(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"children die on TERM", `sleep 60 & echo $! > "$PIDF"; sleep 60`},
		// An ignored signal stays ignored across fork and exec, so the whole
		// tree ignores TERM and only SIGKILL after the grace period ends it.
		{"children ignore TERM", `trap '' TERM; sleep 60 & echo $! > "$PIDF"; sleep 60`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidf := filepath.Join(t.TempDir(), "pid")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				defer cancel()
				// Cancel once the pid is written whole: the shell creates the
				// file before echo writes to it, and a cancel in between kills
				// the echo and leaves it empty (seen under the suite's load).
				for i := 0; i < 1000; i++ {
					if b, err := os.ReadFile(pidf); err == nil && bytes.HasSuffix(b, []byte("\n")) {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			l := New(WithGrace(300 * time.Millisecond))
			_, err := l.Run(ctx, conn.Cmd{Shell: tt.script, Env: map[string]string{"PIDF": pidf}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if !strings.Contains(err.Error(), "killed") {
				t.Errorf("error %q should say the command was killed", err)
			}
			grandchild := waitPid(t, pidf)
			killLater(t, grandchild)
			if !waitGone(grandchild) {
				t.Errorf("grandchild %d still runs after Run returned", grandchild)
			}
		})
	}
}

func TestTimeoutKillsProcessTree(t *testing.T) {
	pidf := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := New(WithGrace(300*time.Millisecond)).Run(ctx, conn.Cmd{
		Shell: `sleep 60 & echo $! > "$PIDF"; sleep 60`, Env: map[string]string{"PIDF": pidf}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if b, err := os.ReadFile(pidf); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		killLater(t, pid)
		if pid > 0 && !waitGone(pid) {
			t.Errorf("grandchild %d still runs after the timeout", pid)
		}
	}
}

// A command may leave a process behind that holds stdout open; Run must not
// wait for it, and must not kill it either (the command did not fail).
func TestRunReturnsWhenLeftoverHoldsOutput(t *testing.T) {
	out, err := run(t, New(WithGrace(200*time.Millisecond)), conn.Cmd{Shell: `sleep 30 & echo $!`})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out.Stdout)))
	if err != nil {
		t.Fatalf("stdout %q: %v", out.Stdout, err)
	}
	killLater(t, pid)
	if gone(pid) {
		t.Errorf("the leftover process %d was killed although the command succeeded", pid)
	}
}

func TestOutputCap(t *testing.T) {
	const limit = 1000
	out, err := run(t, New(WithOutputLimit(limit)), conn.Cmd{
		Shell: `head -c 1000000 /dev/zero | tr '\0' a; printf END; head -c 5000 /dev/zero | tr '\0' e >&2`})
	if err != nil {
		t.Fatal(err)
	}
	wantMarker := "[runbook: output truncated, 999003 earlier bytes dropped]\n"
	if !bytes.HasPrefix(out.Stdout, []byte(wantMarker)) {
		t.Errorf("stdout starts with %q, want marker %q", out.Stdout[:min(80, len(out.Stdout))], wantMarker)
	}
	if body := out.Stdout[len(wantMarker):]; len(body) != limit || !bytes.HasSuffix(body, []byte("aaaEND")) {
		t.Errorf("kept %d bytes ending %q, want the last %d ending in END", len(body), body[max(0, len(body)-10):], limit)
	}
	if !bytes.HasPrefix(out.Stderr, []byte("[runbook: output truncated, 4000 earlier")) {
		t.Errorf("stderr not capped: %q", out.Stderr[:min(80, len(out.Stderr))])
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		writes []string
	}{
		{"under", 10, []string{"abc", "def"}},
		{"exact", 6, []string{"abc", "def"}},
		{"many small", 4, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}},
		{"one huge", 4, []string{"0123456789"}},
		{"huge after small", 4, []string{"ab", "0123456789", "x"}},
		{"crosses twice the limit", 3, []string{"ab", "cd", "ef", "gh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := conn.NewTail(tt.limit)
			all := ""
			for _, w := range tt.writes {
				if n, err := tl.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				all += w
			}
			want := all
			if len(all) > tt.limit {
				want = "[runbook: output truncated, " + strconv.Itoa(len(all)-tt.limit) + " earlier bytes dropped]\n" + all[len(all)-tt.limit:]
			}
			if got := string(tl.Bytes()); got != want {
				t.Errorf("Bytes = %q, want %q", got, want)
			}
		})
	}
}

func TestBuildBecome(t *testing.T) {
	t.Setenv("RUNBOOK_SSH_PASSPHRASE", "controller-passphrase")
	withSudo := func() (string, error) { return "/usr/bin/sudo", nil }
	noSudo := func() (string, error) { return "", errors.New("not found") }
	tests := []struct {
		name     string
		lookSudo func() (string, error)
		euid     int
		cmd      conn.Cmd
		argv     []string
		envAdded bool
	}{
		{"not become", withSudo, 1000, conn.Cmd{Argv: []string{"id", "-u"}}, []string{"id", "-u"}, false},
		{"root", withSudo, 1000, conn.Cmd{Argv: []string{"id", "-u"}, Become: true},
			[]string{"/usr/bin/sudo", "-n", "--", "id", "-u"}, false},
		{"user", withSudo, 1000, conn.Cmd{Argv: []string{"id"}, Become: true, BecomeUser: "etcd"},
			[]string{"/usr/bin/sudo", "-n", "-u", "etcd", "--", "id"}, false},
		{"shell", withSudo, 0, conn.Cmd{Shell: "echo $HOME; rm x", Become: true},
			[]string{"/usr/bin/sudo", "-n", "--", "/bin/sh", "-c", "echo $HOME; rm x"}, false},
		{"env goes through env(1)", withSudo, 1000,
			conn.Cmd{Argv: []string{"etcd", "--version"}, Become: true, Env: map[string]string{"B": "2 $x", "A": "1"}},
			[]string{"/usr/bin/sudo", "-n", "--", "/usr/bin/env", "A=1", "B=2 $x", "etcd", "--version"}, false},
		{"root without sudo runs directly", noSudo, 0,
			conn.Cmd{Argv: []string{"id"}, Become: true, Env: map[string]string{"A": "1"}}, []string{"id"}, true},
		{"root without sudo, become root", noSudo, 0,
			conn.Cmd{Argv: []string{"id"}, Become: true, BecomeUser: "root"}, []string{"id"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New()
			l.lookSudo, l.euid = tt.lookSudo, tt.euid
			argv, env, err := l.build(tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(argv, tt.argv) {
				t.Errorf("argv = %q, want %q", argv, tt.argv)
			}
			if env == nil {
				t.Fatal("no environment: the command would inherit the controller's secrets")
			}
			if got := slices.Contains(env, "A=1"); got != tt.envAdded {
				t.Errorf("A=1 in the environment = %v, want %v", got, tt.envAdded)
			}
			for _, kv := range env {
				if strings.HasPrefix(kv, "RUNBOOK_SSH_PASSPHRASE=") {
					t.Errorf("the environment passes %q on", kv)
				}
			}
		})
	}
}

// TestEnvKeepsControllerSecrets: a command sees the controller's environment
// but not its secrets, whether it runs directly or with env: set.
func TestEnvKeepsControllerSecrets(t *testing.T) {
	const secret = "correct-horse-battery-staple"
	t.Setenv("RUNBOOK_SSH_PASSPHRASE", secret)
	t.Setenv("RUNBOOK_VAULT_PASSWORD", secret+"-2")
	t.Setenv("RUNBOOK_TEST_PARENT", "inherited")
	for _, c := range []conn.Cmd{
		{Shell: "env"},
		{Argv: []string{"env"}},
		{Shell: "env", Env: map[string]string{"FOO": "bar"}},
	} {
		out, err := run(t, New(), c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if strings.Contains(string(out.Stdout), secret) {
			t.Errorf("%s passed the controller's secret on:\n%s", c, out.Stdout)
		}
		if !strings.Contains(string(out.Stdout), "RUNBOOK_TEST_PARENT=inherited") {
			t.Errorf("%s lost the rest of the environment:\n%s", c, out.Stdout)
		}
	}
}

// Without sudo, become as another user (or as root when we are not root)
// fails as a missing program does over SSH; it never runs unprivileged.
func TestBecomeWithoutSudoFails(t *testing.T) {
	tests := []struct {
		name string
		euid int
		user string
	}{
		{"not root", 1000, ""},
		{"root, other user", 0, "etcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := New()
			l.lookSudo, l.euid = func() (string, error) { return "", errors.New("not found") }, tt.euid
			_, err := run(t, l, conn.Cmd{Argv: []string{"touch", "ran"}, Dir: dir, Become: true, BecomeUser: tt.user})
			var ee *conn.ExitError
			if !errors.As(err, &ee) || ee.ExitCode != 127 || !strings.Contains(string(ee.Stderr), "become needs sudo") {
				t.Fatalf("err = %v, want exit status 127 naming sudo", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Error("the command ran without sudo")
			}
		})
	}
}

func TestBecomeAsRootWithoutSudoRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks that become is skipped when already root")
	}
	l := New()
	l.lookSudo = func() (string, error) { return "", errors.New("not found") }
	out, err := run(t, l, conn.Cmd{Shell: `id -u; printf %s "$X"`, Become: true, Env: map[string]string{"X": "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Stdout) != "0\ny" {
		t.Errorf("stdout = %q", out.Stdout)
	}
}

func TestStringAndClose(t *testing.T) {
	l := New()
	if l.String() != "local" {
		t.Errorf("String = %q", l.String())
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
}
