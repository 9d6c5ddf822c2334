package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// Step names of runbooks/upgrade-etcd.yml the scenarios look for in the journal.
const (
	stepFlags   = "no member uses a flag etcd " + toVersion + " removed"
	stepQuiet   = "load and disk are quiet enough on every member"
	stepConfirm = "confirm the last member on the old minor"
	stepMove    = "hand leadership to an upgraded member"
	stepStop    = "stop etcd"
	stepSwap    = "install the target binary"
	stepStart   = "start etcd"
	stepRunsNew = "the member runs the target version and has caught up"
	stepStable  = "the member is stable"
	stepPostAll = "every member runs the target and holds the same data"

	stepRefuse  = "refuse to swap back after the point of no return"
	stepPutBack = "put the previous binary back"
)

// scenario is one run of the upgrade against a lab of its own.
type scenario struct {
	name  string
	addrs []string // the lab's; one triple per scenario, never the dev lab's 127.0.0.11-13
	// prepare breaks something before the run and returns the scenario's
	// own -e values.
	prepare func(t *testing.T, o *outcome) []string
	load    bool // etcd-load writes during the run
	busy    bool // the test keeps every CPU busy during the run (bounded)
	// run runs the upgrade; nil runs exec once, to its end.
	run      func(t *testing.T, o *outcome, extra []string)
	wantExit int
	check    func(t *testing.T, o *outcome)
}

// outcome is what a scenario's checks see.
type outcome struct {
	lab    *lab
	before map[string]member // every member before the run
	leader string            // the leader before the run
	runs   []*proc           // the runbook processes, in order
	j      journal
	sshd   *sshtest.SSHD // the scenario's sshd, when it has one
}

