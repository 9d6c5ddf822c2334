package etcdload

import (
	"context"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// A member stopped and started again shows as one outage of its own,
// closed once it answers, sees the leader and has caught up.
func TestWatchMembers(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Version: etcdVersion})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	got := make(chan []MemberOutages, 1)
	go func() { got <- WatchMembers(wctx, c.Endpoints(), 10*time.Millisecond, 1000) }()

	m2 := c.Member("m2")
	if err := c.Stop("m2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, "m2"); err != nil {
		t.Fatal(err)
	}
	// The watch reads once more when stopped: m2 is back by then.
	stop()
	members := <-got
	for _, m := range members {
		switch {
		case m.Endpoint == m2.ClientURL:
			if len(m.Outages) != 1 || m.Outages[0].To.IsZero() || !m.Outages[0].To.After(m.Outages[0].From) || m.Outages[0].MS <= 0 {
				t.Errorf("m2's outages = %+v, want one, closed", m.Outages)
			}
		case len(m.Outages) != 0:
			t.Errorf("%s was never stopped, but has outages %+v", m.Endpoint, m.Outages)
		}
	}
}
