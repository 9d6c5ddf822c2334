package runlock

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// holdEnv makes the test binary a process that takes a lock and holds it
// until it is killed (or a minute passes): a real holder to kill.
const holdEnv = "RUNLOCK_TEST_HOLD"

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: "3.6.16", Members: 1}}

func TestMain(m *testing.M) {
	if spec := os.Getenv(holdEnv); spec != "" {
		os.Exit(hold(spec))
	}
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// hold takes the lock described by spec ("file DIR RUN KEY..." or
// "etcd ENDPOINTS PREFIX TTL RUN KEY..."), says "held" on stdout and waits.
func hold(spec string) int {
	f := strings.Fields(spec)
	var s Store
	var run string
	var keys []string
	switch f[0] {
	case "file":
		s, run, keys = NewFileStore(f[1]), f[2], f[3:]
	case "etcd":
		ttl, err := time.ParseDuration(f[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		es, err := OpenEtcd(EtcdConfig{Endpoints: strings.Split(f[1], ","), Prefix: f[2], TTL: ttl})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		s, run, keys = es, f[4], f[5:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Acquire(ctx, keys, Me(run, "held.yml")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Println("held")
	time.Sleep(time.Minute)
	return 0
}

// startHolder starts a holding process and returns once it holds; the test
// kills it, or its cleanup does.
func startHolder(t *testing.T, spec string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+spec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if strings.TrimSpace(l) != "held" {
			_ = cmd.Wait()
			t.Fatalf("holder did not take the lock: %q %s", l, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("holder did not take the lock within 30s: %s", stderr.String())
	}
	return cmd
}

// kill SIGKILLs a holder: no chance to release anything.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func holder(run string) Holder {
	return Holder{RunID: run, User: "alice", Controller: "ctl-1", PID: 4242, Runbook: "upgrade-etcd.yml",
		Since: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
}
