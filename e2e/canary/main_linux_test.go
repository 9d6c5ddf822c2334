// Package canary runs runbooks/canary-deploy.yml for real: the runbook CLI
// as a process rolling a new version of cmd/demo-app across four instances
// on loopback, judged by a real Prometheus (internal/promlab, Debian's
// package) that scrapes them every second.
package canary

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// repoRoot is the repository's folder.
var repoRoot = func() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(here)))
}()

// parallelTests is how many tests and subtests here run at once.
const parallelTests = 5

// bins are the commands under test, built once for the test binary.
var bins struct{ runbook, demoApp string }

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	// The tests mostly wait for measurements over windows of seconds; they
	// hardly use the CPU, so they all run at once however many CPUs there
	// are (-parallel defaults to GOMAXPROCS), unless -parallel is given.
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		if err := flag.Set("test.parallel", strconv.Itoa(parallelTests)); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/canary:", err)
			return 1
		}
	}
	dir, err := os.MkdirTemp("", "runbook-e2e-canary-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/canary:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.runbook = filepath.Join(dir, "runbook")
	bins.demoApp = filepath.Join(dir, "demo-app")
	// runbook is built with the race detector when the tests are: a race in
	// the real process then fails the run (exit 66) instead of hiding.
	// demo-app is not under test, and with the race detector twenty of them
	// serving their traffic would starve the machine.
	if err := goBuild(dir, raceEnabled, "./cmd/runbook"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/canary:", err)
		return 1
	}
	if err := goBuild(dir, false, "./cmd/demo-app"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/canary:", err)
		return 1
	}
	return m.Run()
}

// goBuild builds pkgs into dir.
func goBuild(dir string, race bool, pkgs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %v\n%s", pkgs, err, b)
	}
	return nil
}