func TestUpgradeEtcd(t *testing.T) {
	for _, sc := range []scenario{
		{
			name:  "full_upgrade",
			addrs: []string{"127.0.0.71", "127.0.0.72", "127.0.0.73"},
			// With the analysis of each member against its peers through a
			// real Prometheus, as make demo runs it.
			prepare:  withPrometheus,
			load:     true,
			wantExit: 0,
			check: func(t *testing.T, o *outcome) {
				checkFullUpgrade(t, o)
				checkAnalysisPassed(t, o)
			},
		},
		{
			name:  "target_exits_at_start",
			addrs: []string{"127.0.0.74", "127.0.0.75", "127.0.0.76"},
			// The broken binary answers --version as the target does, so
			// preflight lets it through, and exits 1 when started.
			prepare: func(t *testing.T, o *outcome) []string {
				dist := filepath.Join(o.lab.work, "broken-dist")
				if err := os.Mkdir(dist, 0o755); err != nil {
					t.Fatal(err)
				}
				script, err := os.ReadFile(filepath.Join("testdata", "etcd-exits-at-start"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dist, "etcd-"+toVersion), script, 0o755); err != nil {
					t.Fatal(err)
				}
				return []string{"etcd_dist=" + dist}
			},
			load:     true,
			wantExit: 1,
			check: func(t *testing.T, o *outcome) {
				// The error starts with the broken binary's own words, on one
				// line, and not with the shutdown log of the etcd before it
				// (etcd logs JSON lines).
				words := "etcd exited right after start (pid "
				said := "), saying: etcd-exits-at-start: this binary is broken on purpose (runbook's e2e tests) (the end of its output in "
				checkRolledBack(t, o, stepStart, said)
				end := o.j.stepEnds(o.j.hostOrder()[0], stepStart)[0]
				if i, j := strings.Index(end.Error, words), strings.Index(end.Error, said); i < 0 || j < i || strings.ContainsAny(end.Error, "\n{") {
					t.Errorf("the start's error does not give the new process's words first and alone on one line:\n%s", end.Error)
				}
				out := o.runs[0].String()
				if strings.Contains(out, `\n`) || strings.Contains(out, `"level"`) {
					t.Errorf("the run's output has a literal \\n or an etcd log line")
				}
				if !strings.Contains(out, said) {
					t.Errorf("the run's output does not say %q", said)
				}
				if show := o.lab.show(o.j.runID(t)); !strings.Contains(show, said) {
					t.Errorf("runbook show does not say %q whole:\n%s", said, show)
				}
			},
		},
		{
			name:  "metric_gate_fails",
			addrs: []string{"127.0.0.77", "127.0.0.78", "127.0.0.79"},
			// No fsync is faster than 0 seconds: under write load the
			// gate cannot hold once the member has started on the target.
			prepare: func(*testing.T, *outcome) []string {
				return []string{`{"wal_fsync_p99_max": 0}`}
			},
			load:     true,
			wantExit: 1,
			check: func(t *testing.T, o *outcome) {
				checkRolledBack(t, o, stepStable, "etcd_disk_wal_fsync_duration_seconds")
				if ends := o.j.stepEnds(o.j.hostOrder()[0], stepRunsNew); len(ends) != 1 || ends[0].Status != event.OK {
					t.Errorf("the member did not run %s before the gate failed: %+v", toVersion, ends)
				}
			},
		},
		{
			name:  "unhealthy_member_refused",
			addrs: []string{"127.0.0.80", "127.0.0.81", "127.0.0.82"},
			// A member that hangs (SIGSTOP) rather than one that is gone:
			// its ports still accept connections, and only timeouts tell.
			prepare: func(t *testing.T, o *outcome) []string {
				victim := firstFollower(o.leader)
				o.lab.signal(victim, syscall.SIGSTOP)
				t.Cleanup(func() { o.lab.signal(victim, syscall.SIGCONT) })
				return nil
			},
			wantExit: 3,
			check:    checkRefused,
		},
		{
			// The quiet window refuses, naming the clause that was false
			// and what it saw, in the output, the journal and show; and a
			// refusal that touched nothing exits 3.
			name:  "quiet_window_refused",
			addrs: []string{"127.0.0.51", "127.0.0.52", "127.0.0.53"},
			prepare: func(*testing.T, *outcome) []string {
				return []string{`{"max_proposals_pending": -1}`}
			},
			wantExit: 3,
			check: func(t *testing.T, o *outcome) {
				checkRefused(t, o)
				clause := `metric("etcd_server_proposals_pending") <= max_proposals_pending: was 0 <= -1`
				var ends []event.Event
				for _, e := range o.j.of(event.StepEnd, "") {
					if e.Phase == event.Preflight && e.Status == event.Failed {
						ends = append(ends, e)
					}
				}
				if len(ends) != 1 || ends[0].Step != stepQuiet || !strings.Contains(ends[0].Error, clause) {
					t.Errorf("failed preflight steps %+v; want %q alone, saying %q", ends, stepQuiet, clause)
				}
				out := o.runs[0].stdout.String()
				for _, want := range []string{clause, "refused: preflight did not pass; nothing was touched"} {
					if !strings.Contains(out, want) {
						t.Errorf("the run's output does not say %q", want)
					}
				}
				if show := o.lab.show(o.j.runID(t)); !strings.Contains(show, clause) {
					t.Errorf("runbook show does not say %q:\n%s", clause, show)
				}
			},
		},
		{
			name:     "killed_and_resumed",
			addrs:    []string{"127.0.0.83", "127.0.0.84", "127.0.0.85"},
			load:     true,
			run:      killAndResume,
			wantExit: 0,
			check:    checkResumed,
		},
		{
			// The same on a machine whose every CPU is busy.
			name:     "killed_and_resumed_busy",
			addrs:    []string{"127.0.0.54", "127.0.0.55", "127.0.0.56"},
			load:     true,
			busy:     true,
			run:      killAndResume,
			wantExit: 0,
			check:    checkResumed,
		},
		{
			name:  "failure_after_point_of_no_return",
			addrs: []string{"127.0.0.86", "127.0.0.87", "127.0.0.88"},
			// The leader goes last, so when its gate fails it already runs
			// the target, as do the others: the cluster version has moved,
			// and the old binary would not start on the migrated data.
			prepare: func(t *testing.T, o *outcome) []string {
				o.lab.setHostVar(o.leader, "wal_fsync_p99_max", "0", "!!int")
				return nil
			},
			load:     true,
			wantExit: 4,
			check:    checkRefusedSwapBack,
		},
		{
			name:  "full_upgrade_over_ssh",
			addrs: []string{"127.0.0.97", "127.0.0.98", "127.0.0.99"},
			// As in production: every member is reached over SSH (a real
			// OpenSSH sshd listening on the members' own addresses), host
			// keys checked against a known_hosts file, the binary uploaded
			// over SFTP from the controller.
			prepare: func(t *testing.T, o *outcome) []string {
				l := o.lab
				o.sshd = sshtest.StartSSHD(t, sshtest.SSHDOptions{Addrs: l.addrs})
				key := o.sshd.ClientKey.Write(t, l.work, "id_ed25519")
				for _, name := range memberNames {
					l.setHostVar(name, "ansible_connection", "ssh", "!!str")
					l.setHostVar(name, "ansible_port", strconv.Itoa(o.sshd.Port), "!!int")
					l.setHostVar(name, "ansible_user", o.sshd.User, "!!str")
					l.setHostVar(name, "ansible_ssh_private_key_file", key, "!!str")
				}
				l.flags = []string{"--known-hosts", o.sshd.WriteKnownHosts(t, l.work)}
				return nil
			},
			load:     true,
			wantExit: 0,
			check: func(t *testing.T, o *outcome) {
				checkFullUpgrade(t, o)
				// Every member was logged into, on its own address.
				log := o.sshd.Log()
				for _, a := range o.lab.addrs {
					if !loggedIn(log, o.sshd.User, a) {
						t.Errorf("sshd logged no login on %s:\n%s", a, log)
					}
				}
			},
		},
		{
			name:  "removed_flag_refused",
			addrs: []string{"127.0.0.94", "127.0.0.95", "127.0.0.96"},
			// One member's start script has a flag etcd 3.7 removed (read
			// on that member); another has it commented out, which is fine.
			// Both members run on: the script is only read at their next start.
			prepare: func(t *testing.T, o *outcome) []string {
				appendLine(t, filepath.Join(o.lab.memberDir("m3"), "start.sh"), ": --experimental-initial-corrupt-check=true")
				appendLine(t, filepath.Join(o.lab.memberDir("m1"), "start.sh"), "# --experimental-initial-corrupt-check=true (gone in 3.7)")
				return nil
			},
			wantExit: 3,
			check: func(t *testing.T, o *outcome) {
				checkRefused(t, o)
				var ends []event.Event
				for _, e := range o.j.of(event.StepEnd, "") {
					if e.Phase == event.Preflight && e.Status == event.Failed {
						ends = append(ends, e)
					}
				}
				want := []string{"item m3 (loop_index 2)", "start.sh line", "--experimental-initial-corrupt-check", "etcd " + toVersion + " refuses"}
				if len(ends) != 1 || ends[0].Step != stepFlags {
					t.Fatalf("failed preflight steps: %+v; want %q alone", ends, stepFlags)
				}
				for _, w := range want {
					if !strings.Contains(ends[0].Error, w) {
						t.Errorf("the refusal %q does not say %q", ends[0].Error, w)
					}
				}
				if strings.Contains(ends[0].Error, "m1") {
					t.Errorf("the refusal %q names m1, whose flag is commented out", ends[0].Error)
				}
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.do(t) })
	}
}

