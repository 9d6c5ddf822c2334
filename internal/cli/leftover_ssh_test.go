package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// A controller killed (SIGKILL) while its command runs over SSH leaves the
// command running on the host; the resume finds it by the process group
// the journal recorded, kills it (the step has no timeout to wait within),
// says so, and only then runs the step again: never two copies at once.
func TestResumeOverSSHKillsLeftover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the runbook binary")
	}
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	dir := t.TempDir()
	bin := filepath.Join(dir, "runbook")
	build := exec.Command("go", "build", "-o", bin, "github.com/runbookhq/runbook/cmd/runbook")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	inv := writeTestFile(t, dir, "inv.yml", fmt.Sprintf(
		"all:\n  hosts:\n    h1: { ansible_connection: ssh, ansible_host: %s, ansible_port: %d }\n", s.Addrs[0], s.Port))
	// running.d exists while a copy runs; a second copy at once writes
	// overlap. The loop ends by itself after 60s if nothing kills it.
	rb := writeTestFile(t, dir, "rb.yml", fmt.Sprintf(`runbook: leftover-ssh
hosts: all
steps:
  - name: long
    shell: |
      cd %s && exec >>cmd.log 2>&1
      mkdir running.d || echo overlap >> overlap
      trap 'rmdir running.d; touch killed; exit 143' TERM
      i=0; while [ ! -f gate ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
      echo ran >> finished
      rmdir running.d
      [ -f gate ]
`, work))
	state := filepath.Join(dir, "state")
	flags := []string{"--yes", "--state-dir", state, "--ssh-config", os.DevNull,
		"--known-hosts", filepath.Join(dir, "known_hosts"), "--accept-new-host-keys",
		"--private-key", s.ClientKeyFile, "--connect-timeout", "20s"}

	var out bytes.Buffer
	ctl := exec.Command(bin, append([]string{"exec", rb, "-i", inv}, flags...)...)
	ctl.Stdout, ctl.Stderr = &out, &out
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	runID := waitJournal(t, state, func(e journalLine) bool { return e.Kind == "step_process" && e.Host == "h1" })
	if err := ctl.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = ctl.Wait()

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"resume", runID}, flags...), strings.NewReader(""), &stdout, &stderr)
		done <- result{code, stdout.String(), stderr.String()}
	}()
	waitJournal(t, state, func(e journalLine) bool { return e.Kind == "leftover" && e.Data.Action == "killed" })
	if err := os.WriteFile(filepath.Join(work, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the resume did not end")
	}
	if r.code != exitcode.OK {
		t.Fatalf("resume exit %d:\n%s\n%s\nfirst part:\n%s", r.code, r.stdout, r.stderr, out.String())
	}
	for _, want := range []string{"leftover kill: killing the command the stopped run started", "on h1): the step has no timeout", "leftover killed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the resume does not say %q:\n%s", want, r.stdout)
		}
	}
	for name, want := range map[string]bool{"overlap": false, "killed": true, "finished": true, "running.d": false} {
		if _, err := os.Stat(filepath.Join(work, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(work, "finished")); string(b) != "ran\n" {
		t.Errorf("finished = %q, want one run to its end", b)
	}
}

type journalLine struct {
	RunID string `json:"run_id"`
	Kind  string `json:"kind"`
	Host  string `json:"host"`
	Data  struct {
		Action string `json:"action"`
	} `json:"data"`
}

// waitJournal waits (at most 60s) for an event of the only journal under
// state that match accepts, and returns the run's id.
func waitJournal(t *testing.T, state string, match func(journalLine) bool) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(state, "runs", "*.jsonl"))
		if len(files) == 1 {
			if f, err := os.Open(files[0]); err == nil {
				sc := bufio.NewScanner(f)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					var e journalLine
					if json.Unmarshal(sc.Bytes(), &e) == nil && match(e) {
						f.Close()
						return e.RunID
					}
				}
				f.Close()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no matching event in the journal under %s within 60s", state)
	return ""
}
