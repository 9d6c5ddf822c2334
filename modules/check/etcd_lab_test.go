package check

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
)

// With wait, the etcd probe reads a real cluster again until its rules pass:
// a member down fails a probe whose wait runs out, and passes one that
// is still waiting when the member is back and caught up.
func TestEtcdWait(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Version: "3.6.16"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &modules.Host{Name: "m1", Log: zerolog.Nop(), Vars: map[string]any{}}
	caught := 10
	probe := func(wait time.Duration) (map[string]any, error) {
		cc := &CheckConfig{Conn: etcdarg.Conn{Endpoints: arg.StringList(c.Endpoints())}, CaughtUp: &caught, Wait: arg.Duration(wait)}
		if err := cc.Validate("etcd."); err != nil {
			t.Fatal(err)
		}
		return cc.Probe(ctx, h)
	}
	if _, err := probe(0); err != nil {
		t.Fatalf("a healthy lab: %v", err)
	}
	if err := c.Stop("m2"); err != nil {
		t.Fatal(err)
	}
	_, err := probe(300 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "member m2") {
		t.Fatalf("with m2 down for longer than the wait: %v, want m2 named", err)
	}
	restarted := make(chan error, 1)
	go func() { restarted <- c.Restart(ctx, "m2") }()
	data, err := probe(time.Minute)
	if err != nil {
		t.Fatalf("the probe waiting while m2 restarts: %v", err)
	}
	if lag, _ := data["lag"].([]any); len(lag) != 1 {
		t.Errorf("lag = %v, want one reading", data["lag"])
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
}

func TestEtcdWaitValidate(t *testing.T) {
	wantErr(t, (&CheckConfig{Wait: arg.Duration(-time.Second)}).Validate("etcd."), "etcd.wait", "must not be negative")
}
