package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/sshtest"
)

func TestRun(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	c := connect(t, s)
	dir := t.TempDir()
	notExec := writeFile(t, filepath.Join(dir, "not-executable"), "#!/bin/sh\n", 0o644)

	const anyExit = -2 // the status is the login shell's: bash says 1, dash 2
	tests := []struct {
		name   string
		cmd    conn.Cmd
		stdout string
		stderr string // contained in stderr
		exit   int
	}{
		{"argv", conn.Cmd{Argv: []string{"echo", "hello", "world"}}, "hello world\n", "", 0},
		{"exit status", conn.Cmd{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, "out\n", "err", 3},
		{"false", conn.Cmd{Argv: []string{"false"}}, "", "", 1},
		{"missing program", conn.Cmd{Argv: []string{"runbook-no-such-program"}}, "", "not found", 127},
		{"not executable", conn.Cmd{Argv: []string{notExec}}, "", "ermission denied", 126},
		{"shell", conn.Cmd{Shell: "for i in 1 2; do echo $i; done | wc -l"}, "2\n", "", 0},
		{"shell exit", conn.Cmd{Shell: "exit 7"}, "", "", 7},
		{"stdin", conn.Cmd{Argv: []string{"cat"}, Stdin: strings.NewReader("from stdin\n")}, "from stdin\n", "", 0},
		{"no stdin reads EOF", conn.Cmd{Argv: []string{"cat"}}, "", "", 0},
		{"env", conn.Cmd{Argv: []string{"printenv", "GREETING"}, Env: map[string]string{"GREETING": "hi there", "OTHER": "x"}}, "hi there\n", "", 0},
		{"env PATH chooses the program", conn.Cmd{Argv: []string{"not-executable"}, Env: map[string]string{"PATH": dir}}, "", "ermission denied", 126},
		{"dir", conn.Cmd{Argv: []string{"pwd"}, Dir: dir}, dir + "\n", "", 0},
		{"missing dir", conn.Cmd{Argv: []string{"pwd"}, Dir: filepath.Join(dir, "nope")}, "", "nope", anyExit},
		{"killed by a signal", conn.Cmd{Shell: "kill -9 $$"}, "", "", 128 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := run(t, c, tt.cmd)
			if tt.exit == 0 && err != nil {
				t.Fatalf("err = %v (stderr %q)", err, out.Stderr)
			}
			if tt.exit != 0 {
				ee := errorAs[*conn.ExitError](t, err)
				if ee.ExitCode != tt.exit && !(tt.exit == anyExit && ee.ExitCode > 0) {
					t.Errorf("exit = %d, want %d (stderr %q)", ee.ExitCode, tt.exit, out.Stderr)
				}
			}
			if out.ExitCode != tt.exit && !(tt.exit == anyExit && out.ExitCode > 0) {
				t.Errorf("Output.ExitCode = %d, want %d", out.ExitCode, tt.exit)
			}
			if string(out.Stdout) != tt.stdout {
				t.Errorf("stdout = %q, want %q", out.Stdout, tt.stdout)
			}
			if !strings.Contains(string(out.Stderr), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", out.Stderr, tt.stderr)
			}
		})
	}

	t.Run("invalid commands are refused before anything runs", func(t *testing.T) {
		t.Parallel()
		for _, cmd := range []conn.Cmd{
			{},
			{Argv: []string{"true"}, Shell: "true"},
			{Argv: []string{"echo", "a\x00b"}},
			{Argv: []string{"true"}, Env: map[string]string{"A=B": "x"}},
			{Argv: []string{"A=B"}, Env: map[string]string{"X": "1"}},
		} {
			if _, err := run(t, c, cmd); err == nil || conn.IsTransport(err) {
				t.Errorf("%#v: err = %v, want a refusal", cmd, err)
			}
		}
	})

	t.Run("a failing stdin source fails the command, not the connection", func(t *testing.T) {
		t.Parallel()
		out, err := run(t, c, conn.Cmd{Argv: []string{"cat"}, Stdin: &failingReader{data: []byte("part")}})
		if err == nil || conn.IsTransport(err) || !strings.Contains(err.Error(), "source broke") {
			t.Errorf("err = %v", err)
		}
		if string(out.Stdout) != "part" {
			t.Errorf("stdout = %q", out.Stdout)
		}
	})

	t.Run("a command may leave its input unread", func(t *testing.T) {
		t.Parallel()
		big := bytes.NewReader(make([]byte, 16<<20))
		out, err := run(t, c, conn.Cmd{Shell: "head -c 3 >/dev/null; echo read some", Stdin: big})
		if err != nil || string(out.Stdout) != "read some\n" {
			t.Errorf("%q, %v", out.Stdout, err)
		}
		_, err = run(t, c, conn.Cmd{Argv: []string{"false"}, Stdin: bytes.NewReader(make([]byte, 16<<20))})
		if ee := errorAs[*conn.ExitError](t, err); ee.ExitCode != 1 {
			t.Errorf("exit %d", ee.ExitCode)
		}
	})

	t.Run("sessions run side by side on one connection", func(t *testing.T) {
		t.Parallel()
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := c.Run(ctxT(t), conn.Cmd{Argv: []string{"sh", "-c", fmt.Sprintf("sleep 1; echo %d", i)}})
				if err == nil && string(out.Stdout) != fmt.Sprintf("%d\n", i) {
					err = fmt.Errorf("session %d printed %q", i, out.Stdout)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		t.Logf("%d one-second commands took %s", n, time.Since(start))
	})

	t.Run("output is capped to its tail", func(t *testing.T) {
		t.Parallel()
		o := options(t, s)
		o.OutputLimit = 1000
		lc := dial(t, newDialer(t, o), target(s, 1))
		out, err := run(t, lc, conn.Cmd{Shell: "seq 1 100000"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out.Stdout, []byte("[runbook: output truncated, ")) || !bytes.HasSuffix(out.Stdout, []byte("\n99999\n100000\n")) {
			t.Errorf("stdout = %q…", out.Stdout[:min(len(out.Stdout), 80)])
		}
		if len(out.Stdout) > 1100 {
			t.Errorf("kept %d bytes, want about 1000", len(out.Stdout))
		}
	})

	t.Run("String", func(t *testing.T) {
		if got, want := c.String(), fmt.Sprintf("ssh://%s@%s", currentUser(t), s.Addr(0)); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	})
}

// Words from vars reach the program as they are: nothing in them is shell
// syntax, with or without become, in argv, env and dir.
func TestHostileValues(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	c := connect(t, s)
	dir := t.TempDir()
	// Were the folder's name run, it would touch dir-ran in the login
	// user's home, where the shell starts.
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work $(touch dir-ran)")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	mark := func(n int) string { return filepath.Join(dir, fmt.Sprintf("ran-%d", n)) }
	words := []string{
		"$(touch " + mark(1) + ")",
		"`touch " + mark(2) + "`",
		"; touch " + mark(3),
		"&& touch " + mark(4),
		"| touch " + mark(5),
		"'; touch " + mark(6) + "; '",
		`"; touch ` + mark(7) + `; "`,
		"line one\ntouch " + mark(8) + "\n",
		"; rm -rf " + dir,
		"$HOME", "*", "~", `\`, `\\'`, " leading and trailing ", "", "-n", "--", "#not a comment", "{a,b}", "a=b",
		"ünïcödé ✓",
	}
	env := map[string]string{"HOSTILE": "$(touch " + mark(9) + ")'\"`;\n"}

	for _, become := range []bool{false, true} {
		t.Run(fmt.Sprintf("become=%t", become), func(t *testing.T) {
			if become {
				needRoot(t)
			}
			argv := append([]string{"printf", `%s\0`}, words...)
			out, err := run(t, c, conn.Cmd{Argv: argv, Env: env, Dir: work, Become: become})
			if err != nil {
				t.Fatalf("%v (stderr %q)", err, out.Stderr)
			}
			got := strings.Split(strings.TrimSuffix(string(out.Stdout), "\x00"), "\x00")
			if len(got) != len(words) {
				t.Fatalf("got %d words, want %d: %q", len(got), len(words), got)
			}
			for i := range words {
				if got[i] != words[i] {
					t.Errorf("word %d = %q, want %q", i, got[i], words[i])
				}
			}
			out, err = run(t, c, conn.Cmd{Argv: []string{"printenv", "HOSTILE"}, Env: env, Dir: work, Become: become})
			if err != nil || string(out.Stdout) != env["HOSTILE"]+"\n" {
				t.Errorf("printenv HOSTILE = %q, %v", out.Stdout, err)
			}
			out, err = run(t, c, conn.Cmd{Argv: []string{"pwd"}, Dir: work, Become: become})
			if err != nil || string(out.Stdout) != work+"\n" {
				t.Errorf("pwd = %q, %v", out.Stdout, err)
			}
			// A program name is never an assignment or a reserved word.
			for _, prog := range []string{"A=B", "if", "!", "{", "case"} {
				_, err := run(t, c, conn.Cmd{Argv: []string{prog, "touch", mark(10)}, Become: become})
				var ee *conn.ExitError
				if !errors.As(err, &ee) || (ee.ExitCode != 127 && !(become && ee.ExitCode == 1)) {
					t.Errorf("program %q: err = %v, want not found", prog, err)
				}
			}
			if extra := leftovers(t, dir, filepath.Base(work)); len(extra) > 0 {
				t.Errorf("a value ran as shell syntax: %v", extra)
			}
			if _, err := os.Stat(filepath.Join(home, "dir-ran")); err == nil {
				os.Remove(filepath.Join(home, "dir-ran"))
				t.Error("the folder's name ran as shell syntax")
			}
		})
	}
}

// Cancelling a command kills it on the host, also under sudo, and the
// connection goes on working.
func TestCancelKillsRemoteCommand(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	c := connect(t, s)
	for i, become := range []bool{false, true} {
		t.Run(fmt.Sprintf("become=%t", become), func(t *testing.T) {
			if become {
				needRoot(t)
			}
			// A duration no other process has, to find this one.
			secs := fmt.Sprintf("%d.%03d", 7000+i, time.Now().UnixNano()%1000)
			alive := func() bool {
				_, err := c.Run(ctxT(t), conn.Cmd{Argv: []string{"pgrep", "-f", "^sleep " + secs + "$"}})
				var ee *conn.ExitError
				if err != nil && !(errors.As(err, &ee) && ee.ExitCode == 1) {
					t.Fatalf("pgrep: %v", err)
				}
				return err == nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				out conn.Output
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := c.Run(ctx, conn.Cmd{Shell: "sleep " + secs + "; echo not killed", Become: become})
				done <- result{out, err}
			}()
			waitFor(t, 20*time.Second, "the command to start on the host", alive)
			cancel()
			var r result
			select {
			case r = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
			if !errors.Is(r.err, context.Canceled) || conn.IsTransport(r.err) {
				t.Errorf("err = %v, want context.Canceled", r.err)
			}
			if strings.Contains(string(r.out.Stdout), "not killed") {
				t.Error("the command ran to its end")
			}
			waitFor(t, 20*time.Second, "the process to be gone from the host", func() bool { return !alive() })
			if got := mustRun(t, c, "echo", "still connected"); got != "still connected\n" {
				t.Errorf("after the cancel: %q", got)
			}
		})
	}
	t.Run("cancelled before it starts", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Run(ctx, conn.Cmd{Argv: []string{"true"}}); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestBecome(t *testing.T) {
	needRoot(t)
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	c := connect(t, s)
	tests := []struct {
		cmd  conn.Cmd
		want string
	}{
		{conn.Cmd{Argv: []string{"id", "-un"}, Become: true}, "root\n"},
		{conn.Cmd{Argv: []string{"id", "-un"}, Become: true, BecomeUser: "nobody"}, "nobody\n"},
		{conn.Cmd{Shell: "id -un; echo $X", Become: true, BecomeUser: "nobody", Env: map[string]string{"X": "kept through sudo"}}, "nobody\nkept through sudo\n"},
		{conn.Cmd{Argv: []string{"pwd"}, Become: true, BecomeUser: "nobody", Dir: "/"}, "/\n"},
	}
	for _, tt := range tests {
		out, err := run(t, c, tt.cmd)
		if err != nil || string(out.Stdout) != tt.want {
			t.Errorf("%s (become %q): %q, %v; want %q (stderr %q)", tt.cmd, tt.cmd.BecomeUser, out.Stdout, err, tt.want, out.Stderr)
		}
	}
	_, err := run(t, c, conn.Cmd{Argv: []string{"true"}, Become: true, BecomeUser: "runbook-no-such-user"})
	if ee := errorAs[*conn.ExitError](t, err); !strings.Contains(string(ee.Stderr), "runbook-no-such-user") {
		t.Errorf("unknown become user: %v", err)
	}
}
