package etcdlab

import (
	"context"
	"testing"
	"time"
)

// TestLab starts a three-member lab, stops the leader, and restarts it: the
// lab a test gets is its own, ready, and survives a member's restart.
func TestLab(t *testing.T) {
	c := New(t, Options{Version: "3.6.16"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if c.ClusterID == 0 {
		t.Fatal("no cluster ID after start")
	}
	for i, m := range c.Members {
		if m.ID == 0 || m.Addr != []string{"127.0.0.21", "127.0.0.22", "127.0.0.23"}[i] {
			t.Errorf("member %s: id %x addr %s", m.Name, m.ID, m.Addr)
		}
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(leader); err != nil {
		t.Fatal(err)
	}
	if c.Member(leader).Running() {
		t.Fatalf("%s still runs after Stop", leader)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("two members left: %v", err)
	}
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	if !c.Member(leader).Running() {
		t.Fatalf("%s does not run after Restart", leader)
	}
}

func TestOptionsRefused(t *testing.T) {
	if _, err := start(context.Background(), "/nonexistent", Options{Members: 12}); err == nil {
		t.Error("a lab of 12 members started")
	}
}
