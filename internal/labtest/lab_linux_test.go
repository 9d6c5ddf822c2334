package labtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/runbookhq/runbook/internal/etcdload"
)

// Addresses of the labs of these tests: away from the developer's lab
// (127.0.0.11-13) and from other tests' etcd (127.0.0.21-23, .31).
const (
	addrsA     = "127.0.0.41,127.0.0.42,127.0.0.43" // the lab under test, and a second lab on the same ports
	addrsC     = "127.0.0.44,127.0.0.45,127.0.0.46" // a lab whose m2 peer port something else holds
	addrsDemo  = "127.0.0.47,127.0.0.48,127.0.0.49"
	scriptTime = 5 * time.Minute // bounds every script the tests run
)

// root is the repository's folder.
func root(t *testing.T) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

// needEtcd skips unless etcd may be built and run, and builds the two
// versions the lab uses once, with a bound of its own: a cold build takes
// minutes, a cached one nothing.
func needEtcd(t *testing.T) {
	t.Helper()
	if os.Getenv("RUNBOOK_SKIP_ETCD") == "1" {
		t.Skip("RUNBOOK_SKIP_ETCD=1")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root(t), "scripts", "etcd-build.sh"), "3.6.16", "3.7.3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/etcd-build.sh: %v\n%s", err, out)
	}
}

// result is what a script did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs a script of the repository with env over a clean environment:
// the developer's own LAB_* settings must not leak into a test.
func run(t *testing.T, env []string, script string, args ...string) result {
	t.Helper()
	// Not t.Context(): cleanups run after it is cancelled, and the lab
	// must go down then too.
	ctx, cancel := context.WithTimeout(context.Background(), scriptTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root(t), "scripts", script), args...)
	cmd.Dir = root(t)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LAB_") && !strings.HasPrefix(kv, "DEMO_") && !strings.HasPrefix(kv, "KEEP_DATA=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", script, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not end within %s\n%s", script, args, scriptTime, r)
	}
	return r
}

// labEnv is the environment of a lab in dir on addrs. The watchdog takes
// the lab down should the test's cleanup never run.
func labEnv(dir, addrs string) []string {
	return []string{"LAB_DIR=" + dir, "LAB_ADDRS=" + addrs, "LAB_MAX_LIFETIME=10m", "LAB_WAIT=90s"}
}

