package redisfacts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/redislab"
	"github.com/runbookhq/runbook/modules"
)

func TestFromInfo(t *testing.T) {
	primary := FromInfo("127.0.0.1:7000", ParseInfo("# Replication\r\nrole:master\r\nconnected_slaves:2\r\n"+
		"slave0:ip=127.0.0.1,port=7001,state=online,offset=420,lag=0\r\n"+
		"slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=1\r\nmaster_repl_offset:420\r\n"))
	if primary.Role != "master" || !primary.CaughtUp || primary.Primary != "127.0.0.1:7000" || primary.Offset != 420 ||
		len(primary.Replicas) != 2 || primary.Replicas[1].State != "wait_bgsave" || primary.Replicas[0].Addr != "127.0.0.1:7001" {
		t.Errorf("primary = %+v", primary)
	}
	replica := FromInfo("127.0.0.1:7001", ParseInfo("role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\n"+
		"master_link_status:down\r\nslave_repl_offset:100\r\nmaster_repl_offset:100\r\n"))
	if replica.Role != "replica" || replica.LinkUp || replica.Primary != "127.0.0.1:7000" || replica.Offset != 100 || replica.CaughtUp {
		t.Errorf("replica = %+v", replica)
	}
}

type inv []eval.Host

func (i inv) Group(string) []eval.Host { return i }

// Against real servers: the primary and a replica are told apart, the
// primary's inventory host is found, and a replica whose primary moved on
// while it was cut off is not caught up until it has the writes.
func TestGatherRealRedis(t *testing.T) {
	p, reps := redislab.Start(t, 1)
	r := reps[0]
	hosts := inv{
		{Name: "r1", Addr: "127.0.0.1", Vars: map[string]any{"redis_port": p.Port}},
		{Name: "r2", Addr: "127.0.0.1", Vars: map[string]any{"redis_addr": r.Addr}},
	}
	host := func(i int) *modules.Host {
		return &modules.Host{Name: hosts[i].Name, Addr: hosts[i].Addr, Vars: hosts[i].Vars, Scope: &eval.Scope{Inventory: hosts}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := redislab.Do(p.Addr, "SET", "k", strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	var f Facts
	var err error
	for f.Offset == 0 || !f.CaughtUp {
		if f, err = Gather(ctx, host(1)); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("the replica never caught up: %+v", f)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f.Role != "replica" || !f.LinkUp || f.Primary != p.Addr || f.PrimaryHost != "r1" || f.LagBytes != 0 {
		t.Errorf("replica facts = %+v", f)
	}
	pf, err := Gather(ctx, host(0))
	if err != nil {
		t.Fatal(err)
	}
	if pf.Role != "master" || pf.PrimaryHost != "r1" || pf.ConnectedReplicas != 1 || len(pf.Replicas) != 1 || pf.Replicas[0].Addr != r.Addr {
		t.Errorf("primary facts = %+v", pf)
	}

	// Cut the replica off, write on the primary: the replica is behind.
	if _, err := redislab.Do(r.Addr, "REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := redislab.Do(p.Addr, "SET", "k2", strings.Repeat("y", 5000)); err != nil {
		t.Fatal(err)
	}
	f, err = Gather(ctx, host(1))
	if err != nil {
		t.Fatal(err)
	}
	if f.Role != "master" || f.PrimaryHost != "r2" {
		t.Errorf("a replica made primary = %+v", f)
	}

	// The primary gone: its facts fail, naming the address.
	p.Stop()
	if _, err := Gather(ctx, host(0)); err == nil || !strings.Contains(err.Error(), p.Addr) {
		t.Errorf("gather from a stopped server: %v", err)
	}
}

// A replica whose primary does not answer is never caught up.
func TestReplicaOfAGonePrimaryIsNotCaughtUp(t *testing.T) {
	p, reps := redislab.Start(t, 1)
	p.Stop()
	h := &modules.Host{Name: "r2", Addr: "127.0.0.1", Vars: map[string]any{"redis_addr": reps[0].Addr}}
	f, err := Gather(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if f.CaughtUp || f.PrimaryOffset != -1 {
		t.Errorf("facts = %+v", f)
	}
}
