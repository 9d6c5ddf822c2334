package conntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
)

func TestMatchers(t *testing.T) {
	tests := []struct {
		name string
		m    Matcher
		cmd  conn.Cmd
		want bool
	}{
		{"exact", Exact("systemctl", "stop", "etcd"), conn.Cmd{Argv: []string{"systemctl", "stop", "etcd"}}, true},
		{"exact longer", Exact("systemctl", "stop"), conn.Cmd{Argv: []string{"systemctl", "stop", "etcd"}}, false},
		{"exact shorter", Exact("systemctl", "stop", "etcd", "x"), conn.Cmd{Argv: []string{"systemctl", "stop", "etcd"}}, false},
		{"exact shell", Exact("/bin/sh", "-c", "echo hi"), conn.Cmd{Shell: "echo hi"}, true},
		{"exact is not a join", Exact("a b"), conn.Cmd{Argv: []string{"a", "b"}}, false},
		{"prefix", Prefix("systemctl", "stop"), conn.Cmd{Argv: []string{"systemctl", "stop", "etcd"}}, true},
		{"prefix whole", Prefix("systemctl"), conn.Cmd{Argv: []string{"systemctl"}}, true},
		{"prefix other", Prefix("systemctl", "start"), conn.Cmd{Argv: []string{"systemctl", "stop", "etcd"}}, false},
		{"prefix too long", Prefix("a", "b", "c"), conn.Cmd{Argv: []string{"a", "b"}}, false},
		{"regexp argv", Regexp(`^kill -0 \d+$`), conn.Cmd{Argv: []string{"kill", "-0", "1234"}}, true},
		{"regexp sees quoting", Regexp(`^echo 'a b'$`), conn.Cmd{Argv: []string{"echo", "a b"}}, true},
		{"regexp shell", Regexp(`kill -s TERM`), conn.Cmd{Shell: "kill -s TERM 12"}, true},
		{"regexp no", Regexp(`^kill`), conn.Cmd{Argv: []string{"pkill"}}, false},
		{"func", Func("become", func(c conn.Cmd) bool { return c.Become }), conn.Cmd{Argv: []string{"x"}, Become: true}, true},
		{"func no", Func("become", func(c conn.Cmd) bool { return c.Become }), conn.Cmd{Argv: []string{"x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.match(tt.cmd); got != tt.want {
				t.Errorf("%s matches %s = %v, want %v", tt.m, tt.cmd, got, tt.want)
			}
		})
	}
}

func TestRuleAnswers(t *testing.T) {
	transport := &conn.TransportError{Host: "h", Err: errors.New("reset")}
	tests := []struct {
		name     string
		setup    func(f *Fake)
		cmd      conn.Cmd
		stdout   string
		exitCode int // expected *conn.ExitError code; 0: none
		err      error
	}{
		{"default is success", func(f *Fake) { f.On(Exact("true")) }, conn.Cmd{Argv: []string{"true"}}, "", 0, nil},
		{"stdout", func(f *Fake) { f.On(Exact("cat", "x")).Stdout("hello\n") }, conn.Cmd{Argv: []string{"cat", "x"}}, "hello\n", 0, nil},
		{"exit", func(f *Fake) { f.On(Prefix("systemctl", "is-active")).Stdout("inactive\n").Stderr("e").Exit(3) },
			conn.Cmd{Argv: []string{"systemctl", "is-active", "etcd"}}, "inactive\n", 3, nil},
		{"err", func(f *Fake) { f.On(Prefix("x")).Err(transport) }, conn.Cmd{Argv: []string{"x"}}, "", 0, transport},
		{"first match wins", func(f *Fake) {
			f.On(Prefix("a")).Stdout("first")
			f.On(Exact("a", "b")).Stdout("second")
		}, conn.Cmd{Argv: []string{"a", "b"}}, "first", 0, nil},
		{"used-up rule falls through", func(f *Fake) {
			f.On(Prefix("a")).Times(1).Stdout("once")
			f.On(Prefix("a")).Stdout("after")
			_, _ = f.Run(context.Background(), conn.Cmd{Argv: []string{"a"}})
		}, conn.Cmd{Argv: []string{"a"}}, "after", 0, nil},
		{"do", func(f *Fake) {
			f.On(Prefix("echo")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
				return conn.Output{Stdout: []byte(strings.Join(c.Argv[1:], " "))}, nil
			})
		}, conn.Cmd{Argv: []string{"echo", "a", "b"}}, "a b", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(t)
			tt.setup(f)
			out, err := f.Run(context.Background(), tt.cmd)
			if string(out.Stdout) != tt.stdout {
				t.Errorf("stdout = %q, want %q", out.Stdout, tt.stdout)
			}
			var ee *conn.ExitError
			switch {
			case tt.exitCode != 0:
				if !errors.As(err, &ee) || ee.ExitCode != tt.exitCode || out.ExitCode != tt.exitCode {
					t.Errorf("err = %v, Output.ExitCode = %d, want exit status %d", err, out.ExitCode, tt.exitCode)
				}
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Errorf("err = %v, want %v", err, tt.err)
				}
			case err != nil:
				t.Errorf("err = %v, want nil", err)
			}
		})
	}
}