func (sc scenario) do(t *testing.T) {
	l := startLab(t, sc.addrs...)
	o := &outcome{lab: l, before: l.members(), leader: l.leader()}
	for _, name := range memberNames {
		if v := o.before[name].Versions.Server; v != fromVersion {
			t.Fatalf("the new lab's %s runs %s, want %s", name, v, fromVersion)
		}
	}
	var extra []string
	if sc.prepare != nil {
		extra = sc.prepare(t, o)
	}
	var ld *load
	if sc.load {
		ld = l.startLoad()
	}
	if sc.busy {
		stop := burnCPU(runTime)
		defer stop()
	}
	run := sc.run
	if run == nil {
		run = func(t *testing.T, o *outcome, extra []string) {
			o.runs = append(o.runs, o.lab.start(o.lab.execArgs(extra...)...))
		}
	}
	run(t, o, extra)
	last := o.runs[len(o.runs)-1]
	code := last.wait(t)
	if ld != nil {
		r := ld.stop(t)
		noLoss(t, r, o.runs[0].started, last.ended)
	}
	o.j = l.readJournal()
	if code != sc.wantExit {
		t.Fatalf("runbook: exit %d, want %d\n%s\njournal:\n%s", code, sc.wantExit, last, o.j)
	}
	sc.check(t, o)
	if t.Failed() || testing.Verbose() {
		t.Logf("runbook:\n%s", last)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("journal:\n%s", o.j)
	}
}

