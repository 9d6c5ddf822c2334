package ssh_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// fakeOptions trust the in-process server at addr (host:port) and offer the shared client key.
func fakeOptions(t *testing.T, addr string, hostKey *sshtest.Key) rssh.Options {
	o := hermetic(t)
	kh := writeFile(t, filepath.Join(t.TempDir(), "known_hosts"), knownhosts.Line([]string{addr}, hostKey.Public())+"\n", 0o600)
	o.KnownHostsFiles = []string{kh}
	o.IdentityFiles = []string{sshtest.ClientKey(t).Write(t, t.TempDir(), "id")}
	o.Backoff = 10 * time.Millisecond
	return o
}

func fakeTarget(addr string) conn.Target {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return conn.Target{Name: "fake", Addr: host, Port: port, Connection: "ssh",
		Vars: map[string]any{"ansible_host": host, "ansible_port": port}}
}

func TestFaults(t *testing.T) {
	t.Parallel()

	t.Run("connection cut mid-command is a transport error", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{}, 1)
		srv := sshtest.StartServer(t, sshtest.ServerOptions{Exec: func(ctx context.Context, cmd string, _ io.Reader, _, _ io.Writer) int {
			started <- struct{}{}
			<-ctx.Done()
			return 143
		}})
		c := dial(t, newDialer(t, fakeOptions(t, srv.Addr, srv.HostKey)), fakeTarget(srv.Addr))
		done := make(chan error, 1)
		go func() {
			_, err := c.Run(ctxT(t), conn.Cmd{Argv: []string{"sleep", "600"}})
			done <- err
		}()
		<-started
		srv.Cut()
		select {
		case err := <-done:
			if !conn.IsTransport(err) {
				t.Errorf("err = %v (%T), want a transport error", err, err)
			}
			var ee *conn.ExitError
			if errors.As(err, &ee) {
				t.Errorf("a cut connection looks like an exit: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after the connection was cut")
		}
		if _, err := c.Run(ctxT(t), conn.Cmd{Argv: []string{"true"}}); !conn.IsTransport(err) {
			t.Errorf("the next command: err = %v, want a transport error", err)
		}
		if err := c.Put(ctxT(t), strings.NewReader("x"), "/tmp/x", 0o644); !conn.IsTransport(err) {
			t.Errorf("Put after the cut: err = %v, want a transport error", err)
		}
	})

	t.Run("a server that stalls after accept hits the connect timeout", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.StartServer(t, sshtest.ServerOptions{Stall: true})
		o := fakeOptions(t, srv.Addr, srv.HostKey)
		o.ConnectTimeout, o.Attempts = 300*time.Millisecond, 2
		start := time.Now()
		_, err := newDialer(t, o).Dial(ctxT(t), fakeTarget(srv.Addr))
		ue := errorAs[*rssh.UnreachableError](t, err)
		if !conn.IsTransport(err) || ue.Attempts != 2 || srv.Accepted() != 2 {
			t.Errorf("err = %v; %d attempts, %d accepted", err, ue.Attempts, srv.Accepted())
		}
		contains(t, err.Error(), "connect timeout (300ms)")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("gave up after %s", d)
		}
	})

	t.Run("a slow login within the timeout works", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.StartServer(t, sshtest.ServerOptions{LoginDelay: 700 * time.Millisecond})
		o := fakeOptions(t, srv.Addr, srv.HostKey)
		o.ConnectTimeout = 20 * time.Second
		c := dial(t, newDialer(t, o), fakeTarget(srv.Addr))
		if out := mustRun(t, c, "echo", "late"); out != "late\n" {
			t.Errorf("stdout %q", out)
		}
	})

	t.Run("a host that stops answering is found by keepalives", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{}, 1)
		srv := sshtest.StartServer(t, sshtest.ServerOptions{Exec: func(ctx context.Context, cmd string, i io.Reader, o, e io.Writer) int {
			if strings.Contains(cmd, "sleep") {
				started <- struct{}{}
			}
			return sshtest.DefaultExec(ctx, cmd, i, o, e)
		}})
		p := sshtest.StartProxy(t, srv.Addr)
		o := fakeOptions(t, p.Addr, srv.HostKey)
		// Short, but with room for a loaded machine before the freeze.
		o.KeepaliveInterval, o.KeepaliveMax = 100*time.Millisecond, 5
		c := dial(t, newDialer(t, o), fakeTarget(p.Addr))
		mustRun(t, c, "true")
		done := make(chan error, 1)
		go func() {
			_, err := c.Run(ctxT(t), conn.Cmd{Argv: []string{"sleep", "600"}})
			done <- err
		}()
		<-started
		p.Freeze()
		select {
		case err := <-done:
			if !conn.IsTransport(err) {
				t.Errorf("err = %v, want a transport error", err)
			}
			contains(t, err.Error(), "keepalives")
		case <-time.After(20 * time.Second):
			t.Fatal("a frozen connection was not noticed")
		}
	})

	t.Run("keepalives answered keep an idle connection", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.StartServer(t, sshtest.ServerOptions{})
		o := fakeOptions(t, srv.Addr, srv.HostKey)
		// Dozens of keepalives during the command, each with a second to be answered.
		o.KeepaliveInterval, o.KeepaliveMax = 50*time.Millisecond, 20
		c := dial(t, newDialer(t, o), fakeTarget(srv.Addr))
		if out := mustRun(t, c, "sleep", "1.5"); out != "" {
			t.Errorf("stdout %q", out)
		}
		mustRun(t, c, "true")
	})

	t.Run("a closed port is retried, then unreachable", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = newDialer(t, fakeOptions(t, addr, sshtest.ClientKey(t))).Dial(ctxT(t), fakeTarget(addr))
		ue := errorAs[*rssh.UnreachableError](t, err)
		if ue.Attempts != rssh.DefaultAttempts || ue.Addr != addr {
			t.Errorf("err = %v", err)
		}
		contains(t, err.Error(), "connection refused", "3 attempts")
	})

	t.Run("a refused login is tried once", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.StartServer(t, sshtest.ServerOptions{Authorized: sshtest.NewEd25519(t).Public()})
		_, err := newDialer(t, fakeOptions(t, srv.Addr, srv.HostKey)).Dial(ctxT(t), fakeTarget(srv.Addr))
		errorAs[*rssh.AuthError](t, err)
		if n := srv.Accepted(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})

	t.Run("dial honours its context", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.StartServer(t, sshtest.ServerOptions{Stall: true})
		o := fakeOptions(t, srv.Addr, srv.HostKey)
		o.ConnectTimeout = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := newDialer(t, o).Dial(ctx, fakeTarget(srv.Addr))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
			t.Errorf("err = %v after %s", err, time.Since(start))
		}
	})

	t.Run("unsupported inventory variables are refused", func(t *testing.T) {
		t.Parallel()
		for _, v := range []string{"ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_password"} {
			tg := fakeTarget("127.0.0.1:1")
			tg.Vars[v] = "-o ProxyCommand=x"
			_, err := newDialer(t, hermetic(t)).Dial(ctxT(t), tg)
			if !conn.IsTransport(err) || !strings.Contains(err.Error(), v+" is set, but") {
				t.Errorf("%s: err = %v", v, err)
			}
		}
	})
}
