package etcdload

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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

func TestExplain(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "m1.log")
	lines := `{"level":"info","ts":"2026-11-24T12:00:01.900Z","msg":"received signal; shutting down","signal":"terminated"}
{"level":"info","ts":"2026-11-24T12:00:01.950Z","msg":"applied entries","index":3}
not json
{"level":"warn","ts":"2026-11-24T12:00:09.000Z","msg":"much later"}
`
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	r := &Report{
		Failures:   []Failure{{Seq: 3, Started: at("2026-11-24T12:00:02Z"), LatencyMS: 2000, Error: "context deadline exceeded"}},
		SlowWrites: []Failure{{Seq: 4, Started: at("2026-11-24T12:00:02.1Z"), LatencyMS: 150}},
		Members: []MemberOutages{{Endpoint: "http://127.0.0.11:2379", Outages: []Outage{
			{From: at("2026-11-24T12:00:01.9Z"), To: at("2026-11-24T12:00:03Z"), MS: 1100, Seen: "no answer"}}}},
	}
	var out bytes.Buffer
	if err := Explain(r, []string{"m1=" + log}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"12:00:02.000 – 12:00:04.000: 1 failed, 1 slow writes (slowest 2000 ms); 1× context deadline exceeded",
		"12:00:01.900 m1 info: received signal; shutting down signal=terminated",
		"outage of http://127.0.0.11:2379: 12:00:01.900 – 12:00:03.000 (1100 ms), first seen: no answer",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explanation:\n%s\nwant a line with %q", out.String(), want)
		}
	}
	for _, not := range []string{"applied entries", "much later"} {
		if strings.Contains(out.String(), not) {
			t.Errorf("explanation:\n%s\nshows %q", out.String(), not)
		}
	}
	if err := Explain(r, []string{"m1"}, &out); err == nil {
		t.Error("a log without its member's name was taken")
	}
}