// downAtEnd takes the lab in dir down when the test ends, whatever happened.
func downAtEnd(t *testing.T, env []string) {
	t.Cleanup(func() {
		if r := run(t, env, "lab.sh", "down"); r.code != 0 {
			t.Errorf("lab.sh down at cleanup: %s", r)
		}
	})
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

// pids reads each member's pidfile.
func pids(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range []string{"m1", "m2", "m3"} {
		data, err := os.ReadFile(filepath.Join(dir, "members", m, "etcd.pid"))
		if err != nil {
			t.Fatalf("%s's pidfile: %v", m, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatalf("%s's pidfile: %v", m, err)
		}
		out[m] = pid
	}
	return out
}

// gone reports whether pid has exited (a zombie has).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	i := strings.LastIndex(s, ") ")
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// checkCluster asks the members directly, with etcd's client, rather than
// through the lab's helper: names m1..m3 at the lab's addresses, the
// recorded cluster ID, a leader, and a write that can be read back.
func checkCluster(t *testing.T, dir, addrs string) {
	t.Helper()
	var eps []string
	for _, a := range strings.Split(addrs, ",") {
		eps = append(eps, "http://"+a+":2379")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	recorded, err := os.ReadFile(filepath.Join(dir, "cluster-id"))
	if err != nil {
		t.Fatal(err)
	}
	for i, ep := range eps {
		st, err := c.Status(ctx, ep)
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		if got := fmt.Sprintf("%x", st.Header.ClusterId); got != strings.TrimSpace(string(recorded)) {
			t.Errorf("%s: cluster %s, the lab recorded %s", ep, got, recorded)
		}
		if st.Leader == 0 {
			t.Errorf("%s has no leader", ep)
		}
		ml, err := c.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ml.Members {
			if m.ID == st.Header.MemberId && m.Name != fmt.Sprintf("m%d", i+1) {
				t.Errorf("%s answers as %q, want m%d", ep, m.Name, i+1)
			}
		}
		if len(ml.Members) != 3 {
			t.Errorf("%d members, want 3", len(ml.Members))
		}
	}
	if _, err := c.Put(ctx, "/labtest/probe", dir); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Get(ctx, "/labtest/probe"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != dir {
		t.Fatalf("read back: %v %v", r, err)
	}
}

// memberLine returns the status table's line of member m.
func memberLine(status, m string) string {
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(l, m+" ") {
			return l
		}
	}
	return ""
}

func TestLab(t *testing.T) {
	needEtcd(t)
	dirA := filepath.Join(t.TempDir(), "lab")
	envA := labEnv(dirA, addrsA)
	downAtEnd(t, envA)

	var before map[string]int
	if !t.Run("up", func(t *testing.T) {
		r := run(t, envA, "lab.sh", "up")
		if r.code != 0 {
			t.Fatalf("up: %s", r)
		}
		mustContain(t, "up's output", r.stdout,
			"m1 started on 127.0.0.41", "m2 started on 127.0.0.42", "m3 started on 127.0.0.43",
			"3 member(s) started", "(this lab's)", "runbook drives it with: -i lab -e lab_dir="+dirA)
		if n := strings.Count(r.stdout, "3.6.16   3.6.0    3.6.0"); n != 3 {
			t.Errorf("%d members on 3.6.16 in the table, want 3:\n%s", n, r.stdout)
		}
		checkCluster(t, dirA, addrsA)
		before = pids(t, dirA)
		for _, m := range []string{"m1", "m2", "m3"} {
			for _, f := range []string{"bin/etcd", "start.sh", "etcd.log", "data/member"} {
				if _, err := os.Stat(filepath.Join(dirA, "members", m, f)); err != nil {
					t.Error(err)
				}
			}
		}
		for _, f := range []string{"dist/etcd-3.6.16", "dist/etcd-3.7.3", "cluster-id", "watchdog.pid"} {
			if _, err := os.Stat(filepath.Join(dirA, f)); err != nil {
				t.Error(err)
			}
		}
	}) {
		return
	}

	t.Run("up again changes nothing", func(t *testing.T) {
		r := run(t, envA, "lab.sh", "up")
		if r.code != 0 {
			t.Fatalf("up: %s", r)
		}
		mustContain(t, "up's output", r.stdout, "m1 already running", "m3 already running", "already up and healthy: nothing started")
		if after := pids(t, dirA); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("pids %v, were %v", after, before)
		}
	})

	t.Run("status", func(t *testing.T) {
		r := run(t, envA, "lab.sh", "status")
		if r.code != 0 {
			t.Fatalf("status: %s", r)
		}
		mustContain(t, "status", r.stdout, "MEMBER", "(this lab's): leader m", "cluster version 3.6.0")
		leaders := 0
		for _, m := range []string{"m1", "m2", "m3"} {
			if strings.Contains(memberLine(r.stdout, m), " leader ") {
				leaders++
			}
		}
		if n := leaders; n != 1 {
			t.Errorf("%d leaders in the table, want 1:\n%s", n, r.stdout)
		}
	})

	t.Run("a second lab on the same addresses is refused", func(t *testing.T) {
		dirB := filepath.Join(t.TempDir(), "lab-b")
		envB := labEnv(dirB, addrsA)
		downAtEnd(t, envB)
		id, _ := os.ReadFile(filepath.Join(dirA, "cluster-id"))
		r := run(t, envB, "lab.sh", "up")
		if r.code != 1 {
			t.Fatalf("up of a second lab: %s", r)
		}
		mustContain(t, "the refusal", r.stderr,
			fmt.Sprintf(`m1: 127.0.0.41:2379 is taken by etcd 3.6.16 member "m1" of cluster %s, and this lab has no cluster yet`, strings.TrimSpace(string(id))),
			"m3: 127.0.0.43:2379 is taken by etcd 3.6.16 member \"m3\"",
			"refusing to start: the addresses and ports above are not free and not this lab's ("+dirB+")")
		if _, err := os.Stat(filepath.Join(dirB, "members")); !os.IsNotExist(err) {
			t.Errorf("the refused lab made its members: %v", err)
		}
		if after := pids(t, dirA); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the first lab's pids %v, were %v", after, before)
		}
	})

	t.Run("something else on one port is refused, and nothing starts", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.45:2380")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		dirC := filepath.Join(t.TempDir(), "lab-c")
		envC := labEnv(dirC, addrsC)
		downAtEnd(t, envC)
		r := run(t, envC, "lab.sh", "up")
		if r.code != 1 {
			t.Fatalf("up with a taken port: %s", r)
		}
		mustContain(t, "the refusal", r.stderr,
			"m2: 127.0.0.45:2380 is taken: something accepts connections but does not answer HTTP (",
			"refusing to start")
		if strings.Contains(r.stderr, "m1:") || strings.Contains(r.stderr, "m3:") {
			t.Errorf("free members are reported:\n%s", r.stderr)
		}
		if !refused("127.0.0.44:2379") {
			t.Error("m1 of the refused lab was started")
		}
	})

	t.Run("up starts a member that stopped, and only it", func(t *testing.T) {
		pid := pids(t, dirA)["m2"]
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "m2 to exit", func() bool { return gone(pid) })
		r := run(t, envA, "lab.sh", "up")
		if r.code != 0 {
			t.Fatalf("up: %s", r)
		}
		mustContain(t, "up's output", r.stdout, "m1 already running", "m2 started on 127.0.0.42", "m3 already running", "1 member(s) started")
		checkCluster(t, dirA, addrsA)
	})

	t.Run("runbook drives the members through the lab inventory", func(t *testing.T) {
		testRunbookOnLab(t, dirA, envA)
	})

	t.Run("down with KEEP_DATA, then up: the same cluster", func(t *testing.T) {
		id, _ := os.ReadFile(filepath.Join(dirA, "cluster-id"))
		running := pids(t, dirA)
		r := run(t, append(envA, "KEEP_DATA=1"), "lab.sh", "down")
		if r.code != 0 {
			t.Fatalf("down: %s", r)
		}
		mustContain(t, "down's output", r.stdout, "m1 stopped", "m2 stopped", "m3 stopped", "data kept in "+dirA)
		for m, pid := range running {
			if !gone(pid) {
				t.Errorf("%s (pid %d) still runs after down", m, pid)
			}
		}
		if !refused("127.0.0.41:2379") {
			t.Error("127.0.0.41:2379 still open after down")
		}
		r = run(t, envA, "lab.sh", "up")
		if r.code != 0 {
			t.Fatalf("up: %s", r)
		}
		mustContain(t, "up's output", r.stdout, "3 member(s) started", "(this lab's)")
		if again, _ := os.ReadFile(filepath.Join(dirA, "cluster-id")); string(again) != string(id) {
			t.Errorf("cluster ID %s after a restart, was %s", again, id)
		}
		checkCluster(t, dirA, addrsA)
	})

	t.Run("down", func(t *testing.T) {
		running := pids(t, dirA)
		r := run(t, envA, "lab.sh", "down")
		if r.code != 0 {
			t.Fatalf("down: %s", r)
		}
		mustContain(t, "down's output", r.stdout, "m1 stopped", "m2 stopped", "m3 stopped", "removed "+dirA)
		for m, pid := range running {
			if !gone(pid) {
				t.Errorf("%s (pid %d) still runs after down", m, pid)
			}
		}
		if _, err := os.Stat(dirA); !os.IsNotExist(err) {
			t.Errorf("the lab's folder is left: %v", err)
		}
		for _, a := range strings.Split(addrsA, ",") {
			if !refused(a + ":2379") {
				t.Errorf("%s:2379 still open after down", a)
			}
		}
		r = run(t, envA, "lab.sh", "down")
		if r.code != 0 || !strings.Contains(r.stdout, "nothing to stop") {
			t.Errorf("down of no lab: %s", r)
		}
	})
}