// firstFollower is the member the upgrade would touch first: the first in
// inventory order that does not lead.
func firstFollower(leader string) string {
	for _, m := range memberNames {
		if m != leader {
			return m
		}
	}
	return ""
}

// checkFullUpgrade: every member on the target, cluster and storage on its
// minor, the same data everywhere, the leader last, and the point of no
// return confirmed for the last member only.
func checkFullUpgrade(t *testing.T, o *outcome) {
	l, j := o.lab, o.j
	after := l.members()
	for _, name := range memberNames {
		v := after[name].Versions
		if v.Server != toVersion || minorOf(v.Cluster) != minorOf(toVersion) || minorOf(v.Storage) != minorOf(toVersion) {
			t.Errorf("%s: GET /version says server %s, cluster %s, storage %s; want %s, %s, %s",
				name, v.Server, v.Cluster, v.Storage, toVersion, minorOf(toVersion), minorOf(toVersion))
		}
	}

	// HashKV at a common revision, by the test itself once the writes
	// stopped, and by the runbook's last step.
	r, err := l.check(&etcdctl.Rules{Consistency: true})
	if err != nil || r.Hash == nil || !r.Hash.Equal {
		t.Errorf("consistency after the upgrade: %v (%+v)", err, r)
	}
	var posts int
	for _, e := range j.of(event.StepEnd, "") {
		if e.Phase != event.Post || e.Step != stepPostAll {
			continue
		}
		posts++
		h, _ := e.Result["hash"].(map[string]any)
		if e.Status != event.OK || h == nil || h["equal"] != true {
			t.Errorf("post step %q: status %s, hash %v", stepPostAll, e.Status, h)
		}
	}
	if posts != 1 {
		t.Errorf("%d ends of post step %q, want 1", posts, stepPostAll)
	}

	// The leader last: the last host started, the only one whose
	// leadership was moved, and the last binary swapped.
	order := j.hostOrder()
	if len(order) != 3 || order[2] != o.leader {
		t.Errorf("hosts upgraded in order %v; the leader before the run was %s and must be last", order, o.leader)
	}
	swapped := []string{}
	for _, e := range j.stepEnds("", stepSwap) {
		if e.Status == event.Changed {
			swapped = append(swapped, e.Host)
		}
		// Staged while the member ran: between stop and start, a rename.
		if e.Result["staged"] != "reused" || e.Result["backup_kept"] != "reused" {
			t.Errorf("%s: the swap did not only rename what was staged: staged %v, backup %v",
				e.Host, e.Result["staged"], e.Result["backup_kept"])
		}
	}
	if !slices.Equal(swapped, order) {
		t.Errorf("binaries swapped on %v, want each host once in order %v", swapped, order)
	}
	for _, e := range j.stepEnds("", stepMove) {
		want := event.Skipped
		if e.Host == o.leader {
			want = event.Changed
		}
		if e.Status != want {
			t.Errorf("%s: %q %s, want %s", e.Host, stepMove, e.Status, want)
		}
	}

	// The point of no return: approved by another process (--yes does not
	// pass it), for the last member only.
	confirms := j.stepEnds("", stepConfirm)
	if len(confirms) != 3 {
		t.Errorf("%d ends of %q, want one per member", len(confirms), stepConfirm)
	}
	for _, e := range confirms {
		last := e.Host == o.leader
		switch {
		case last && (e.Status != event.OK || e.Result["approved"] != true):
			t.Errorf("%s, the last member: %q %s, result %v; want approved", e.Host, stepConfirm, e.Status, e.Result)
		case !last && e.Status != event.Skipped:
			t.Errorf("%s is not the last member on the old minor, yet %q was %s", e.Host, stepConfirm, e.Status)
		}
	}
	if approvals := j.of(event.Approval, o.leader); len(approvals) == 0 || approvals[0].Data["decision"] != "approved" {
		t.Errorf("the approval of %q on %s is not journaled: %v", stepConfirm, o.leader, approvals)
	}
}

