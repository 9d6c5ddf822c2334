package nginx

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGoodConfigReachesEveryInstance: the canary, then the two others, each
// reloaded on the new config and serving it.
func TestGoodConfigReachesEveryInstance(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	pids := l.masterPIDs()
	code, out := l.run("good")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	for i := range l.ins {
		l.wantServes(i, "2")
	}
	// A reload keeps the master: nginx was not restarted.
	if got := l.masterPIDs(); !slices.Equal(got, pids) {
		t.Errorf("master pids %v, before the run %v: nginx was restarted, not reloaded", got, pids)
	}
	// The canary ran alone, before the others.
	if !regexp.MustCompile(`(?s)batch 1/2 start: n1\n.*batch 2/2 start: n2, n3`).MatchString(out) {
		t.Errorf("want the canary n1 alone, then n2 and n3:\n%s", out)
	}

	// Pushed again, nothing changes and nothing is reloaded.
	code, out = l.run("good")
	if code != 0 {
		t.Fatalf("second run: exit %d, want 0\n%s", code, out)
	}
	if strings.Contains(out, `"reload nginx and wait for its new workers" start`) {
		t.Errorf("second run reloaded although nginx.conf did not change:\n%s", out)
	}
}

// TestInvalidConfigIsRefusedOnTheCanary: nginx -t refuses the staged file,
// so the canary's nginx.conf is not replaced, nothing is reloaded, and no
// other instance is touched.
func TestInvalidConfigIsRefusedOnTheCanary(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	workers := l.workers()
	code, out := l.run("invalid")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "validate failed") || !strings.Contains(out, `unknown directive "retrun"`) {
		t.Errorf("want the validate failure and nginx's reason in the output:\n%s", out)
	}
	if !strings.Contains(out, "2 not started") {
		t.Errorf("want n2 and n3 not started:\n%s", out)
	}
	for i := range l.ins {
		l.wantConfUntouched(i)
		l.wantServes(i, "1")
	}
	if got := l.workers(); !slices.Equal(got, workers) {
		t.Errorf("workers %v, before the run %v: an instance was reloaded", got, workers)
	}
}

// TestUnhealthyConfigIsRolledBack: a config nginx -t accepts but whose
// health path answers 500 is installed and reloaded on the canary, fails
// the check, and is put back and reloaded; the others are never touched.
func TestUnhealthyConfigIsRolledBack(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	code, out := l.run("unhealthy")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		`status 500 is not 200`,
		`rollback: step 1 "put the previous nginx.conf back" changed`,
		`n1 rollback end: rolled_back`,
		"2 not started",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in the output:\n%s", want, out)
		}
	}
	for i := range l.ins {
		l.wantConfUntouched(i)
		l.wantServes(i, "1")
	}
}

// TestUnloadableConfigIsRolledBack: a config nginx -t accepts but the
// running nginx cannot load (a listen address taken) leaves the old workers
// serving; the reload step sees no new ones and fails, and the canary gets
// its previous file back.
func TestUnloadableConfigIsRolledBack(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	busy, err := net.Listen("tcp", "127.0.0.41:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	src, err := filepath.Abs(filepath.Join("testdata", "nginx-unloadable.conf.j2"))
	if err != nil {
		t.Fatal(err)
	}
	code, out := l.run(src, "-e", "busy_addr="+busy.Addr().String(), "-e", "reload_timeout=3")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"did not load its config within 3s",
		`rollback: step 1 "put the previous nginx.conf back" changed`,
		`n1 rollback end: rolled_back`,
		"2 not started",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in the output:\n%s", want, out)
		}
	}
	for i := range l.ins {
		l.wantConfUntouched(i)
		l.wantServes(i, "1")
	}
}

// TestCheckDiffChangesNothing: --check --diff shows each instance's diff
// and leaves every file and server as it was.
func TestCheckDiffChangesNothing(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	workers := l.workers()
	code, out := l.run("good", "--check", "--diff")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	for _, want := range []string{
		`-            return 200 "version 1\n";`,
		`+            return 200 "version 2\n";`,
	} {
		if n := strings.Count(out, want); n != 3 {
			t.Errorf("want %q once per instance, got %d times:\n%s", want, n, out)
		}
	}
	for i := range l.ins {
		l.wantConfUntouched(i)
		l.wantServes(i, "1")
	}
	if got := l.workers(); !slices.Equal(got, workers) {
		t.Errorf("workers %v, before the run %v: an instance was reloaded", got, workers)
	}
}

func (l *lab) masterPIDs() []int {
	l.t.Helper()
	var out []int
	for _, in := range l.ins {
		pid, err := in.MasterPID()
		if err != nil {
			l.t.Fatal(err)
		}
		out = append(out, pid)
	}
	return out
}

// workers are the processes of every instance's master, which a reload
// replaces.
func (l *lab) workers() []string {
	l.t.Helper()
	var out []string
	for i, pid := range l.masterPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			l.t.Fatal(err)
		}
		out = append(out, l.ins[i].Name+":"+strings.TrimSpace(string(b)))
	}
	return out
}
