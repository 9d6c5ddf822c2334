package etcdload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdVersion is the etcd the integration tests run, built and cached by
// scripts/etcd-build.sh.
const etcdVersion = "3.6.16"

// etcdAddr is a loopback address of its own (Linux routes all of
// 127.0.0.0/8 to lo), away from the lab's 127.0.0.11-13.
const etcdAddr = "127.0.0.31"

// etcdLife bounds every etcd a test starts, should its cleanup never run.
const etcdLife = 3 * time.Minute

// etcdBinary builds (or finds in the cache) the etcd server binary, or
// skips the test when RUNBOOK_SKIP_ETCD=1.
func etcdBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("RUNBOOK_SKIP_ETCD") == "1" {
		t.Skip("RUNBOOK_SKIP_ETCD=1")
	}
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "..", "scripts", "etcd-build.sh")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, etcdVersion).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s %s: %v\n%s", script, etcdVersion, err, ee.Stderr)
		}
		t.Fatalf("%s %s: %v", script, etcdVersion, err)
	}
	return strings.TrimSpace(string(out))
}

// freePort returns a port nothing listens on at addr now; etcd binds it a
// moment later, so startEtcd tries again should another process win it.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// etcdProc is a single-member etcd of one test.
type etcdProc struct {
	URL string
	cmd *exec.Cmd
	log string
}

