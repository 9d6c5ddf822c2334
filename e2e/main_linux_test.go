// Package e2e runs the flagship etcd upgrade for real: runbook and etcd-load
// as processes, against a 3-member lab of real etcd per test, under write load.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The versions of the upgrade; the lab starts on from and runbooks/upgrade-etcd.yml
// defaults to to.
const (
	fromVersion = "3.6.16"
	toVersion   = "3.7.3"
)

// skipEnv, set to 1, skips every test here: they need etcd built from source.
const skipEnv = "RUNBOOK_SKIP_ETCD"

// bins are the commands under test, built once for the test binary.
var bins struct {
	runbook, load, redisLoad string
}

// repoRoot is the repository's folder.
var repoRoot = func() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(here))
}()

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv(skipEnv) == "1" {
		// Every test skips: building the commands would be wasted.
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "runbook-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.runbook = filepath.Join(dir, "runbook")
	bins.load = filepath.Join(dir, "etcd-load")
	// runbook is built with the race detector when the tests are: a race in
	// the real process then fails the run (exit 66) instead of hiding.
	if err := goBuild(bins.runbook, "./cmd/runbook", raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := goBuild(bins.load, "./cmd/etcd-load", false); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bins.redisLoad = filepath.Join(dir, "redis-load")
	if err := goBuild(bins.redisLoad, "./cmd/redis-load", false); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := buildEtcd(); err != nil {
		// Not a skip: the tests must not pass quietly where etcd cannot
		// be built. RUNBOOK_SKIP_ETCD=1 is the way to leave them out.
		fmt.Fprintf(os.Stderr, "e2e: %v\n(set %s=1 to skip the tests that need etcd)\n", err, skipEnv)
		return 1
	}
	return m.Run()
}

func goBuild(out, pkg string, race bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// buildEtcd makes sure both versions are in scripts/etcd-build.sh's cache
// before any test starts its clock: a cold build takes minutes, a cached
// one nothing.
func buildEtcd() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", "etcd-build.sh"), fromVersion, toVersion)
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/etcd-build.sh %s %s: %v\n%s", fromVersion, toVersion, err, out.String())
	}
	return nil
}

// needEtcd skips t when the tests that need etcd are turned off.
func needEtcd(t *testing.T) {
	t.Helper()
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("%s=1", skipEnv)
	}
}

// cleanEnv is this process's environment without the lab's and the demo's
// settings, which a developer may have exported for the dev lab, plus env.
func cleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LAB_") || strings.HasPrefix(kv, "DEMO_") || strings.HasPrefix(kv, "KEEP_DATA=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, env...)
}
