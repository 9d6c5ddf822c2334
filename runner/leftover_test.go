package runner_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/event"
)

// leftoverProc starts a process group of its own running argv, as a killed
// controller leaves its command, and returns its group and start time. It
// is reaped when it ends, so that a dead one is gone, not a zombie.
func leftoverProc(t *testing.T, argv ...string) (pgid int, start uint64, ended <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		t.Skip("needs /proc:", err)
	}
	start, err = conn.ParseStatStart(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, start, done
}

// cutAtProcess returns the journal of r up to its first step_process of
// host's step, with that event naming pgid and start (and started ago), as
// the journal of a controller killed while that command ran.
func cutAtProcess(t *testing.T, r result, host, step string, pgid int, start uint64, ago time.Duration) [][]byte {
	t.Helper()
	lines := bytes.SplitAfter(r.raw, []byte("\n"))
	for i, l := range lines {
		var e map[string]any
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		if e["kind"] != string(event.StepProcess) || e["host"] != host || e["step"] != step {
			continue
		}
		data := e["data"].(map[string]any)
		data["pgid"], data["start"] = pgid, start
		e["time"] = time.Now().Add(-ago).UTC().Format(time.RFC3339Nano)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return append(slices.Clone(lines[:i]), append(b, '\n'))
	}
	t.Fatalf("no step_process of %s %q in\n%s", host, step, r.raw)
	return nil
}

// TestResumeLeftover: a resume deals with the command the killed run left,
// before the step runs again: nothing when it ended; waits for it within
// the step's timeout; kills it when the step has no timeout, or when it
// outlived the timeout. The leftover events say which.
func TestResumeLeftover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout string
		argv    []string      // the leftover command; nil: one that ended
		ago     time.Duration // when it started
		actions []string
		killed  bool
	}{
		{"it ended", "", nil, time.Second, nil, false},
		{"no timeout: killed", "", []string{"sleep", "30"}, time.Second, []string{"kill", "killed"}, true},
		{"outlived the timeout: killed", "timeout: 2s,", []string{"sleep", "30"}, 10 * time.Second, []string{"kill", "killed"}, true},
		{"within the timeout: waited", "timeout: 30s,", []string{"sleep", "1"}, time.Second, []string{"wait", "waited"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rb := fmt.Sprintf(`
runbook: leftover
hosts: h1
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, %s mark: { path: '{{ dir }}/log', text: b } }
`, tt.timeout)
			first := newEnv(t, rb, "")
			full := first.run(runOpts{})
			checkExit(t, full, 0)

			var pgid int
			var start uint64
			var ended <-chan struct{}
			if tt.argv != nil {
				pgid, start, ended = leftoverProc(t, tt.argv...)
			} else {
				pgid, start, ended = leftoverProc(t, "true")
				<-ended
			}
			lines := cutAtProcess(t, full, "h1", "b", pgid, start, tt.ago)
			e, r, _ := resumeCut(t, rb, first.runID, lines)
			checkExit(t, r, 0)
			var actions []string
			for _, ev := range r.events {
				if ev.Kind == event.Leftover {
					actions = append(actions, ev.Action)
					if !strings.Contains(ev.Error, fmt.Sprintf("process group %d on h1", pgid)) {
						t.Errorf("leftover says %q", ev.Error)
					}
				}
			}
			if !slices.Equal(actions, tt.actions) {
				t.Errorf("leftover actions %q, want %q\n%s", actions, tt.actions, r.story())
			}
			if tt.killed {
				select {
				case <-ended:
				case <-time.After(10 * time.Second):
					t.Error("the leftover command still runs")
				}
			}
			if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"b"}) {
				t.Errorf("the resume wrote %q, want step b once", got)
			}
		})
	}
}
