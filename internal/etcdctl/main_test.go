package etcdctl

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// labVersion is the etcd the package's tests run against: a 3.6 source, as
// in the flagship 3.6 → 3.7 upgrade.
const labVersion = "3.6.16"

var (
	labOnce sync.Once
	lab     *etcdlab.Cluster
	labErr  error
)

// TestMain closes the shared lab, which the first test that needs it starts.
func TestMain(m *testing.M) {
	code := m.Run()
	if lab != nil {
		if err := lab.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// shared returns the package's three-member lab, started once. Tests that
// stop a member must restart it before they end.
func shared(t *testing.T) *etcdlab.Cluster {
	t.Helper()
	if os.Getenv(etcdlab.SkipEnv) == "1" {
		t.Skipf("%s=1: skipping a test that runs a real etcd", etcdlab.SkipEnv)
	}
	labOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		lab, labErr = etcdlab.Start(ctx, etcdlab.Options{Version: labVersion})
	})
	if labErr != nil {
		t.Fatal(labErr)
	}
	return lab
}

// testCtx bounds a test's requests.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func labConfig(c *etcdlab.Cluster) Config {
	return Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Timeout: 5 * time.Second}
}