// recordTB catches what the fake reports to the test.
type recordTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestUnmatchedFails(t *testing.T) {
	tb := &recordTB{TB: t}
	f := New(tb)
	f.On(Exact("systemctl", "stop", "etcd"))
	f.On(Exact("systemctl", "start", "etcd")).Times(1)
	if _, err := f.Run(context.Background(), conn.Cmd{Argv: []string{"systemctl", "start", "etcd"}}); err != nil {
		t.Fatal(err)
	}

	_, err := f.Run(context.Background(), conn.Cmd{Argv: []string{"systemctl", "stpo", "etcd"}})
	if err == nil {
		t.Fatal("an unmatched command succeeded")
	}
	for _, want := range []string{"systemctl stpo etcd", "exact systemctl stop etcd", "(used up)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	var ee *conn.ExitError
	if errors.As(err, &ee) || conn.IsTransport(err) {
		t.Errorf("unmatched must not look like a command or transport failure: %T", err)
	}
	if len(tb.errs) != 1 || !strings.Contains(tb.errs[0], "stpo") {
		t.Errorf("test was told %q, want one error naming the command", tb.errs)
	}
	if u := f.Unmatched(); len(u) != 1 || u[0].Argv[1] != "stpo" {
		t.Errorf("Unmatched = %v", u)
	}
}

func TestDelayAndHang(t *testing.T) {
	f := New(t)
	f.On(Exact("slow")).Delay(20 * time.Millisecond).Stdout("done")
	f.On(Exact("stuck")).Delay(time.Hour)
	f.On(Exact("hang")).Hang()

	out, err := f.Run(context.Background(), conn.Cmd{Argv: []string{"slow"}})
	if err != nil || string(out.Stdout) != "done" {
		t.Errorf("slow: %q, %v", out.Stdout, err)
	}
	for _, name := range []string{"stuck", "hang"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := f.Run(ctx, conn.Cmd{Argv: []string{name}})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want context.DeadlineExceeded", name, err)
		}
	}
}

func TestFailAfter(t *testing.T) {
	f := New(t)
	f.On(Prefix("cmd"))
	f.SetFile("/etc/x", []byte("x"), 0o644)
	f.FailAfter(2, nil)
	ctx := context.Background()
	// Put and Get do not count toward n: only commands do.
	if err := f.Put(ctx, strings.NewReader("z"), "/etc/z", 0o644); err != nil {
		t.Fatalf("put before the fault: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := f.Run(ctx, conn.Cmd{Argv: []string{"cmd", fmt.Sprint(i)}}); err != nil {
			t.Fatalf("command %d before the fault: %v", i, err)
		}
	}
	if _, err := f.Run(ctx, conn.Cmd{Argv: []string{"cmd", "2"}}); !conn.IsTransport(err) {
		t.Errorf("third command: err = %v, want a transport error", err)
	}
	if err := f.Put(ctx, strings.NewReader("y"), "/etc/y", 0o644); !conn.IsTransport(err) {
		t.Errorf("put after the fault: err = %v, want a transport error", err)
	}
	if err := f.Get(ctx, "/etc/x", &bytes.Buffer{}); !conn.IsTransport(err) {
		t.Errorf("get after the fault: err = %v, want a transport error", err)
	}
	if _, ok := f.File("/etc/y"); ok {
		t.Error("a put after the fault wrote the file")
	}

	custom := errors.New("boom")
	g := New(t)
	g.FailAfter(0, custom)
	if _, err := g.Run(ctx, conn.Cmd{Argv: []string{"anything"}}); !errors.Is(err, custom) {
		t.Errorf("custom fault: err = %v", err)
	}
	if calls := g.Calls(); len(calls) != 1 || !errors.Is(calls[0].Err, custom) {
		t.Errorf("the failed call is not recorded with its error: %+v", calls)
	}
}