// checkRolledBack: the first member's step failed (with an error that
// says wantErr), that member alone was rolled back to the source version,
// the run stopped there, and the cluster is healthy.
func checkRolledBack(t *testing.T, o *outcome, failedStep, wantErr string) {
	l, j := o.lab, o.j
	order := j.hostOrder()
	if len(order) != 1 {
		t.Fatalf("hosts started: %v; the run must stop after the first one failed", order)
	}
	first := order[0]
	if first == o.leader {
		t.Errorf("the first member touched, %s, is the leader", first)
	}
	ends := j.stepEnds(first, failedStep)
	if len(ends) != 1 || ends[0].Status != event.Failed {
		t.Fatalf("%s: ends of %q: %+v, want one, failed", first, failedStep, ends)
	}
	if !strings.Contains(ends[0].Error, wantErr) {
		t.Errorf("%s: %q failed with %q, want it to say %q", first, failedStep, ends[0].Error, wantErr)
	}
	rb := j.of(event.RollbackEnd, first)
	if len(rb) != 1 || rb[0].Status != event.RolledBack {
		t.Errorf("%s: rollback ends %+v, want one, rolled_back", first, rb)
	}

	l.waitHealthy()
	after := l.members()
	if v := after[first].Versions.Server; v != fromVersion {
		t.Errorf("%s runs %s after the rollback, want %s", first, v, fromVersion)
	}
	if after[first].BinSHA != o.before[first].BinSHA {
		t.Errorf("%s's bin/etcd is not the one it had before the run", first)
	}
	for _, name := range memberNames {
		if name == first {
			continue
		}
		if a, b := after[name], o.before[name]; a.PID != b.PID || a.BinSHA != b.BinSHA || a.Versions != b.Versions {
			t.Errorf("%s was touched: before %s; after %s", name, b, a)
		}
	}
}

