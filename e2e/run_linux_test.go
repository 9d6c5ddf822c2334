package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/runbookhq/runbook/internal/etcdload"
	"github.com/runbookhq/runbook/internal/event"
)

// runTime bounds one runbook process: a whole upgrade of the lab takes
// about a minute.
const runTime = 6 * time.Minute

// runbookFile is the runbook under test.
var runbookFile = filepath.Join(repoRoot, "runbooks", "upgrade-etcd.yml")

// extraVars are the -e every run of the upgrade gets: the lab's folder and
// a short soak, plus those of the scenario.
func (l *lab) extraVars(more ...string) []string {
	args := []string{"-e", "lab_dir=" + l.dir, "-e", `{"soak": "3s"}`}
	for _, v := range more {
		args = append(args, "-e", v)
	}
	return args
}

// proc is a runbook process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
	started, ended time.Time
}

// start starts runbook with args in the lab's folder; the process is killed
// when t ends, if it still runs.
func (l *lab) start(args ...string) *proc {
	t := l.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTime)
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bins.runbook, args...)
	p.cmd.Dir = l.work
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 10 * time.Second
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.ended = time.Now()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	if len(args) > 0 && (args[0] == "exec" || args[0] == "resume") {
		go l.approveOwnRun(p)
	}
	return p
}

// approveOwnRun approves each wait of the run p makes, from another
// process, as make demo does: the upgrade's point of no return waits for an
// approval that --yes does not give, and the lab inventory lets the
// operator who started the run give it (approve_self).
func (l *lab) approveOwnRun(p *proc) {
	approved := 0
	for {
		select {
		case <-p.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
		j, err := l.tryJournal()
		if err != nil {
			continue
		}
		waits, id := 0, ""
		for _, e := range j {
			if e.Kind == event.ApprovalWait {
				waits, id = waits+1, e.RunID
			}
		}
		if waits <= approved {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bins.runbook, "approve", id, "--state-dir", l.state, "--wait", "30s", "--reason", "e2e: the lab approves its own run")
		cmd.Dir, cmd.Env = l.work, cleanEnv()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			// The run may have stopped waiting meanwhile (killed by the
			// test): its own checks say what went wrong.
			fmt.Fprintf(os.Stderr, "e2e: runbook approve %s: %v: %s", id, err, out)
		}
		approved = waits
	}
}

// wait waits for the process and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.done
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee) && ee.Exited():
		return ee.ExitCode()
	case errors.As(p.err, &ee):
		return -1 // killed by a signal
	}
	t.Fatalf("runbook %s: %v\n%s", strings.Join(p.cmd.Args[1:], " "), p.err, p)
	return -1
}

func (p *proc) String() string {
	return fmt.Sprintf("--- stdout:\n%s--- stderr:\n%s", p.stdout.String(), p.stderr.String())
}

func (l *lab) execArgs(more ...string) []string {
	args := []string{"exec", runbookFile, "-i", l.inv, "--yes", "--state-dir", l.state}
	args = append(args, l.flags...)
	return append(args, l.extraVars(more...)...)
}

// wantExit fails t unless the process ended with code.
func (p *proc) wantExit(t *testing.T, code int) {
	t.Helper()
	if got := p.wait(t); got != code {
		t.Fatalf("runbook %s: exit %d, want %d\n%s", p.cmd.Args[1], got, code, p)
	}
}

// journal is the events of the test's one run, both parts of a resumed one.
type journal []event.Event

// readJournal reads the journal of the only run under the lab's state dir.
// A last line without its newline is being written and is left out.
func (l *lab) readJournal() journal {
	t := l.t
	t.Helper()
	j, err := l.tryJournal()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (l *lab) tryJournal() (journal, error) {
	files, err := filepath.Glob(filepath.Join(l.state, "runs", "*.jsonl"))
	if err != nil {
		return nil, err
	}
	if l.runID != "" {
		// Other runs share the state dir (a fresh run refused beside a
		// killed one): the test's run is this one.
		files = []string{filepath.Join(l.state, "runs", l.runID+".jsonl")}
	}
	switch len(files) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%d journals under %s, want the one of this test's run: %v", len(files), l.state, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var j journal
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", files[0], n, err)
		}
		j = append(j, e)
	}
	return j, sc.Err()
}

// show is what `runbook show` says of the test's run.
func (l *lab) show(id string) string {
	t := l.t
	t.Helper()
	p := l.start("show", id, "--state-dir", l.state)
	p.wantExit(t, 0)
	return p.stdout.String()
}

// runID is the id of the journal's run.
func (j journal) runID(t *testing.T) string {
	t.Helper()
	for _, e := range j {
		if e.Kind == event.RunStart {
			return e.RunID
		}
	}
	t.Fatal("the journal has no run_start")
	return ""
}

// hostOrder is the hosts in the order their steps started.
func (j journal) hostOrder() []string {
	var hosts []string
	seen := map[string]bool{}
	for _, e := range j {
		if e.Kind == event.HostStart && !seen[e.Host] {
			seen[e.Host] = true
			hosts = append(hosts, e.Host)
		}
	}
	return hosts
}

