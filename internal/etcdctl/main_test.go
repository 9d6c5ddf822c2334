package etcdctl

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// labVersion is the etcd the package's tests run against: a 3.6 source, as
// in the flagship 3.6 → 3.7 upgrade.
const labVersion = "3.6.16"

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: labVersion}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// shared returns the package's three-member lab. Tests that stop a member
// must restart it before they end.
func shared(t *testing.T) *etcdlab.Cluster { return lab.Get(t) }

// testCtx bounds a test's requests.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func labConfig(c *etcdlab.Cluster) Config {
	return Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Timeout: 5 * time.Second}
}