// testRunbookOnLab runs runbook with the lab inventory, its addresses moved
// to the test's lab: stop, swap to 3.7.3 and start one member through the
// inventory's pidfile service. The lab then sees that member as its own, on
// the new version, and up leaves it alone.
func testRunbookOnLab(t *testing.T, dir string, env []string) {
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), scriptTime)
	defer cancel()
	rb := filepath.Join(work, "runbook")
	build := exec.CommandContext(ctx, "go", "build", "-o", rb, "./cmd/runbook")
	build.Dir = root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building runbook: %v\n%s", err, out)
	}
	inv, err := os.ReadFile(filepath.Join(root(t), "runbooks", "inventory", "lab.yml"))
	if err != nil {
		t.Fatal(err)
	}
	moved := regexp.MustCompile(`127\.0\.0\.1([123])\b`).ReplaceAllString(string(inv), "127.0.0.4$1")
	if moved == string(inv) || strings.Contains(moved, "127.0.0.11") {
		t.Fatal("the lab inventory does not name 127.0.0.11-13 as the test expects")
	}
	os.MkdirAll(filepath.Join(work, "inventory"), 0o755)
	if err := os.WriteFile(filepath.Join(work, "inventory", "lab.yml"), []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	book := `runbook: lab-member-upgrade
hosts: etcd
serial: 1
steps:
  - stop: { service: etcd }
  - swap: { src: '{{ etcd_dist }}/etcd-3.7.3', dest: '{{ etcd_bin }}' }
  - start: { service: etcd }
`
	if err := os.WriteFile(filepath.Join(work, "upgrade.yml"), []byte(book), 0o644); err != nil {
		t.Fatal(err)
	}
	old := pids(t, dir)["m1"]
	cmd := exec.CommandContext(ctx, rb, "exec", "upgrade.yml", "-i", "lab", "--limit", "m1", "--yes",
		"-e", "lab_dir="+dir, "--state-dir", filepath.Join(work, "state"))
	cmd.Dir = work
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runbook exec: %v\n%s", err, out)
	}
	if !gone(old) {
		t.Errorf("m1's old process %d still runs", old)
	}

	// The runbook's start waits for m1's /readyz; the cluster as a whole
	// may take a moment more to agree again.
	var r result
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r = run(t, env, "lab.sh", "status"); r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after the runbook, for 60s: %s", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	line := memberLine(r.stdout, "m1")
	if !strings.Contains(line, " 3.7.3 ") || !strings.Contains(line, strconv.Itoa(pids(t, dir)["m1"])) {
		t.Errorf("m1 after the swap: %q, want 3.7.3 and the pid runbook recorded", line)
	}
	r = run(t, env, "lab.sh", "up")
	if r.code != 0 || !strings.Contains(r.stdout, "already up and healthy: nothing started") {
		t.Errorf("up after the runbook: %s", r)
	}
	checkCluster(t, dir, addrsA)
}