// stepEnds are the step_end events of the steps phase for step on host
// ("" for any host).
func (j journal) stepEnds(host, step string) []event.Event {
	var out []event.Event
	for _, e := range j {
		if e.Kind == event.StepEnd && e.Phase == event.Steps && e.Step == step && (host == "" || e.Host == host) {
			out = append(out, e)
		}
	}
	return out
}

// of returns the events of kind (and host, when not "").
func (j journal) of(kind event.Kind, host string) []event.Event {
	var out []event.Event
	for _, e := range j {
		if e.Kind == kind && (host == "" || e.Host == host) {
			out = append(out, e)
		}
	}
	return out
}

// String lists the journal briefly, for a failure message.
func (j journal) String() string {
	var b strings.Builder
	for _, e := range j {
		fmt.Fprintf(&b, "%4d %-20s %-15s %-4s %q %s", e.Seq, e.Kind, e.Phase, e.Host, e.Step, e.Status)
		if e.Error != "" {
			fmt.Fprintf(&b, ": %.300s", e.Error)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// waitEvent waits until the journal holds an event that match accepts, or
// the process ends first.
func (l *lab) waitEvent(p *proc, what string, match func(event.Event) bool) {
	t := l.t
	t.Helper()
	deadline := time.Now().Add(runTime)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := l.tryJournal()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range j {
			if match(e) {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("runbook ended before the journal showed %s\n%s\n%s", what, j, p)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the journal did not show %s within %s\n%s", what, runTime, j)
		}
	}
}

// load is an etcd-load process writing to the lab.
type load struct {
	cmd         *exec.Cmd
	report, log string
	done        chan error
}

// loadRate is the tests' write rate: enough that every stop, start and
// leader move meets writes in flight, little enough for a shared 2-core
// machine.
const loadRate = "100"

// loadPrefix is where etcd-load writes.
const loadPrefix = "/e2e-load/"

// startLoad starts etcd-load against the lab, bounded by -duration should
// the test never stop it, and killed when t ends if it still runs.
func (l *lab) startLoad() *load {
	t := l.t
	t.Helper()
	ld := &load{report: filepath.Join(l.work, "load.json"), log: filepath.Join(l.work, "load.log"), done: make(chan error, 1)}
	logf, err := os.Create(ld.log)
	if err != nil {
		t.Fatal(err)
	}
	ld.cmd = exec.Command(bins.load,
		"-endpoints", strings.Join(l.endpoints(), ","), "-rate", loadRate,
		"-duration", "8m", "-verify-timeout", "1m", "-prefix", loadPrefix, "-out", ld.report)
	ld.cmd.Dir = l.work
	ld.cmd.Env = cleanEnv()
	ld.cmd.Stdout, ld.cmd.Stderr = logf, logf
	if err := ld.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		ld.done <- ld.cmd.Wait()
		logf.Close()
	}()
	t.Cleanup(func() {
		ld.cmd.Process.Kill()
	})
	l.waitWrites(ld)
	return ld
}

// waitWrites waits until the load's first write is in etcd, so that the
// run starts under load.
func (l *lab) waitWrites(ld *load) {
	t := l.t
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: l.endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		r, err := cli.Get(ctx, loadPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err == nil && r.Count > 0 {
			return
		}
		select {
		case err := <-ld.done:
			t.Fatalf("etcd-load ended (%v) before its first write\n%s", err, ld.output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write of etcd-load reached etcd within 30s (last: %v)\n%s", err, ld.output())
		}
	}
}

// stop stops the writes with SIGTERM, waits for the read back and returns
// the report.
func (ld *load) stop(t *testing.T) *etcdload.Report {
	t.Helper()
	if err := ld.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-ld.done:
	case <-time.After(2 * time.Minute): // -verify-timeout and then some
		ld.cmd.Process.Kill()
		t.Fatalf("etcd-load did not end within 2m of SIGTERM\n%s", ld.output())
	}
	r, rerr := etcdload.ReadReport(ld.report)
	if rerr != nil {
		t.Fatalf("etcd-load (%v) left no report: %v\n%s", err, rerr, ld.output())
	}
	t.Logf("etcd-load:\n%s", ld.output())
	return r
}

func (ld *load) output() string {
	b, err := os.ReadFile(ld.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// noLoss fails t unless every acknowledged write of the report was read
// back, and the writes went on over the whole run of p (and of after,
// such as a resume).
func noLoss(t *testing.T, r *etcdload.Report, from, to time.Time) {
	t.Helper()
	if r.Writes.Acknowledged == 0 {
		t.Errorf("etcd-load: no write acknowledged")
	}
	if !r.Verify.Complete {
		t.Errorf("etcd-load could not read every write back: %s", r.Verify.Error)
	}
	if r.Writes.Lost != 0 {
		t.Errorf("etcd-load: %d acknowledged writes lost: %v", r.Writes.Lost, r.Verify.LostKeys)
	}
	if !r.Started.Before(from) || !r.Stopped.After(to) {
		t.Errorf("the load ran from %s to %s, not over the whole run (%s to %s)",
			r.Started.Format(time.StampMilli), r.Stopped.Format(time.StampMilli), from.Format(time.StampMilli), to.Format(time.StampMilli))
	}
}
