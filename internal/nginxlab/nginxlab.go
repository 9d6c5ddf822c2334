// Package nginxlab starts real nginx servers (Debian's nginx) on loopback for
// tests: each on an address of its own, run as the current user from a
// folder of its own, as a daemon with a pid file (what a reload by signal
// needs), killed with the test and bounded in time by a watchdog.
package nginxlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Lifetime bounds every server: its watchdog stops it after this long even
// if the test process is killed before its cleanup.
const Lifetime = 10 * time.Minute

// Addrs are the loopback addresses of the lab's instances, as
// scripts/nginx-lab.sh uses them.
var Addrs = []string{"127.0.0.41", "127.0.0.42", "127.0.0.43"}

// Instance is one running nginx.
type Instance struct {
	Name string // n1, n2, n3
	Dir  string // the prefix: nginx.conf, the pid file, logs and temp paths
	Addr string // host:port it listens on
	Conf string // its nginx.conf
	Pid  string // its pid file
	URL  string // http://Addr
}

// Binary returns the path of nginx, or skips the test when it is missing
// (scripts/deps.sh installs it).
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	t.Skip("nginx is not installed: run scripts/deps.sh")
	return ""
}

// Config is the nginx.conf of an instance in dir listening on addr, which
// serves "version VERSION" on / and "ok" on /healthz: the lab's first
// config, as runbooks/templates/nginx-lab.conf.j2 renders it for version.
func Config(dir, addr, version string) string {
	return fmt.Sprintf(`# nginx.conf of an nginx lab instance: every path is its own, so it runs as any user.
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;

events {
    worker_connections 64;
}

http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/client_body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    default_type text/plain;

    server {
        listen %[2]s;
        location = /healthz {
            return 200 "ok\n";
        }
        location / {
            return 200 "version %[3]s\n";
        }
    }
}
`, dir, addr, version)
}

// Start starts n instances (at most len(Addrs)), named n1, n2..., each on
// an address of Addrs, all on one port that is free on every address, with
// Config(dir, addr, version), and waits until each serves it.
func Start(t testing.TB, n int, version string) []*Instance {
	t.Helper()
	if n > len(Addrs) {
		t.Fatalf("nginxlab: %d instances asked, the lab has %d addresses", n, len(Addrs))
	}
	bin := Binary(t)
	port := freePort(t, Addrs[:n])
	var out []*Instance
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		in := &Instance{
			Name: "n" + strconv.Itoa(i+1),
			Dir:  dir,
			Addr: net.JoinHostPort(Addrs[i], strconv.Itoa(port)),
			Conf: filepath.Join(dir, "nginx.conf"),
			Pid:  filepath.Join(dir, "nginx.pid"),
		}
		in.URL = "http://" + in.Addr
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(in.Conf, []byte(Config(dir, in.Addr, version)), 0o644); err != nil {
			t.Fatal(err)
		}
		in.start(t, bin)
		out = append(out, in)
	}
	for _, in := range out {
		in.WaitBody(t, "/", "version "+version+"\n")
	}
	return out
}

func (in *Instance) start(t testing.TB, bin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// nginx runs as a daemon: the command returns once the master has
	// written its pid file, as a reload by signal needs.
	if b, err := exec.CommandContext(ctx, bin, "-p", in.Dir, "-c", in.Conf).CombinedOutput(); err != nil {
		t.Fatalf("nginxlab: start %s: %v\n%s%s", in.Name, err, b, in.errorLog())
	}
	pid, err := in.MasterPID()
	if err != nil {
		t.Fatalf("nginxlab: %s: %v\n%s", in.Name, err, in.errorLog())
	}
	// The watchdog outlives a test process killed before its cleanup, and
	// stops the master (whose pid a reload keeps) after Lifetime; timeout
	// bounds the watchdog itself.
	secs := strconv.Itoa(int(Lifetime.Seconds()))
	dog := exec.Command("timeout", strconv.Itoa(int(Lifetime.Seconds())+30), "sh", "-c",
		`sleep "$1"; kill -QUIT "$2" 2>/dev/null; sleep 10; kill -KILL "$2" 2>/dev/null; true`, "nginx-lab-watchdog", secs, strconv.Itoa(pid))
	dog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := dog.Start(); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("nginxlab: watchdog for %s: %v", in.Name, err)
	}
	go dog.Wait()
	t.Cleanup(func() {
		stop(pid)
		syscall.Kill(-dog.Process.Pid, syscall.SIGKILL)
	})
}

// stop ends the master at pid and its workers: a fast shutdown, then a kill
// of what remains.
func stop(pid int) {
	workers := children(pid)
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for _, w := range workers {
		syscall.Kill(w, syscall.SIGKILL)
	}
}

// MasterPID reads the instance's pid file.
func (in *Instance) MasterPID() (int, error) {
	b, err := os.ReadFile(in.Pid)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", in.Pid, err)
	}
	return pid, nil
}

// Get requests path and returns the status and body.
func (in *Instance) Get(path string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(in.URL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// WaitBody waits until path answers 200 with body.
func (in *Instance) WaitBody(t testing.TB, path, body string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	delay := 10 * time.Millisecond
	for {
		status, got, err := in.Get(path)
		if err == nil && status == 200 && got == body {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginxlab: %s%s: want 200 %q, last got %d %q (error %v)\n%s", in.URL, path, body, status, got, err, in.errorLog())
		}
		time.Sleep(delay)
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// Inventory is a runbook inventory of the instances in group nginx, with
// the inventory contract of runbooks/nginx-config.yml.
func Inventory(ins []*Instance) string {
	var b bytes.Buffer
	b.WriteString("all:\n  children:\n    nginx:\n      hosts:\n")
	for _, in := range ins {
		fmt.Fprintf(&b, "        %s:\n", in.Name)
		fmt.Fprintf(&b, "          ansible_connection: local\n")
		fmt.Fprintf(&b, "          nginx_conf: %s\n", strconv.Quote(in.Conf))
		fmt.Fprintf(&b, "          nginx_pid: %s\n", strconv.Quote(in.Pid))
		fmt.Fprintf(&b, "          nginx_url: %s\n", strconv.Quote(in.URL))
	}
	return b.String()
}

func (in *Instance) errorLog() string {
	b, err := os.ReadFile(filepath.Join(in.Dir, "error.log"))
	if err != nil {
		return ""
	}
	return "--- error.log:\n" + string(b)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie master (its parent has not reaped it) has stopped.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// freePort finds a port free on every address, so tests running at once,
// and a lab of scripts/nginx-lab.sh on 8080, do not collide.
func freePort(t testing.TB, addrs []string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			t.Fatalf("nginxlab: listen on %s: %v", addrs[0], err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		for _, a := range addrs[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		l.Close()
		if ok {
			return port
		}
	}
	t.Fatalf("nginxlab: no port free on all of %v", addrs)
	return 0
}
