package runlock

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// etcdStore opens a store on the shared lab under a prefix of the test's own,
// and returns the endpoints and prefix for a holding process.
func etcdStore(t *testing.T, ttl time.Duration) (*EtcdStore, string) {
	t.Helper()
	c := lab.Get(t)
	prefix := etcdlab.KeyPrefix(t, "/t/")
	s, err := OpenEtcd(EtcdConfig{Endpoints: c.Endpoints(), Prefix: prefix, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, strings.Join(c.Endpoints(), ",") + " " + prefix
}
func TestEtcdSecondHolderRefusedWithHolder(t *testing.T) {
	ctx := testCtx(t)
	s, _ := etcdStore(t, 5*time.Second)
	a, err := s.Acquire(ctx, []string{HostKey("m1"), HostKey("m2"), NameKey("etcd")}, holder("run-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Acquire(ctx, []string{HostKey("m3"), HostKey("m2")}, holder("run-b"))
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want a *HeldError", err)
	}
	if len(he.Locks) != 1 || he.Locks[0].Key != "host/m2" || he.Locks[0].Holder != holder("run-a") {
		t.Errorf("refusal names %+v, want host/m2 of run-a with its record", he.Locks)
	}
	if !strings.Contains(err.Error(), "run run-a (user alice, on ctl-1 (pid 4242), runbook upgrade-etcd.yml) since 2026-12-07 12:00:00 UTC") {
		t.Errorf("message %q lacks the holder", err)
	}
	locks, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 3 || locks[0].Key != "host/m1" || locks[2].Key != "name/etcd" {
		t.Errorf("List = %+v, want run-a's three locks and nothing of run-b (m3)", locks)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if locks, _ := s.List(ctx); len(locks) != 0 {
		t.Errorf("after release: %+v", locks)
	}
	b, err := s.Acquire(ctx, []string{HostKey("m3"), HostKey("m2")}, holder("run-b"))
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	b.Release()
}

// A controller SIGKILLed while it holds locks: they stay while the lease
// lives (a resume of the same run may take them over, another run may not),
// and are gone once its TTL runs out.
func TestEtcdKilledHolderLeaseExpires(t *testing.T) {
	ctx := testCtx(t)
	const ttl = 3 * time.Second
	s, where := etcdStore(t, ttl)
	h := startHolder(t, "etcd "+where+" "+ttl.String()+" run-dead host/m1 host/m2")
	locks, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 2 || locks[0].Holder.RunID != "run-dead" || locks[0].Holder.PID != h.Process.Pid || locks[0].Holder.Runbook != "held.yml" {
		t.Fatalf("List = %+v, want the holder's two locks with its record", locks)
	}
	kill(t, h)
	killed := time.Now()
	_, err = s.Acquire(ctx, []string{HostKey("m1")}, holder("run-b"))
	if !errors.Is(err, ErrHeld) {
		t.Fatalf("right after the kill: err = %v, want the lease to hold until its TTL", err)
	}
	// Gone within the TTL (counted from the last keep-alive, so at most a TTL
	// after the kill) plus etcd's expiry tick; the bound only stops a broken
	// test, it is not a speed target.
	for {
		locks, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) == 0 {
			break
		}
		if time.Since(killed) > 3*ttl {
			t.Fatalf("locks still held %s after the holder was killed (TTL %s): %+v", time.Since(killed), ttl, locks)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, err := s.Acquire(ctx, []string{HostKey("m1"), HostKey("m2")}, holder("run-b"))
	if err != nil {
		t.Fatalf("after the lease ran out: %v", err)
	}
	b.Release()
}

// A resume of a killed run takes its own locks over at once, before the
// old lease runs out; another run still may not.
func TestEtcdResumeRetakesItsOwnLock(t *testing.T) {
	ctx := testCtx(t)
	s, where := etcdStore(t, 30*time.Second)
	h := startHolder(t, "etcd "+where+" 30s run-r host/m1 name/etcd")
	kill(t, h)
	if _, err := s.Acquire(ctx, []string{HostKey("m1")}, holder("run-other")); !errors.Is(err, ErrHeld) {
		t.Fatalf("another run: err = %v, want refused", err)
	}
	r, err := s.Acquire(ctx, []string{HostKey("m1"), NameKey("etcd")}, holder("run-r"))
	if err != nil {
		t.Fatalf("the run's resume: %v", err)
	}
	locks, _ := s.List(ctx)
	if len(locks) != 2 || locks[0].Holder.PID != 4242 {
		t.Errorf("List = %+v, want the resume's record", locks)
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	// The resume's lease went with the release; the dead process's lease no
	// longer holds a key, so nothing is left behind for 30s.
	if locks, _ := s.List(ctx); len(locks) != 0 {
		t.Errorf("after the resume's release: %+v", locks)
	}
	select {
	case <-r.Lost():
		t.Errorf("a release is not a loss: %v", r.LostReason())
	default:
	}
}

func TestEtcdBreakIsAuditedAndSeenByTheHolder(t *testing.T) {
	ctx := testCtx(t)
	s, _ := etcdStore(t, 10*time.Second)
	a, err := s.Acquire(ctx, []string{HostKey("m1"), HostKey("m2")}, holder("run-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	when := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	broken, err := s.Break(ctx, []string{HostKey("m2")}, Break{Time: when, By: "bob", Controller: "ctl-2", Reason: "controller of run-a is off the network"})
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) != 1 || broken[0].Holder.RunID != "run-a" {
		t.Errorf("broken = %+v", broken)
	}
	select {
	case <-a.Lost():
		if !strings.Contains(a.LostReason().Error(), "host m2 was broken") {
			t.Errorf("lost reason %v", a.LostReason())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the holder did not see its lock broken")
	}
	audit, err := s.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].By != "bob" || audit[0].Reason != "controller of run-a is off the network" ||
		!audit[0].Time.Equal(when) || len(audit[0].Broken) != 1 {
		t.Errorf("audit = %+v", audit)
	}
	b, err := s.Acquire(ctx, []string{HostKey("m2")}, holder("run-b"))
	if err != nil {
		t.Fatalf("after the break: %v", err)
	}
	b.Release()
}

// A holder whose cluster goes away loses its lock once the lease can no
// longer be renewed, and says so: a run drains on that.
func TestEtcdLockLostWhenTheClusterIsGone(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Version: "3.6.16", Members: 1})
	s, err := OpenEtcd(EtcdConfig{Endpoints: c.Endpoints(), TTL: 3 * time.Second, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.Acquire(testCtx(t), []string{HostKey("m1")}, holder("run-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if err := c.Stop(c.Members[0].Name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Lost():
		if !strings.Contains(h.LostReason().Error(), "lease") {
			t.Errorf("lost reason %v", h.LostReason())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the lock was not reported lost a minute after its cluster stopped (TTL 3s)")
	}
}