// The demo without the upgrade runbook: a lab, a short load, the load's
// report, and a stop that says why (exit 3).
func TestDemoWithoutRunbook(t *testing.T) {
	needEtcd(t)
	dir := filepath.Join(t.TempDir(), "lab")
	env := append(labEnv(dir, addrsDemo),
		"DEMO_RUNBOOK="+filepath.Join(t.TempDir(), "upgrade-etcd.yml"),
		"DEMO_LOAD_SECONDS=2", "DEMO_RATE=100", "DEMO_BIN="+t.TempDir())
	downAtEnd(t, env)
	r := run(t, env, "demo-etcd.sh")
	if r.code != 3 {
		t.Fatalf("demo: %s", r)
	}
	mustContain(t, "the demo's output", r.stdout, "m1 started on 127.0.0.47", "a write load: 100 writes/s",
		"OK: every acknowledged write was read back", "(this lab's)")
	mustContain(t, "the demo's errors", r.stderr, "upgrade-etcd.yml does not exist yet, so the upgrade was not run",
		"the lab keeps running for 10m at most; make lab-down stops it now")
	rep, err := etcdload.ReadReport(filepath.Join(dir, "load-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Writes.Acknowledged == 0 || rep.Writes.Lost != 0 || !rep.Verify.Complete || rep.StopReason != etcdload.StopDuration {
		t.Errorf("load report: %+v, stopped by %s, verify %+v", rep.Writes, rep.StopReason, rep.Verify)
	}
}
