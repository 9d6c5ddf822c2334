// Package redislab starts real Redis servers (Debian's redis-server) on
// loopback for tests: a primary and its replicas, each bounded in time and
// killed with the test.
package redislab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Lifetime bounds every server: it exits by itself after this long even if
// the test process is killed before its cleanup.
const Lifetime = 10 * time.Minute

// Server is one running redis-server.
type Server struct {
	Addr string
	Port int
	Dir  string
	cmd  *exec.Cmd
}

// Binary returns the path of redis-server, or skips the test when it is
// missing (scripts/deps.sh installs it).
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: run scripts/deps.sh")
	}
	return p
}

// Start starts a primary and n replicas of it on 127.0.0.1, and waits until
// every replica's link is up.
func Start(t testing.TB, replicas int) (primary *Server, reps []*Server) {
	t.Helper()
	primary = start(t, "")
	for i := 0; i < replicas; i++ {
		reps = append(reps, start(t, primary.Addr))
	}
	for _, r := range reps {
		waitInfo(t, r.Addr, "master_link_status:up")
	}
	return primary, reps
}

func start(t testing.TB, replicaOf string) *Server {
	t.Helper()
	bin := Binary(t)
	port := freePort(t)
	dir := t.TempDir()
	args := []string{strconv.Itoa(int(Lifetime.Seconds())), bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
		"--logfile", filepath.Join(dir, "redis.log")}
	if replicaOf != "" {
		h, p, _ := net.SplitHostPort(replicaOf)
		args = append(args, "--replicaof", h, p)
	}
	cmd := exec.Command("timeout", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redislab: start redis-server: %v", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, cmd: cmd}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	waitInfo(t, s.Addr, "role:")
	return s
}

// Stop kills the server.
func (s *Server) Stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}

// Do sends one command in RESP and returns the first line of the reply with
// any bulk payload, for tests that set up a state.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	return line, nil
}

func waitInfo(t testing.TB, addr, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		info, err := Do(addr, "INFO", "replication")
		if err == nil && strings.Contains(info, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redislab: %s: %q not seen within 30s (last error %v)", addr, want, err)
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
