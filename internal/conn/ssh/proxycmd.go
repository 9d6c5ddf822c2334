package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proxyGrace is how long a ProxyCommand has to exit after SIGTERM when its
// connection closes, before its process group is killed.
const proxyGrace = 2 * time.Second

// expandProxyCommand replaces OpenSSH's tokens in a ProxyCommand: %h (the
// host after HostName), %p (the port), %r (the remote user), %n (the name
// as given) and %%. Another token is an error rather than passed on as
// text. The values go into a shell command line, so a value holding
// anything but the characters of host and user names is refused, as
// OpenSSH 9.6 does: an inventory's ansible_host must not become shell code.
func expandProxyCommand(cmd string, e endpoint) (string, error) {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != '%' {
			b.WriteByte(cmd[i])
			continue
		}
		if i+1 == len(cmd) {
			return "", fmt.Errorf("ProxyCommand %q ends with a lone %%; write %%%% for a percent sign", cmd)
		}
		i++
		var v, what string
		switch cmd[i] {
		case '%':
			b.WriteByte('%')
			continue
		case 'h':
			v, what = e.host, "host"
		case 'p':
			v, what = strconv.Itoa(e.port), "port"
		case 'r':
			v, what = e.user, "user"
		case 'n':
			v, what = e.alias, "host name"
		default:
			return "", fmt.Errorf("ProxyCommand %q: %%%c is not supported; use %%h, %%p, %%r, %%n or %%%%", cmd, cmd[i])
		}
		if !shellSafe(v) {
			return "", fmt.Errorf("ProxyCommand %q: the %s %q holds characters a shell would read (only letters, digits and . _ - : @ [ ] + are allowed)", cmd, what, v)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func shellSafe(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("._-:@[]+", c):
		default:
			return false
		}
	}
	return true
}

// cmdConn is a connection over the stdin and stdout of a ProxyCommand,
// run as OpenSSH runs it: `sh -c "exec COMMAND"`, in its own process group
// so that closing the connection ends it and whatever it started.
type cmdConn struct {
	command string
	addr    string // host:port the command reaches, as the remote address
	cmd     *exec.Cmd
	r, w    *os.File // our ends: its stdout, its stdin
	stderr  *tailWriter
	exited  chan struct{}
	waitErr error

	closeOnce sync.Once
}

var _ net.Conn = (*cmdConn)(nil)

// dialCommand starts the ProxyCommand command, which reaches addr. ctx
// bounds only the start; the connection's Close ends the command.
func dialCommand(ctx context.Context, command, addr string) (*cmdConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &cmdConn{command: command, addr: addr, r: outR, w: inW, stderr: &tailWriter{max: 2048}, exited: make(chan struct{})}
	cmd := exec.Command("/bin/sh", "-c", "exec "+command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Something it started may keep its stderr open after the group is
	// killed (a daemon of its own session): Wait must not hang on it.
	cmd.WaitDelay = proxyGrace
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *cmdConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *cmdConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close ends the command: its stdin closed, SIGTERM to its process group,
// SIGKILL after proxyGrace.
func (c *cmdConn) Close() error {
	c.closeOnce.Do(func() {
		c.w.Close()
		c.r.Close()
		pgid := c.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(proxyGrace):
		}
		// The leader may be gone while children it started are not.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.exited
	})
	return nil
}

// describe adds what the command said to err, when it has exited (as it
// does when it cannot reach the host): its exit status and the end of its
// stderr.
func (c *cmdConn) describe(err error) error {
	select {
	case <-c.exited:
	case <-time.After(200 * time.Millisecond):
		return fmt.Errorf("through ProxyCommand %q: %w", c.command, err)
	}
	status := "exited"
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) {
		status = ee.ProcessState.String()
	}
	msg := fmt.Sprintf("the ProxyCommand %q %s", c.command, status)
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		msg += ", saying: " + s
	}
	return fmt.Errorf("%s (%w)", msg, err)
}

// LocalAddr and RemoteAddr are the host:port reached, which is what the
// host key check reads from a connection.
func (c *cmdConn) LocalAddr() net.Addr  { return cmdAddr(c.addr) }
func (c *cmdConn) RemoteAddr() net.Addr { return cmdAddr(c.addr) }

func (c *cmdConn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.SetReadDeadline(t), c.w.SetWriteDeadline(t))
}
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

// cmdAddr is the address of a connection through a ProxyCommand.
type cmdAddr string

func (cmdAddr) Network() string  { return "proxycommand" }
func (a cmdAddr) String() string { return string(a) }

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
