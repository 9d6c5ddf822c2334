// Package nginx runs runbooks/nginx-config.yml for real: the runbook CLI as
// a process against three real nginx instances (internal/nginxlab) per
// test, pointed at them through the runbook's inventory contract only.
package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/nginxlab"
)

// repoRoot is the repository's folder.
var repoRoot = func() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(here)))
}()

// runbookBin is the CLI under test, built once for the test binary.
var runbookBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "runbook-e2e-nginx-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/nginx:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	runbookBin = filepath.Join(dir, "runbook")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", runbookBin}
	if raceEnabled {
		// A race in the real process then fails the run (exit 66).
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/runbook")...)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/nginx: go build ./cmd/runbook: %v\n%s", err, b)
		return 1
	}
	return m.Run()
}

// lab is three nginx instances on version 1 and an inventory of them.
type lab struct {
	t     *testing.T
	ins   []*nginxlab.Instance
	inv   string
	state string
	// confs are the instances' nginx.conf as the lab started them.
	confs [][]byte
}

func startLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{t: t, ins: nginxlab.Start(t, 3, "1")}
	dir := t.TempDir()
	l.inv = filepath.Join(dir, "inventory.yml")
	l.state = filepath.Join(dir, "state")
	if err := os.WriteFile(l.inv, []byte(nginxlab.Inventory(l.ins)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range l.ins {
		b, err := os.ReadFile(in.Conf)
		if err != nil {
			t.Fatal(err)
		}
		l.confs = append(l.confs, b)
	}
	return l
}

// template is a template of runbooks/templates by its variant, or the
// file variant when it is an absolute path.
func template(variant string) string {
	if filepath.IsAbs(variant) {
		return variant
	}
	return filepath.Join(repoRoot, "runbooks", "templates", "nginx-lab-"+variant+".conf.j2")
}

// run runs the nginx runbook on the lab with the template of variant,
// version 2 and the lab's health path, plus args, and returns its exit
// code and output.
func (l *lab) run(variant string, args ...string) (int, string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := append([]string{"exec", filepath.Join(repoRoot, "runbooks", "nginx-config.yml"),
		"-i", l.inv, "--yes", "--state-dir", l.state,
		"-e", "conf_template=" + template(variant), "-e", "health_path=/healthz", "-e", "version=2"}, args...)
	cmd := exec.CommandContext(ctx, runbookBin, all...)
	cmd.Dir = l.t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String()
	}
	l.t.Fatalf("runbook %s: %v\n%s", strings.Join(all, " "), err, out.String())
	return -1, ""
}

// wantServes fails the test unless instance i serves version and a
// healthy health path.
func (l *lab) wantServes(i int, version string) {
	l.t.Helper()
	in := l.ins[i]
	status, body, err := in.Get("/")
	if err != nil || status != 200 || body != "version "+version+"\n" {
		l.t.Errorf("%s serves %d %q (%v), want version %s", in.Name, status, body, err, version)
	}
	if status, body, err := in.Get("/healthz"); err != nil || status != 200 {
		l.t.Errorf("%s /healthz = %d %q (%v), want 200", in.Name, status, body, err)
	}
}

// wantConfUntouched fails the test unless instance i's nginx.conf has the
// bytes the lab started it with.
func (l *lab) wantConfUntouched(i int) {
	l.t.Helper()
	b, err := os.ReadFile(l.ins[i].Conf)
	if err != nil {
		l.t.Fatal(err)
	}
	if !bytes.Equal(b, l.confs[i]) {
		l.t.Errorf("%s: nginx.conf changed:\n%s", l.ins[i].Name, b)
	}
}