func TestHangAfter(t *testing.T) {
	f := New(t)
	f.On(Prefix("cmd"))
	f.HangAfter(1)
	if _, err := f.Run(context.Background(), conn.Cmd{Argv: []string{"cmd"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Run(ctx, conn.Cmd{Argv: []string{"cmd"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if err := f.Get(ctx, "/x", &bytes.Buffer{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get: err = %v, want context.DeadlineExceeded", err)
	}
}

func TestFilesAndRecords(t *testing.T) {
	f := New(t)
	f.Name = "etcd-1"
	f.On(Exact("cat")).Do(func(_ context.Context, c conn.Cmd) (conn.Output, error) {
		var b bytes.Buffer
		_, err := b.ReadFrom(c.Stdin)
		return conn.Output{Stdout: b.Bytes()}, err
	})
	ctx := context.Background()
	if err := f.Put(ctx, strings.NewReader("binary"), "/usr/local/bin/etcd", 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Get(ctx, "/usr/local/bin/etcd", &buf); err != nil || buf.String() != "binary" {
		t.Errorf("Get = %q, %v", buf.String(), err)
	}
	if err := f.Get(ctx, "/missing", &buf); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: err = %v, want fs.ErrNotExist", err)
	}
	out, err := f.Run(ctx, conn.Cmd{Argv: []string{"cat"}, Stdin: strings.NewReader("in")})
	if err != nil || string(out.Stdout) != "in" {
		t.Errorf("cat = %q, %v", out.Stdout, err)
	}
	if file, ok := f.File("/usr/local/bin/etcd"); !ok || string(file.Data) != "binary" || file.Mode != 0o755 {
		t.Errorf("File = %+v, %v", file, ok)
	}

	calls := f.Calls()
	var ops []string
	for _, c := range calls {
		ops = append(ops, c.Op+" "+c.Path+c.Cmd.String())
	}
	want := []string{"put /usr/local/bin/etcd", "get /usr/local/bin/etcd", "get /missing", "run cat"}
	if strings.Join(ops, "|") != strings.Join(want, "|") {
		t.Errorf("calls = %q, want %q", ops, want)
	}
	if string(calls[3].Data) != "in" || calls[3].Cmd.Stdin != nil {
		t.Errorf("run record: stdin %q, reader %v", calls[3].Data, calls[3].Cmd.Stdin)
	}
	if got := f.Commands(); len(got) != 1 || got[0] != "cat" {
		t.Errorf("Commands = %q", got)
	}
	if f.String() != "etcd-1" || New(nil).String() != "fake" {
		t.Errorf("String = %q", f.String())
	}

	if err := f.Close(); err != nil || !f.Closed() {
		t.Fatal("Close")
	}
	if _, err := f.Run(ctx, conn.Cmd{Argv: []string{"cat"}}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("run after close: %v", err)
	}
	if err := f.Put(ctx, strings.NewReader(""), "/x", 0); err == nil {
		t.Error("put after close succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	f := New(t)
	r := f.On(Prefix("cmd")).Stdout("ok")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				ctx := context.Background()
				if _, err := f.Run(ctx, conn.Cmd{Argv: []string{"cmd", fmt.Sprint(i, j)}}); err != nil {
					t.Error(err)
				}
				path := fmt.Sprintf("/f/%d/%d", i, j)
				if err := f.Put(ctx, strings.NewReader("x"), path, 0o644); err != nil {
					t.Error(err)
				}
				_ = f.Calls()
			}
		}()
	}
	wg.Wait()
	if r.Matched() != 400 || len(f.Commands()) != 400 || len(f.Calls()) != 800 {
		t.Errorf("matched %d, commands %d, calls %d", r.Matched(), len(f.Commands()), len(f.Calls()))
	}
}