// checkRefusedSwapBack: the followers were upgraded, the leader's gate
// failed after it started on the target, and its rollback refused to put the
// old binary back, naming the downgrade path instead; every member still
// runs the target, on the new cluster version, healthy.
func checkRefusedSwapBack(t *testing.T, o *outcome) {
	l, j := o.lab, o.j
	order := j.hostOrder()
	if len(order) != 3 || order[2] != o.leader {
		t.Fatalf("hosts started in order %v; the leader before the run was %s and must be last", order, o.leader)
	}
	for _, name := range order[:2] {
		if ends := j.stepEnds(name, stepStable); len(ends) != 1 || ends[0].Status != event.OK {
			t.Errorf("%s: ends of %q: %v, want one, ok", name, stepStable, statuses(ends))
		}
		if rb := j.of(event.RollbackStart, name); len(rb) != 0 {
			t.Errorf("%s, upgraded, was rolled back", name)
		}
	}
	leader := o.leader
	if ends := j.stepEnds(leader, stepRunsNew); len(ends) != 1 || ends[0].Status != event.OK {
		t.Errorf("%s: the member did not run %s before its gate failed: %v", leader, toVersion, statuses(ends))
	}
	ends := j.stepEnds(leader, stepStable)
	if len(ends) != 1 || ends[0].Status != event.Failed || !strings.Contains(ends[0].Error, "etcd_disk_wal_fsync_duration_seconds") {
		t.Fatalf("%s: ends of %q: %+v; want one, failed on the WAL fsync p99", leader, stepStable, ends)
	}

	// The rollback: the refusal is its last step, and failed saying how
	// to downgrade; nothing after it ran, so the binary stayed and the
	// member was not stopped.
	var rbSteps []event.Event
	for _, e := range j.of(event.RollbackStepEnd, leader) {
		if e.Status != event.Skipped {
			rbSteps = append(rbSteps, e)
		}
	}
	if len(rbSteps) == 0 {
		t.Fatalf("%s: no rollback step ran", leader)
	}
	refusal := rbSteps[len(rbSteps)-1]
	wantMsg := "etcdctl downgrade enable " + minorOf(fromVersion)
	if refusal.Step != stepRefuse || refusal.Status != event.Failed || !strings.Contains(refusal.Error, wantMsg) {
		t.Errorf("%s: last rollback step run: %q %s (%q); want %q failed saying %q",
			leader, refusal.Step, refusal.Status, refusal.Error, stepRefuse, wantMsg)
	}
	for _, e := range j {
		// Only the rollback has a step of that name.
		if e.Host == leader && e.Step == stepPutBack {
			t.Errorf("%s: %q reached (%s %s) after the point of no return", leader, stepPutBack, e.Kind, e.Status)
		}
	}
	if rb := j.of(event.RollbackEnd, leader); len(rb) != 1 || rb[0].Status != event.RollbackFailed {
		t.Errorf("%s: rollback ends %v, want one, %s", leader, statuses(rb), event.RollbackFailed)
	}
	// The recap's line for the member, and show, give the downgrade path
	// whole, to its last words.
	recap := leader + `: ROLLBACK FAILED: rollback step "` + stepRefuse + `" failed: ` + leader + ` is past the point of no return`
	path := wantMsg + ", wait until every member reports that storage version"
	if out := o.runs[0].stdout.String(); !strings.Contains(out, recap) || !lineHas(out, recap, path, "or restore ") {
		t.Errorf("the recap does not say %q ... %q in one line", recap, path)
	}
	if show := l.show(j.runID(t)); !lineHas(show, stepRefuse, path, "or restore ") {
		t.Errorf("runbook show does not give the downgrade path whole:\n%s", show)
	}

	l.waitHealthy()
	// Every member runs the target, so the leader raises the cluster version
	// on its own schedule (seconds): the refusal may come before it does.
	after := l.members()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); after = l.members() {
		moved := true
		for _, name := range memberNames {
			moved = moved && minorOf(after[name].Versions.Cluster) == minorOf(toVersion)
		}
		if moved {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	target, err := sha256File(filepath.Join(l.dir, "dist", "etcd-"+toVersion))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range memberNames {
		a := after[name]
		if a.Versions.Server != toVersion || minorOf(a.Versions.Cluster) != minorOf(toVersion) {
			t.Errorf("%s: GET /version says server %s, cluster %s; want %s, %s",
				name, a.Versions.Server, a.Versions.Cluster, toVersion, minorOf(toVersion))
		}
		if a.BinSHA != target {
			t.Errorf("%s's bin/etcd is not etcd %s", name, toVersion)
		}
	}
}

// checkRefused: preflight refused, no host started, and every member's
// process and binary are those of before.
func checkRefused(t *testing.T, o *outcome) {
	l, j := o.lab, o.j
	var failed bool
	for _, e := range j.of(event.StepEnd, "") {
		if e.Phase == event.Preflight && e.Status == event.Failed {
			failed = true
		}
	}
	if !failed {
		t.Errorf("no preflight step failed")
	}
	if hs := j.hostOrder(); len(hs) != 0 {
		t.Errorf("hosts started after a failed preflight: %v", hs)
	}
	after := l.processes()
	for _, name := range memberNames {
		if a, b := after[name], o.before[name]; a.PID != b.PID || a.BinSHA != b.BinSHA {
			t.Errorf("%s was touched: before %s; after %s", name, b, a)
		}
	}
}

// killAndResume kills runbook (SIGKILL) once the second member has started
// on the target, then resumes the run with the same -e.
func killAndResume(t *testing.T, o *outcome, extra []string) {
	l := o.lab
	p := l.start(l.execArgs(extra...)...)
	o.runs = append(o.runs, p)
	l.waitEvent(p, "the second member's start", func(e event.Event) bool {
		return e.Kind == event.StepEnd && e.Phase == event.Steps && e.Batch == 2 && e.Step == stepStart
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != -1 {
		t.Fatalf("runbook ended by itself (exit %d) before it was killed\n%s", code, p)
	}
	// A new run is refused on the half-upgraded cluster, touching nothing
	// (exit 3), and names the run to resume, from the state dir's journals...
	id := l.readJournal().runID(t)
	l.runID = id
	fresh := l.start(l.execArgs(extra...)...)
	fresh.wantExit(t, 3)
	for _, want := range []string{"an upgrade was interrupted", "nothing was touched", "continue it with: runbook resume " + id} {
		if !strings.Contains(fresh.stdout.String(), want) {
			t.Errorf("a new run on the half-upgraded cluster was refused without saying %q\n%s", want, fresh)
		}
	}
	// ...and the killed one is resumed.
	args := append([]string{"resume", id, "--yes", "--state-dir", l.state}, l.extraVars(extra...)...)
	o.runs = append(o.runs, l.start(args...))
}

// checkResumed: the resumed run upgraded every member, each exactly once.
func checkResumed(t *testing.T, o *outcome) {
	l, j := o.lab, o.j
	if n := len(j.of(event.RunResume, "")); n != 1 {
		t.Errorf("%d run_resume events, want 1", n)
	}
	// Both preflights' quiet windows held: the resumed one judged the
	// cluster from a window of its own (after restarts, when the killed
	// run's disturbance showed in it).
	var quiet []event.Event
	for _, e := range j.of(event.StepEnd, "") {
		if e.Phase == event.Preflight && e.Step == stepQuiet {
			quiet = append(quiet, e)
		}
	}
	if len(quiet) != 2 || quiet[1].Status != event.OK {
		t.Errorf("quiet windows: %v, want two, the resumed one ok", statuses(quiet))
	} else {
		for i, e := range quiet {
			t.Logf("quiet window %d: %v window restarts, held for %v, last sample %v", i+1, e.Result["window_restarts"], e.Result["held_for"], e.Result["values"])
		}
	}
	after := l.members()
	for _, name := range memberNames {
		if v := after[name].Versions.Server; v != toVersion {
			t.Errorf("%s runs %s, want %s", name, v, toVersion)
		}
		for _, step := range []string{stepStop, stepSwap, stepStart} {
			ends := j.stepEnds(name, step)
			if len(ends) != 1 || ends[0].Status != event.Changed {
				t.Errorf("%s: ends of %q: %+v; want exactly one, changed", name, step, statuses(ends))
			}
		}
	}
}

func statuses(es []event.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Time.Format(time.StampMilli)+" "+string(e.Status))
	}
	return out
}

// minorOf is "3.7" for "3.7.3"; "" for "".
func minorOf(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// appendLine adds line at the end of the file at path.
func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// loggedIn reports whether sshd's log shows user logging in over a
// connection to addr: its "Connection from H port N on ADDR port P" line,
// then "Accepted publickey for USER from H port N".
func loggedIn(log, user, addr string) bool {
	var ports []string
	for _, line := range strings.Split(log, "\n") {
		var from, port, on string
		if n, _ := fmt.Sscanf(line, "Connection from %s port %s on %s", &from, &port, &on); n == 3 && on == addr {
			ports = append(ports, from+" port "+port+" ")
		}
	}
	for _, p := range ports {
		if strings.Contains(log, "Accepted publickey for "+user+" from "+p) {
			return true
		}
	}
	return false
}

// lineHas reports whether one line of out has every part, in order.
func lineHas(out string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

// burnCPU keeps every CPU of the machine busy, as the rest of a test suite
// may, until the returned stop is called or d has passed.
func burnCPU(d time.Duration) (stop func()) {
	done := make(chan struct{})
	deadline := time.Now().Add(d)
	for range runtime.NumCPU() {
		go func() {
			for time.Now().Before(deadline) {
				select {
				case <-done:
					return
				default:
				}
				n := int64(0)
				for i := range int64(1_000_000) {
					n += i
				}
				spin.Add(n)
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// spin is what burnCPU's loops write, so that the compiler keeps them.
var spin atomic.Int64