// startEtcd starts a one-member cluster on etcdAddr with free ports and
// waits until it serves a linearizable read. It stops at the end of the
// test, at the latest after etcdLife, and with the test process.
func startEtcd(t *testing.T) *etcdProc {
	t.Helper()
	bin := etcdBinary(t)
	var lastErr error
	for range 3 {
		p, err := tryStartEtcd(t, bin)
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func tryStartEtcd(t *testing.T, bin string) (*etcdProc, error) {
	dir := t.TempDir()
	client := fmt.Sprintf("http://%s:%d", etcdAddr, freePort(t, etcdAddr))
	peer := fmt.Sprintf("http://%s:%d", etcdAddr, freePort(t, etcdAddr))
	ctx, cancel := context.WithTimeout(context.Background(), etcdLife)
	cmd := exec.CommandContext(ctx, bin,
		"--name", "t1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t1="+peer, "--initial-cluster-token", filepath.Base(dir),
		"--initial-cluster-state", "new", "--log-level", "warn")
	logPath := filepath.Join(dir, "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &etcdProc{URL: client, cmd: cmd, log: logPath}
	stop := func() {
		cancel() // SIGTERM, then SIGKILL after WaitDelay
		<-exited
		logf.Close()
	}

	c, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		stop()
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			stop()
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("etcd exited at start (%v):\n%s", err, out)
		default:
		}
		gctx, gcancel := context.WithTimeout(t.Context(), time.Second)
		_, err := c.Get(gctx, "health")
		gcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stop()
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("etcd on %s did not serve a read within 30s: %v\n%s", client, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(stop)
	return p, nil
}

func (p *etcdProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to etcd: %v", sig, err)
	}
}

// waitFor polls cond every 10ms until it holds, or fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The command against a real etcd: every write acknowledged and read back,
// the report written and printed again by -report-from.
func TestEtcdMain(t *testing.T) {
	e := startEtcd(t)
	// A second endpoint where nothing listens: one client over all the
	// endpoints, as in the lab, must keep writing through the live one.
	dead := fmt.Sprintf("http://%s:%d", etcdAddr, freePort(t, etcdAddr))
	out := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := runMain(t, "-endpoints", e.URL+","+dead, "-rate", "1000", "-max-writes", "300", "-out", out)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r, err := ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Attempted: 300, Acknowledged: 300}
	got := r.Writes
	got.Slow = 0 // how many were slow is the machine's, not the run's
	if got != want || r.StopReason != StopMaxWrites || !r.Verify.Complete || r.Verify.Checked != 300 {
		t.Errorf("report: writes %+v, stop %s, verify %+v; want %+v, max-writes, 300 checked", r.Writes, r.StopReason, r.Verify, want)
	}
	if r.Latency.P50MS <= 0 || r.Latency.P99MS < r.Latency.P50MS || r.Latency.MaxMS < r.Latency.P99MS || r.Slowest == nil || r.Slowest.LatencyMS != r.Latency.MaxMS {
		t.Errorf("latency %+v, slowest %+v: want 0 < p50 <= p99 <= max == slowest", r.Latency, r.Slowest)
	}
	code, again, _ := runMain(t, "-report-from", out)
	if code != ExitOK || again != stdout {
		t.Errorf("-report-from: exit %d, summary\n%s\nwant the run's\n%s", code, again, stdout)
	}
}

// A member that stops answering for a while: the writes of that time fail
// after their timeout, none is retried, the gap covers the pause, and a key
// removed behind the tool's back is reported lost.
func TestEtcdOutageAndLoss(t *testing.T) {
	e := startEtcd(t)
	store, err := DialEtcd([]string{e.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := Config{Prefix: "/outage/", RunID: "r1", Rate: 200, Duration: time.Minute, Timeout: 200 * time.Millisecond, MaxInFlight: 64}
	rec := NewRecorder(time.Now)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		reason StopReason
		err    error
	}
	done := make(chan result, 1)
	go func() {
		reason, err := Run(ctx, cfg, store, rec)
		done <- result{reason, err}
	}()
	acked := func(n int64) func() bool { return func() bool { return rec.Stats().Acknowledged >= n } }
	waitFor(t, 10*time.Second, "20 acknowledged writes", acked(20))

	const pause = time.Second
	e.signal(t, syscall.SIGSTOP)
	time.Sleep(pause) // the outage itself, which the run must measure
	e.signal(t, syscall.SIGCONT)
	before := rec.Stats().Acknowledged
	waitFor(t, 10*time.Second, "writes acknowledged again after the pause", acked(before+20))
	cancel()
	res := <-done
	if res.err != nil || res.reason != StopSignal {
		t.Fatalf("Run = %q, %v; want stopped by the signal", res.reason, res.err)
	}

	st := rec.Stats()
	if st.Failed == 0 {
		t.Errorf("no write failed while etcd was stopped for %s with a timeout of %s", pause, cfg.Timeout)
	}
	if st.MaxGap.Duration < pause-100*time.Millisecond {
		t.Errorf("longest gap %s, want about the pause of %s at least", st.MaxGap.Duration, pause)
	}
	for _, e := range st.Errors {
		if e.Error != "context deadline exceeded" {
			t.Errorf("unexpected error %q ×%d: a paused member only makes writes time out", e.Error, e.Count)
		}
	}
	for _, w := range rec.Writes() {
		if !w.Acked() && w.Latency < cfg.Timeout {
			t.Errorf("write %d failed after %s, before its timeout: was it not sent?", w.Seq, w.Latency)
		}
		if w.Latency > cfg.Timeout+500*time.Millisecond {
			t.Errorf("write %d took %s with a timeout of %s: was it retried?", w.Seq, w.Latency, cfg.Timeout)
		}
	}

	v := Verify(t.Context(), cfg, store, rec.Writes(), 100)
	if v.Err != nil || v.Lost != 0 || v.Checked != st.Acknowledged {
		t.Fatalf("Verify = %+v, want %d checked and none lost", v, st.Acknowledged)
	}
	// Remove two acknowledged keys behind the tool's back: they are lost.
	var gone []string
	for _, w := range rec.Writes() {
		if w.Acked() && len(gone) < 2 {
			gone = append(gone, cfg.Key(w.Seq))
		}
	}
	for _, k := range gone {
		if _, err := store.read.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	v = Verify(t.Context(), cfg, store, rec.Writes(), 100)
	if v.Lost != 2 || strings.Join(v.LostKeys, " ") != strings.Join(gone, " ") {
		t.Errorf("after deleting %v: Verify = %+v, want those two lost", gone, v)
	}
}
