package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// helperEnv makes the test binary a stand-in process whose command line
// names a data dir, as a member's does.
const helperEnv = "LABCTL_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "sleep":
		// Bounded, should the test never stop it.
		time.Sleep(time.Minute)
		os.Exit(0)
	case "exit":
		os.Exit(0)
	}
	os.Exit(2)
}

// startHelper starts the test binary as a fake member process of m.
func startHelper(t *testing.T, mode string, m member) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "--name", m.Name, "--data-dir", m.dataDir())
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func writePidfile(t *testing.T, m member, content string) {
	t.Helper()
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.pidfile(), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNewLab(t *testing.T) {
	tests := []struct {
		dir, addrs string
		want       string
	}{
		{"/lab", "127.0.0.11,127.0.0.12, 127.0.0.13", ""},
		{"lab", "127.0.0.11", `-dir "lab" must be the lab's folder as an absolute path`},
		{"", "127.0.0.11", `-dir "" must be`},
		{"/lab", "10.0.0.1", `-addrs: "10.0.0.1" is not a loopback address`},
		{"/lab", "", `-addrs: "" is not a loopback address`},
		{"/lab", "127.0.0.11,127.0.0.11", "127.0.0.11 is given twice"},
	}
	for _, tt := range tests {
		l, err := newLab(tt.dir, tt.addrs)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("newLab(%q, %q) = %v", tt.dir, tt.addrs, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("newLab(%q, %q) = %v, want %q", tt.dir, tt.addrs, err, tt.want)
		case tt.want == "":
			if got := fmt.Sprint(l.members); got != "[{m1 127.0.0.11 /lab/members/m1} {m2 127.0.0.12 /lab/members/m2} {m3 127.0.0.13 /lab/members/m3}]" {
				t.Errorf("members = %s", got)
			}
		}
	}
}

func TestRunningPID(t *testing.T) {
	l, err := newLab(t.TempDir(), "127.0.0.11,127.0.0.12")
	if err != nil {
		t.Fatal(err)
	}
	m, other := l.members[0], l.members[1]

	t.Run("no pidfile", func(t *testing.T) {
		if pid := runningPID(m); pid != 0 {
			t.Errorf("runningPID = %d, want 0", pid)
		}
	})
	for _, content := range []string{"", "abc", "-5", "0"} {
		t.Run("pidfile "+strconv.Quote(content), func(t *testing.T) {
			writePidfile(t, m, content)
			if pid := runningPID(m); pid != 0 {
				t.Errorf("runningPID = %d, want 0", pid)
			}
		})
	}
	t.Run("the member's process", func(t *testing.T) {
		cmd := startHelper(t, "sleep", m)
		writePidfile(t, m, strconv.Itoa(cmd.Process.Pid)+"\n")
		waitFor(t, "the helper to run with its arguments", func() bool { return runningPID(m) == cmd.Process.Pid })
	})
	t.Run("another member's process", func(t *testing.T) {
		cmd := startHelper(t, "sleep", other)
		writePidfile(t, other, strconv.Itoa(cmd.Process.Pid))
		writePidfile(t, m, strconv.Itoa(cmd.Process.Pid))
		waitFor(t, "the helper to run with its arguments", func() bool { return runningPID(other) == cmd.Process.Pid })
		if pid := runningPID(m); pid != 0 {
			t.Errorf("runningPID = %d for a process with another data dir, want 0", pid)
		}
	})
	t.Run("an unrelated process", func(t *testing.T) {
		writePidfile(t, m, strconv.Itoa(os.Getpid()))
		if pid := runningPID(m); pid != 0 {
			t.Errorf("runningPID = %d for the test itself, want 0", pid)
		}
	})
	t.Run("an exited process", func(t *testing.T) {
		cmd := startHelper(t, "exit", m)
		writePidfile(t, m, strconv.Itoa(cmd.Process.Pid))
		// Not reaped yet: a zombie, which runs nothing.
		waitFor(t, "the helper to exit", func() bool { return zombie(cmd.Process.Pid) })
		if pid := runningPID(m); pid != 0 {
			t.Errorf("runningPID = %d for a zombie, want 0", pid)
		}
		if pid, gone := pidGone(m); !gone || pid != cmd.Process.Pid {
			t.Errorf("pidGone = %d, %v for a zombie, want its pid and true", pid, gone)
		}
		cmd.Wait()
		if pid := runningPID(m); pid != 0 {
			t.Errorf("runningPID = %d for a reaped process, want 0", pid)
		}
		if _, gone := pidGone(m); !gone {
			t.Error("pidGone = false for a reaped process")
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDecide(t *testing.T) {
	m := member{Name: "m1", Addr: "127.0.0.41", Dir: "/lab/members/m1"}
	closed := []portState{{Port: clientPort}, {Port: peerPort}, {Port: metricsPort}}
	open := func(which ...int) []portState {
		ps := append([]portState(nil), closed...)
		for _, i := range which {
			ps[i].Open = true
		}
		return ps
	}
	us := &identity{ClusterID: 0xabc, Name: "m1", Version: "3.6.16", ClientURLs: []string{"http://127.0.0.41:2379"}}
	other := &identity{ClusterID: 0xdef, Name: "m1", Version: "3.6.16", ClientURLs: []string{"http://127.0.0.41:2379"}}
	swapped := &identity{ClusterID: 0xabc, Name: "m2", Version: "3.7.3", ClientURLs: []string{"http://127.0.0.42:2379"}}
	describe := func(p portState) string { return fmt.Sprintf("<what answers on %d>", p.Port) }
	tests := []struct {
		name     string
		pid      int
		ports    []portState
		recorded uint64
		ident    *identity
		identErr error
		want     verdict
	}{
		{"its own process", 42, nil, 0xabc, nil, nil, verdict{State: "running", PID: 42}},
		{"all closed", 0, closed, 0xabc, nil, nil, verdict{State: "free"}},
		{"all closed, new lab", 0, closed, 0, nil, nil, verdict{State: "free"}},
		{"this lab's member without its process", 0, open(0, 1, 2), 0xabc, us, nil, verdict{State: "answers"}},
		{"another lab's etcd", 0, open(0, 1, 2), 0xabc, other, nil, verdict{State: "foreign",
			Why: `127.0.0.41:2379 is taken by etcd 3.6.16 member "m1" of cluster def, not this lab's cluster abc`}},
		{"an etcd before this lab has a cluster", 0, open(0, 1, 2), 0, us, nil, verdict{State: "foreign",
			Why: `127.0.0.41:2379 is taken by etcd 3.6.16 member "m1" of cluster abc, and this lab has no cluster yet`}},
		{"this lab's cluster, but the wrong member", 0, open(0), 0xabc, swapped, nil, verdict{State: "foreign",
			Why: `127.0.0.41:2379 is taken by etcd 3.7.3 member "m2" of cluster abc (client URLs http://127.0.0.42:2379) of this lab's cluster, where m1 should be`}},
		{"something else on the client port", 0, open(0), 0xabc, nil, errors.New("context deadline exceeded"), verdict{State: "foreign",
			Why: "127.0.0.41:2379 is taken: <what answers on 2379>; it does not answer as etcd (context deadline exceeded)"}},
		{"something on the peer port only", 0, open(1), 0xabc, nil, nil, verdict{State: "foreign",
			Why: "127.0.0.41:2380 is taken: <what answers on 2380>"}},
		{"something on the metrics port only", 0, open(2), 0, nil, nil, verdict{State: "foreign",
			Why: "127.0.0.41:2381 is taken: <what answers on 2381>"}},
		{"a port that neither opens nor refuses", 0, []portState{{Port: clientPort}, {Port: peerPort, Open: true, Note: "i/o timeout"}, {Port: metricsPort}}, 0, nil, nil,
			verdict{State: "foreign", Why: "127.0.0.41:2380 is taken: a connection neither opens nor is refused (i/o timeout)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(m, tt.pid, tt.ports, tt.recorded, tt.ident, tt.identErr, describe)
			if got != tt.want {
				t.Errorf("decide() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDescribeHTTP(t *testing.T) {
	old := probeTimeout
	probeTimeout = 300 * time.Millisecond
	defer func() { probeTimeout = old }()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "demo/1.0")
		w.Header().Set("X-Etcd-Cluster-Id", "cdf818194e3a8c32")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "no %s here\x00\n", r.URL.Path)
	}))
	defer srv.Close()

	closer := listen(t, func(c net.Conn) { c.Close() })
	silent := listen(t, func(c net.Conn) {
		// Holds the connection and says nothing until the test ends.
		t.Cleanup(func() { c.Close() })
	})

	tests := []struct {
		name string
		addr string
		want string
	}{
		{"an HTTP server", srv.Listener.Addr().String(),
			`an HTTP server answers GET /members with "404 Not Found", Server "demo/1.0", etcd cluster cdf818194e3a8c32: "no /members here"`},
		{"a server that hangs up", closer, "something accepts connections but does not answer HTTP ("},
		{"a server that says nothing", silent, "something accepts connections but does not answer GET /members within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tt.addr)
			p, _ := strconv.Atoi(port)
			// How a hang-up shows depends on when it comes; the start of the
			// message does not.
			if got := describeHTTP(t.Context(), host, p, "/members"); got != tt.want && !(strings.HasSuffix(tt.want, "(") && strings.HasPrefix(got, tt.want)) {
				t.Errorf("describeHTTP() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// listen serves each connection with handle on a free loopback port.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return l.Addr().String()
}

func TestDialPort(t *testing.T) {
	addr := listen(t, func(c net.Conn) { c.Close() })
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if got := dialPort(t.Context(), host, p); !got.Open || got.Note != "" {
		t.Errorf("dialPort(listening) = %+v, want open", got)
	}
	free := freePort(t)
	if got := dialPort(t.Context(), "127.0.0.1", free); got.Open {
		t.Errorf("dialPort(free port %d) = %+v, want closed", free, got)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestWriteTable(t *testing.T) {
	mk := func(name, addr string) member { return member{Name: name, Addr: addr} }
	cs := &clusterStatus{
		ClusterID: 0xd199c329b9b7cb5a,
		Names:     map[uint64]string{1: "m1", 2: "m2", 3: "m3"},
		Members: []memberStatus{
			{member: mk("m1", "127.0.0.11"), PID: 100, ServerVersion: "3.7.3", ClusterVersion: "3.6.0", StorageVersion: "3.6.0", ClusterID: 0xd199c329b9b7cb5a, MemberID: 1, Leader: 2, RaftIndex: 1843},
			{member: mk("m2", "127.0.0.12"), PID: 101, ServerVersion: "3.6.16", ClusterVersion: "3.6.0", StorageVersion: "3.6.0", ClusterID: 0xd199c329b9b7cb5a, MemberID: 2, Leader: 2, RaftIndex: 1843},
			{member: mk("m3", "127.0.0.13"), Problem: "GET /version: connection refused; status: context deadline exceeded"},
		},
		Problems: []string{"m3 is missing from the member list (m1, m2)"},
	}
	var b bytes.Buffer
	cs.writeTable(&b, 0xd199c329b9b7cb5a)
	cs.writeTable(&b, 0)
	cs.writeTable(&b, 0x1234)
	cs.ClusterID = 0
	for i := range cs.Members {
		cs.Members[i].Leader = 0
	}
	cs.writeTable(&b, 0x1234)
	path := filepath.Join("testdata", "status.golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("status table (go test -update rewrites %s):\n%s", path, b.String())
	}
	if cs.healthy() {
		t.Error("healthy() with a member problem")
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage: labctl probe"},
		{[]string{"start", "-dir", "/lab", "-addrs", "127.0.0.11"}, `unknown command "start"`},
		{[]string{"probe", "-dir", "lab", "-addrs", "127.0.0.11"}, "must be the lab's folder as an absolute path"},
		{[]string{"wait", "-dir", "/lab", "-addrs", "127.0.0.11", "-timeout", "0s"}, "-timeout 0s must be more than 0"},
		{[]string{"status", "-dir", "/lab", "-addrs", "127.0.0.11", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, errb.String(), exitUsage, tt.want)
		}
	}
}

func TestRecordedClusterID(t *testing.T) {
	l, err := newLab(t.TempDir(), "127.0.0.11")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := l.recordedClusterID(); id != 0 || err != nil {
		t.Errorf("no file: %x, %v; want 0, nil", id, err)
	}
	if err := l.recordClusterID(0xd199c329b9b7cb5a); err != nil {
		t.Fatal(err)
	}
	if id, err := l.recordedClusterID(); id != 0xd199c329b9b7cb5a || err != nil {
		t.Errorf("recorded: %x, %v", id, err)
	}
	os.WriteFile(l.clusterIDFile(), []byte("zz\n"), 0o644)
	if _, err := l.recordedClusterID(); err == nil || !strings.Contains(err.Error(), `holds "zz", not a cluster ID in hex`) {
		t.Errorf("garbage: %v", err)
	}
}

func TestUnsettled(t *testing.T) {
	tests := []struct {
		server, cluster, storage string
		want                     string
	}{
		{"3.6.16", "3.6.0", "3.6.0", ""},
		{"3.7.3", "3.6.0", "3.6.0", ""},
		{"", "", "", ""}, // no answer: said elsewhere
		{"3.6.16", "3.0.0", "", "cluster version not decided yet"},
		{"3.6.16", "", "", "cluster version not decided yet"},
		{"3.6.16", "3.6.0", "", "storage version not known yet"},
		{"3.6.16", "3.6.0", "3.5.0", "storage version 3.5.0, not yet the cluster version 3.6.0"},
		{"3.5.21", "3.5.0", "", ""}, // 3.5 reports no storage version
	}
	for _, tt := range tests {
		if got := unsettled(tt.server, tt.cluster, tt.storage); got != tt.want {
			t.Errorf("unsettled(%q, %q, %q) = %q, want %q", tt.server, tt.cluster, tt.storage, got, tt.want)
		}
	}
}
