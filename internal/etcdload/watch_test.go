package etcdload

import (
	"context"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// A follower stopped and started again shows as one outage of its own,
// closed once it answers, sees the leader and has caught up. A follower:
// stopping the leader would make the others see no leader for a moment,
// an outage of theirs too.
func TestWatchMembers(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Version: etcdVersion})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	got := make(chan []MemberOutages, 1)
	go func() { got <- WatchMembers(wctx, c.Endpoints(), 10*time.Millisecond, 1000) }()

	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "m2"
	if leader == name {
		name = "m3"
	}
	m2 := c.Member(name)
	if err := c.Stop(name); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, name); err != nil {
		t.Fatal(err)
	}
	// The watch reads once more when stopped: m2 is back by then.
	stop()
	members := <-got
	for _, m := range members {
		switch {
		case m.Endpoint == m2.ClientURL:
			if len(m.Outages) != 1 || m.Outages[0].To.IsZero() || !m.Outages[0].To.After(m.Outages[0].From) || m.Outages[0].MS <= 0 {
				t.Errorf("%s's outages = %+v, want one, closed", name, m.Outages)
			}
		case len(m.Outages) != 0:
			t.Errorf("%s was never stopped, but has outages %+v", m.Endpoint, m.Outages)
		}
	}
}
