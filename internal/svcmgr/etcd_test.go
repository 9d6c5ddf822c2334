package svcmgr

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/etcdlab"
)

// TestPidfileStopEtcdWhenUnlocked stops a real etcd member through the
// pidfile manager with KillWhenUnlocked on its bbolt db, as the etcd
// upgrade does: the member is gone when Stop returns, killed only after it
// released its db or having exited by itself, and it starts again on its
// data, rejoins and serves what was written before.
func TestPidfileStopEtcdWhenUnlocked(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Version: "3.6.16"})
	ctx := testCtx(t)
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A follower: a leader's stop hands leadership over first, which is
	// not what this test is about.
	var m *etcdlab.Member
	for _, mm := range c.Members {
		if mm.Name != leader {
			m = mm
			break
		}
	}
	cli, err := c.Client("")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "written-before", "kept"); err != nil {
		t.Fatal(err)
	}

	pid := m.PID()
	db := filepath.Join(m.DataDir(), "member", "snap", "db")
	s := Service{
		Name:             "etcd",
		Pidfile:          filepath.Join(t.TempDir(), "etcd.pid"),
		StartCmd:         []string{"/bin/false"}, // the lab starts it again, with its own flags
		Wait:             40 * time.Second,
		KillAfter:        30 * time.Second,
		KillWhenUnlocked: db,
	}
	if err := os.WriteFile(s.Pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := pidfile{}.Stop(ctx, local.New(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %s: %+v", m.Name, res)
	if !res.Changed || res.PID != pid || res.Note != "" {
		t.Errorf("Stop = %+v", res)
	}
	// Either way is right: etcd released its db and was killed lingering,
	// or it exited by itself between two checks. The kill-after timer
	// (30s) must not be what ended it.
	if res.Killed && (!res.Unlocked || !strings.HasSuffix(res.KillReason, db+" unlocked")) {
		t.Errorf("killed, but not because %s was unlocked: %+v", db, res)
	}
	if !gone(pid) {
		t.Errorf("pid %d still runs", pid)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the member's db: %v", err)
	}

	if err := c.Restart(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	mc, err := c.Client(m.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	get, err := mc.Get(ctx, "written-before")
	if err != nil {
		t.Fatal(err)
	}
	if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "kept" {
		t.Errorf("after the restart, %s serves %v", m.Name, get.Kvs)
	}
	// A write through the restarted member: it is a voting member again.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := mc.Put(pctx, "written-after", "ok"); err != nil {
		t.Errorf("a write through %s after its restart: %v", m.Name, err)
	}
}
