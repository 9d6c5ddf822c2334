package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Redis rolling restart with a new config, for real: a primary and two
// replicas of Debian's redis-server started by scripts/redis-lab.sh, the
// runbook and cmd/redis-load as processes. Replicas go first, the primary
// last after a FAILOVER; every write the primary acknowledged during the
// change is still there after it, and every server runs the new config.
func TestRedisRollingRestartUnderLoad(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: run scripts/deps.sh")
	}
	dir := t.TempDir()
	labDir := filepath.Join(dir, "redis-lab")
	const net = "127.0.0.6"
	lab := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "redis-lab.sh"), append(args, labDir)...)
		cmd.Env = cleanEnv("REDIS_LAB_NET="+net, "REDIS_LAB_LIFETIME=600")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-lab.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	lab("up")
	t.Cleanup(func() { lab("down") })

	// The lab inventory, moved to the test's addresses.
	inv, err := os.ReadFile(filepath.Join(repoRoot, "runbooks", "inventory", "redis-lab.yml"))
	if err != nil {
		t.Fatal(err)
	}
	invFile := filepath.Join(dir, "redis-lab.yml")
	if err := os.WriteFile(invFile, bytes.ReplaceAll(inv, []byte("127.0.0.5"), []byte(net)), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := filepath.Join(dir, "stop-load")
	load := exec.CommandContext(ctx, bins.redisLoad, "-addrs", net+"1:6379,"+net+"2:6379,"+net+"3:6379",
		"-rate", "200", "-duration", "2m", "-stop-file", stop)
	var loadOut, loadErr bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadErr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // some writes before the change

	rb := exec.CommandContext(ctx, bins.runbook, "exec", "--yes", "--state-dir", filepath.Join(dir, "state"),
		"-i", invFile, "-e", "redis_lab_dir="+labDir, filepath.Join(repoRoot, "runbooks", "redis-upgrade.yml"))
	rb.Env = cleanEnv()
	out, err := rb.CombinedOutput()
	if err != nil {
		t.Fatalf("runbook exec: %v\n%s", err, out)
	}
	os.WriteFile(stop, nil, 0o644)
	if err := load.Wait(); err != nil {
		t.Fatalf("redis-load: %v\n%s%s", err, loadOut.String(), loadErr.String())
	}
	var rep struct {
		Acked, Failed, Lost int
		Primary             string `json:"primary_at_end"`
	}
	if err := json.Unmarshal(loadOut.Bytes(), &rep); err != nil {
		t.Fatalf("redis-load said %q: %v", loadOut.String(), err)
	}
	t.Logf("writes: %d acknowledged, %d failed, %d lost; primary at the end %s", rep.Acked, rep.Failed, rep.Lost, rep.Primary)
	if rep.Lost != 0 || rep.Acked == 0 {
		t.Errorf("lost %d of %d acknowledged writes", rep.Lost, rep.Acked)
	}
	// The order: the replicas first, the primary (r1) last.
	text := string(out)
	if i2, i3, i1 := strings.Index(text, "r2 step 1/"), strings.Index(text, "r3 step 1/"), strings.Index(text, "r1 step 1/"); i1 < 0 || i2 < 0 || i3 < 0 || i1 < i2 || i1 < i3 {
		t.Errorf("r1, the primary, did not go last:\n%s", text)
	}
	// Roles after: r1 handed its role over and is a replica; one primary.
	status := lab("status")
	if !strings.Contains(status, "r1 "+net+"1:6379 running, slave") || strings.Count(status, "running, master") != 1 {
		t.Errorf("roles after the change:\n%s", status)
	}
	for _, h := range []string{"r1", "r2", "r3"} {
		conf, err := os.ReadFile(filepath.Join(labDir, h, "redis.conf"))
		if err != nil || !bytes.Contains(conf, []byte("maxmemory-policy allkeys-lru")) || !bytes.Contains(conf, []byte("replicaof ")) {
			t.Errorf("%s runs %q (%v)", h, conf, err)
		}
	}
}
