package approval

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: "3.6.16", Members: 1}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// TestEtcdStore: waits and decisions in a real etcd, as two controllers see
// them; a decision is never overwritten, many people at once included.
func TestEtcdStore(t *testing.T) {
	c := lab.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := etcdlab.KeyPrefix(t, "/approvals-test/")
	open := func() *EtcdStore {
		s, err := OpenEtcd(EtcdConfig{Endpoints: c.Endpoints(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	run, other := open(), open()
	r := req(2, false)
	if err := run.Ask(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := other.Requests(ctx, r.RunID)
	if err != nil || len(got) != 1 || got[0].Key() != r.Key() || got[0].StartedBy != "alice" {
		t.Fatalf("Requests from the other controller = %+v, %v", got, err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := other.Decide(ctx, dec(fmt.Sprintf("user%02d", i), true, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v, err := Wait(ctx, run, r, 10*time.Millisecond, func() time.Time { return t0 }, Watch{})
	if err != nil || !v.Approved || len(v.Approvals) != 2 {
		t.Fatalf("Wait = %+v, %v", v, err)
	}
	ds, err := run.Decisions(ctx, r.RunID, r.Key())
	if err != nil || len(ds) != 10 {
		t.Fatalf("Decisions = %d, %v; want all 10", len(ds), err)
	}
	if got, _ := other.Requests(ctx, r.RunID); len(got) != 0 {
		t.Errorf("the wait is still recorded after it ended: %v", got)
	}
}
