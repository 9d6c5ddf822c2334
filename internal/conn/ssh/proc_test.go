package ssh_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// TestLeftoverAfterLostController: a controller that dies (its connection
// cut) leaves its command running on the host, in the group the transport
// reported when it started. A second connection, as a resume makes, finds
// that group by its id, start time and boot id, tells it from a group that
// merely has the same number, and kills it before it finished.
func TestLeftoverAfterLostController(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	d := newDialer(t, options(t, s))
	resume := dial(t, d, target(s, 0))
	for _, become := range []bool{false, true} {
		t.Run(fmt.Sprintf("become=%t", become), func(t *testing.T) {
			if become {
				needRoot(t)
			}
			dir := t.TempDir()
			finished := filepath.Join(dir, "finished")
			lost := dial(t, d, target(s, 0))
			procs := make(chan conn.Proc, 4)
			ctx := conn.WithProcWatch(ctxT(t), func(p conn.Proc) { procs <- p })
			// Bounded: it ends by itself after 20s if nothing kills it. Its
			// output goes nowhere, as that of a command whose reader died would.
			script := `exec >/dev/null 2>&1; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; touch "$1"`
			ran := make(chan error, 1)
			go func() {
				_, err := lost.Run(ctx, conn.Cmd{Argv: []string{"/bin/sh", "-c", script, "sh", finished}, Become: become})
				ran <- err
			}()
			var p conn.Proc
			select {
			case p = <-procs:
			case <-time.After(20 * time.Second):
				t.Fatal("the transport did not report the command's process group")
			}
			if p.PGID <= 1 || p.Start == 0 || len(p.Boot) != 36 || p.Become != become {
				t.Fatalf("reported %+v", p)
			}
			// The controller dies: its connection is cut, the command runs on.
			lost.Close()
			select {
			case err := <-ran:
				if !conn.IsTransport(err) {
					t.Errorf("Run on the cut connection = %v, want a transport error", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after its connection was closed")
			}
			check := func(p conn.Proc, sig string) string {
				t.Helper()
				out, err := resume.Run(ctxT(t), conn.Cmd{
					Argv:   []string{"/bin/sh", "-c", conn.ProcCheckScript, "sh", strconv.Itoa(p.PGID), strconv.FormatUint(p.Start, 10), p.Boot, sig},
					Become: p.Become, BecomeUser: p.BecomeUser,
				})
				if err != nil {
					t.Fatalf("check: %v (stderr %q)", err, out.Stderr)
				}
				return strings.TrimSpace(string(out.Stdout))
			}
			if got := check(p, "0"); got != "running" {
				t.Fatalf("check after the controller died = %q, want running", got)
			}
			other := p
			other.Start++
			if got := check(other, "0"); got != "gone" {
				t.Errorf("check of a group started at another time = %q, want gone", got)
			}
			other = p
			other.Boot = "00000000-0000-0000-0000-000000000000"
			if got := check(other, "0"); got != "gone" {
				t.Errorf("check of a group of another boot = %q, want gone", got)
			}
			if got := check(p, "TERM"); got != "running" {
				t.Fatalf("TERM = %q", got)
			}
			waitFor(t, 10*time.Second, "the leftover group to end", func() bool { return check(p, "0") == "gone" })
			if _, err := os.Stat(finished); err == nil {
				t.Error("the leftover command ran to its end")
			}
		})
	}
}
