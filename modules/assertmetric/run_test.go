package assertmetric

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// fakeClock moves only when the gate sleeps, so for and within run at once
// and every sample falls exactly on its tick.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testHost(t *testing.T) *modules.Host {
	return &modules.Host{Name: "etcd-1", Addr: "127.0.0.1", Log: zerolog.Nop(), RunbookDir: t.TempDir(),
		Vars: map[string]any{"max_changes": 1}}
}

// compiled is expect as the loader leaves it: compiled at rb.yml:7:13 with
// the module's names in scope.
func compiled(t *testing.T, src string) arg.Expr {
	t.Helper()
	p, ds := eval.Compile(src, diag.Pos{File: "rb.yml", Line: 7, Col: 13},
		&eval.Env{Result: true, Vars: map[string]any{"max_changes": 0}, Extra: new(Module).ExprNames("expect")}, eval.Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	return arg.Expr{Src: src, Pos: p.Pos, Program: p}
}

// member is the state of an etcd member that the hand-written pages show;
// the shape of the text follows a real member's /metrics.
type member struct {
	hasLeader     int
	leaderChanges int
	start         float64 // process_start_time_seconds; 0 leaves it out
	fsync         [6]int  // WAL fsync buckets, cumulative: 1, 2, 4, 8, 16 ms, +Inf
	unavailable   int     // gRPC calls answered Unavailable; 0 leaves the series out, as etcd does
}

// healthy is a member with a leader and 100 WAL fsyncs, most under 4 ms.
var healthy = member{hasLeader: 1, leaderChanges: 1, start: 1.7954906886e+09, fsync: [6]int{10, 40, 90, 98, 100, 100}}

func (m member) page() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.
# TYPE etcd_server_has_leader gauge
etcd_server_has_leader %d
# HELP etcd_server_leader_changes_seen_total The number of leader changes seen.
# TYPE etcd_server_leader_changes_seen_total counter
etcd_server_leader_changes_seen_total %d
# HELP etcd_network_active_peers The current number of active peer connections.
# TYPE etcd_network_active_peers gauge
etcd_network_active_peers{Local="8e9e05c52164694d",Remote="91bc3c398fb3c146"} 1
etcd_network_active_peers{Local="8e9e05c52164694d",Remote="fd422379fda50e48"} 1
# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
`, m.hasLeader, m.leaderChanges)
	for i, le := range []string{"0.001", "0.002", "0.004", "0.008", "0.016", "+Inf"} {
		fmt.Fprintf(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=%q} %d\n", le, m.fsync[i])
	}
	fmt.Fprintf(&b, "etcd_disk_wal_fsync_duration_seconds_sum %g\netcd_disk_wal_fsync_duration_seconds_count %d\n", float64(m.fsync[5])*0.003, m.fsync[5])
	// Peer 91bc…: 5 round trips up to 1 ms, 5 more up to 2 ms. Peer fd42…:
	// 6 up to 2 ms, 4 slower.
	b.WriteString(`# HELP etcd_network_peer_round_trip_time_seconds Round-Trip-Time histogram between peers
# TYPE etcd_network_peer_round_trip_time_seconds histogram
etcd_network_peer_round_trip_time_seconds_bucket{To="91bc3c398fb3c146",le="0.001"} 5
etcd_network_peer_round_trip_time_seconds_bucket{To="91bc3c398fb3c146",le="0.002"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="91bc3c398fb3c146",le="+Inf"} 10
etcd_network_peer_round_trip_time_seconds_sum{To="91bc3c398fb3c146"} 0.012
etcd_network_peer_round_trip_time_seconds_count{To="91bc3c398fb3c146"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="fd422379fda50e48",le="0.001"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="fd422379fda50e48",le="0.002"} 6
etcd_network_peer_round_trip_time_seconds_bucket{To="fd422379fda50e48",le="+Inf"} 10
etcd_network_peer_round_trip_time_seconds_sum{To="fd422379fda50e48"} 0.04
etcd_network_peer_round_trip_time_seconds_count{To="fd422379fda50e48"} 10
# HELP etcd_snap_db_fsync_duration_seconds The latency distributions of fsync called by snap.
# TYPE etcd_snap_db_fsync_duration_seconds histogram
etcd_snap_db_fsync_duration_seconds_bucket{le="0.001"} 0
etcd_snap_db_fsync_duration_seconds_bucket{le="+Inf"} 0
etcd_snap_db_fsync_duration_seconds_sum 0
etcd_snap_db_fsync_duration_seconds_count 0
# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 20
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 7
`)
	if m.unavailable > 0 {
		fmt.Fprintf(&b, "grpc_server_handled_total{grpc_code=\"Unavailable\",grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} %d\n", m.unavailable)
	}
	b.WriteString(`# HELP etcd_debugging_rpc_seconds A summary, for quantile's message.
# TYPE etcd_debugging_rpc_seconds summary
etcd_debugging_rpc_seconds{quantile="0.99"} 0.02
etcd_debugging_rpc_seconds_sum 1
etcd_debugging_rpc_seconds_count 100
`)
	if m.start != 0 {
		fmt.Fprintf(&b, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %g\n", m.start)
	}
	return b.String()
}

// endpoint serves pages in turn, one per scrape, the last one from then on.
type endpoint struct {
	url     string
	scrapes atomic.Int32
}

func serve(t *testing.T, contentType string, pages ...string) *endpoint {
	t.Helper()
	e := &endpoint{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(e.scrapes.Add(1)) - 1
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, pages[min(n, len(pages)-1)])
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL + "/metrics"
	return e
}

const textFormat = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

func pages(ms ...member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.page()
	}
	return out
}

// roundTrip returns data as the journal gives it back after a resume.
func roundTrip(t *testing.T, data map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatalf("result data is not JSON-safe: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// read returns what expect read as key at url, as the journal keeps it.
func readAt(t *testing.T, data map[string]any, url, key string) any {
	t.Helper()
	values, _ := data["values"].(map[string]any)
	at, _ := values[url].(map[string]any)
	v, ok := at[key]
	if !ok {
		t.Fatalf("values at %s have no %s: %v", url, key, at)
	}
	return v
}

func near(t *testing.T, what string, got any, want float64) {
	t.Helper()
	f, ok := got.(float64)
	if !ok || math.Abs(f-want) > 1e-12 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func withLeader(m member, hasLeader int) member {
	m.hasLeader = hasLeader
	return m
}

// leaderChanges is healthy with each of the counts of leader changes, a page each.
func leaderChanges(counts ...int) []member {
	out := make([]member, len(counts))
	for i, c := range counts {
		out[i] = with(healthy, func(m *member) { m.leaderChanges = c })
	}
	return out
}

func with(m member, f func(*member)) member {
	f(&m)
	return m
}

// TestRun runs the gate against one endpoint serving a page per scrape.
func TestRun(t *testing.T) {
	restarted := with(healthy, func(m *member) { m.start += 3600; m.leaderChanges = 1 })
	tests := []struct {
		name        string
		m           Module // URL is set to the endpoint's
		pages       []string
		contentType string
		wantErr     []string // parts of the error, in order; {URL} is the endpoint
		wantSamples int
		check       func(t *testing.T, url string, data map[string]any)
	}{
		{name: "metric without labels", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`)},
			pages: pages(healthy), wantSamples: 1,
			check: func(t *testing.T, url string, data map[string]any) {
				near(t, "has_leader", readAt(t, data, url, "etcd_server_has_leader"), 1)
				if data["held"] != true || data["url"] != url || data["held_after"] != "0s" {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "metric with labels", m: Module{Expect: compiled(t, `metric("etcd_network_active_peers", {"Remote": "fd422379fda50e48"}) == 1`)},
			pages: pages(healthy), wantSamples: 1,
			check: func(t *testing.T, url string, data map[string]any) {
				near(t, "peer", readAt(t, data, url, `etcd_network_active_peers{Local="8e9e05c52164694d",Remote="fd422379fda50e48"}`), 1)
			}},
		{name: "false", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1 && metric("etcd_server_leader_changes_seen_total") <= max_changes`)},
			pages: pages(withLeader(healthy, 0)), wantSamples: 1,
			wantErr: []string{"rb.yml:7:13: expect does not hold: at {URL}: metric(\"etcd_server_has_leader\") == 1: was 0"},
			check: func(t *testing.T, url string, data map[string]any) {
				if data["held"] != false {
					t.Errorf("held = %v", data["held"])
				}
			}},
		{name: "the step's vars", m: Module{Expect: compiled(t, `metric("etcd_server_leader_changes_seen_total") <= max_changes`)},
			pages: pages(with(healthy, func(m *member) { m.leaderChanges = 2 })), wantSamples: 1,
			wantErr: []string{"does not hold: at {URL}: metric(\"etcd_server_leader_changes_seen_total\") <= max_changes: was 2 <= 1"}},
		{name: "several series", m: Module{Expect: compiled(t, `metric("etcd_network_active_peers") == 1`)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{`at {URL}: metric etcd_network_active_peers has 2 series, and metric() reads one: add labels to pick it ({Local="8e9e05c52164694d",Remote="91bc3c398fb3c146"}, {Local="8e9e05c52164694d",Remote="fd422379fda50e48"}), or use sum or series`}},
		{name: "labels that match nothing", m: Module{Expect: compiled(t, `metric("etcd_network_active_peers", {"Remote": "0000"}) == 1`)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{`metric etcd_network_active_peers has no series with labels {Remote="0000"}; it has {Local=`}},
		{name: "missing metric", m: Module{Expect: compiled(t, `metric("etcd_server_has_leadr") == 1`)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{"rb.yml:7:13: expect does not hold: at {URL}: metric etcd_server_has_leadr is missing; did you mean \"etcd_server_has_leader\"?"}},
		{name: "a histogram read as a metric", m: Module{Expect: compiled(t, `metric("etcd_disk_wal_fsync_duration_seconds") < 1`)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{`metric etcd_disk_wal_fsync_duration_seconds is missing; etcd_disk_wal_fsync_duration_seconds is a histogram: read it with quantile(q, "etcd_disk_wal_fsync_duration_seconds")`}},
		{name: "has_metric guards a missing metric", m: Module{Expect: compiled(t, `!has_metric("etcd_server_slow_apply_total") || metric("etcd_server_slow_apply_total") == 0`)},
			pages: pages(healthy), wantSamples: 1,
			check: func(t *testing.T, url string, data map[string]any) {
				if v := readAt(t, data, url, "has_metric(etcd_server_slow_apply_total)"); v != false {
					t.Errorf("has_metric = %v", v)
				}
			}},
		{name: "has_metric knows a histogram by its name and labels", m: Module{Expect: compiled(t,
			`has_metric("etcd_network_peer_round_trip_time_seconds", {"To": "fd422379fda50e48"}) && !has_metric("etcd_network_peer_round_trip_time_seconds", {"To": "0"})`)},
			pages: pages(healthy), wantSamples: 1},
		{name: "sum and count over labels that match nothing yet", m: Module{Expect: compiled(t,
			`sum("grpc_server_handled_total", {"grpc_code": "Unavailable"}) == 0 && count("grpc_server_handled_total", {"grpc_code": "Unavailable"}) == 0 && count("grpc_server_handled_total") == 2 && sum("grpc_server_handled_total") == 27`)},
			pages: pages(healthy), wantSamples: 1,
			check: func(t *testing.T, url string, data map[string]any) {
				near(t, "sum", readAt(t, data, url, `sum(grpc_server_handled_total{grpc_code="Unavailable"})`), 0)
				near(t, "count", readAt(t, data, url, `count(grpc_server_handled_total)`), 2)
			}},
		{name: "series", m: Module{Expect: compiled(t, `all(series("etcd_network_active_peers"), .value == 1 && .labels.Local == "8e9e05c52164694d") && len(series("etcd_network_active_peers")) == 2`)},
			pages: pages(healthy), wantSamples: 1},
		{name: "quantile", m: Module{Expect: compiled(t, `quantile(0.5, "etcd_disk_wal_fsync_duration_seconds") < 0.003 && quantile(0.99, "etcd_disk_wal_fsync_duration_seconds_bucket") < 0.013`)},
			pages: pages(healthy), wantSamples: 1,
			check: func(t *testing.T, url string, data map[string]any) {
				// rank 50 of 100 is the 10th of 50 in (2, 4] ms; rank 99 the 1st of 2 in (8, 16] ms.
				near(t, "p50", readAt(t, data, url, "quantile(0.5, etcd_disk_wal_fsync_duration_seconds)"), 0.002+0.002*10/50)
				near(t, "p99", readAt(t, data, url, "quantile(0.99, etcd_disk_wal_fsync_duration_seconds)"), 0.008+0.008*1/2)
			}},
		{name: "quantile adds the buckets of the matching histograms", m: Module{Expect: compiled(t,
			`quantile(0.5, "etcd_network_peer_round_trip_time_seconds") < 0.15 && quantile(0.5, "etcd_network_peer_round_trip_time_seconds", {"To": "fd422379fda50e48"}) < 0.15`)},
			pages: pages(healthy), wantSamples: 1,
			check: func(t *testing.T, url string, data map[string]any) {
				// Both peers: 5 ≤ 1 ms, 16 ≤ 2 ms, 20 in all; rank 10 is the 5th of 11 in (1, 2] ms.
				near(t, "p50 of both", readAt(t, data, url, "quantile(0.5, etcd_network_peer_round_trip_time_seconds)"), 0.001+0.001*5/11)
				// fd42… alone: rank 5 is the 5th of 6 in (1, 2] ms.
				near(t, "p50 of one", readAt(t, data, url, `quantile(0.5, etcd_network_peer_round_trip_time_seconds{To="fd422379fda50e48"})`), 0.001+0.001*5/6)
			}},
		{name: "a quantile without observations is NaN, and compares false", m: Module{Expect: compiled(t, `quantile(0.99, "etcd_snap_db_fsync_duration_seconds") < 1`)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{"does not hold: at {URL}: quantile(0.99, \"etcd_snap_db_fsync_duration_seconds\") < 1: was NaN (no observations)"},
			check: func(t *testing.T, url string, data map[string]any) {
				if v := readAt(t, data, url, "quantile(0.99, etcd_snap_db_fsync_duration_seconds)"); v != "NaN" {
					t.Errorf("NaN in the result = %v", v)
				}
			}},
		{name: "missing histogram", m: Module{Expect: compiled(t, `quantile(0.99, "etcd_disk_wal_fsync_duration_second") < 1`)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{`histogram etcd_disk_wal_fsync_duration_second is missing; did you mean "etcd_disk_wal_fsync_duration_seconds"?`}},
		// A call that can never succeed ends the gate at once, within or not.
		{name: "quantile of a summary", m: Module{Expect: compiled(t, `quantile(0.99, "etcd_debugging_rpc_seconds") < 1`), Within: arg.Duration(time.Minute)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{"cannot be evaluated: at {URL}: quantile: etcd_debugging_rpc_seconds is a summary, not a histogram; a summary exports its quantiles: metric(\"etcd_debugging_rpc_seconds\", {\"quantile\": \"0.99\"})"}},
		{name: "q out of range", m: Module{Expect: compiled(t, `quantile(99, "etcd_disk_wal_fsync_duration_seconds") < 1`), Within: arg.Duration(time.Minute)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{"cannot be evaluated: at {URL}: quantile: q must be from 0 to 1 (0.99 for the 99th percentile), got 99"}},
		{name: "label value that is not a string", m: Module{Expect: compiled(t, `metric("etcd_network_active_peers", {"Remote": 1}) == 1`), Within: arg.Duration(time.Minute)},
			pages: pages(healthy), wantSamples: 1,
			wantErr: []string{`metric: label Remote must be a string, got 1 (int); quote it: {"Remote": "1"}`}},

		{name: "for holds on every sample", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), For: arg.Duration(3 * time.Second)},
			pages: pages(healthy), wantSamples: 4,
			check: func(t *testing.T, url string, data map[string]any) {
				if data["held_for"] != "3s" || data["took"] != "3s" || data["held"] != true {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "for fails when a sample drops", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), For: arg.Duration(20 * time.Second)},
			pages: pages(healthy, healthy, withLeader(healthy, 0), healthy), wantSamples: 3,
			wantErr: []string{"rb.yml:7:13: expect stopped holding after 2s of the 20s it must hold (sample 3): at {URL}: metric(\"etcd_server_has_leader\") == 1: was 0"},
			check: func(t *testing.T, url string, data map[string]any) {
				if data["held"] != false || data["held_for"] != "2s" || data["took"] != "2s" {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "for fails at once", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), For: arg.Duration(20 * time.Second)},
			pages: pages(withLeader(healthy, 0)), wantSamples: 1,
			wantErr: []string{"does not hold at the first sample it judges (it must hold for 20s): at {URL}: metric(\"etcd_server_has_leader\") == 1: was 0"}},
		{name: "within holds at the 3rd scrape", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), Within: arg.Duration(10 * time.Second)},
			pages: pages(withLeader(healthy, 0), withLeader(healthy, 0), healthy), wantSamples: 3,
			check: func(t *testing.T, url string, data map[string]any) {
				if data["held_after"] != "2s" || data["held"] != true {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "within waits out a scrape that fails", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), Within: arg.Duration(10 * time.Second)},
			pages: []string{"not a metrics page {", healthy.page()}, wantSamples: 2},
		{name: "within runs out", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), Within: arg.Duration(5 * time.Second), Interval: arg.Duration(2 * time.Second)},
			pages: pages(withLeader(healthy, 0)), wantSamples: 4, // at 0, 2, 4 and 5 s
			wantErr: []string{"did not hold within 5s (4 samples): at {URL}: metric(\"etcd_server_has_leader\") == 1: was 0"},
			check: func(t *testing.T, url string, data map[string]any) {
				if data["took"] != "5s" {
					t.Errorf("took = %v, want the whole 5s", data["took"])
				}
			}},
		{name: "within, then for", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), Within: arg.Duration(10 * time.Second), For: arg.Duration(2 * time.Second)},
			pages: pages(withLeader(healthy, 0), healthy), wantSamples: 4, // 0 false, 1 held, 2, 3
			check: func(t *testing.T, url string, data map[string]any) {
				if data["held_after"] != "1s" || data["held_for"] != "2s" || data["took"] != "3s" {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "within, then for that drops", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), Within: arg.Duration(10 * time.Second), For: arg.Duration(5 * time.Second)},
			pages: pages(withLeader(healthy, 0), healthy, withLeader(healthy, 0)), wantSamples: 3,
			wantErr: []string{"stopped holding after 1s of the 5s it must hold (sample 3)"}},

		// leader changes 3, 4, then a restart at 1: 1 + 1 since the baseline.
		{name: "delta across a restart", m: Module{Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") <= 2`), For: arg.Duration(2 * time.Second)},
			pages:       pages(with(healthy, func(m *member) { m.leaderChanges = 3 }), with(healthy, func(m *member) { m.leaderChanges = 4 }), restarted),
			wantSamples: 3, // the baseline at 0, judged at 1 and 2 s
			check: func(t *testing.T, url string, data map[string]any) {
				near(t, "delta", readAt(t, data, url, "delta(etcd_server_leader_changes_seen_total)"), 2)
				if data["held_for"] != "2s" {
					t.Errorf("held_for = %v, want the whole window from the baseline", data["held_for"])
				}
			}},
		{name: "delta across a restart too high", m: Module{Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") <= 1`), For: arg.Duration(5 * time.Second)},
			pages:       pages(with(healthy, func(m *member) { m.leaderChanges = 3 }), with(healthy, func(m *member) { m.leaderChanges = 4 }), restarted),
			wantSamples: 3,
			wantErr:     []string{"stopped holding after 2s of the 5s it must hold (sample 3): at {URL}: delta(\"etcd_server_leader_changes_seen_total\") <= 1: was 2"}},
		{name: "delta of counters that appear", m: Module{Expect: compiled(t, `delta("grpc_server_handled_total", {"grpc_code": "Unavailable"}) == 0`), For: arg.Duration(5 * time.Second)},
			pages: pages(healthy, healthy, with(healthy, func(m *member) { m.unavailable = 3 })), wantSamples: 3,
			wantErr: []string{`delta("grpc_server_handled_total", {grpc_code: "Unavailable"}) == 0: was 3`}},
		// A long gate names the one clause that is false, with what it saw,
		// not the whole expression.
		{name: "the false clause of a long gate", m: Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1 && delta("etcd_server_leader_changes_seen_total") <= 1 && delta("grpc_server_handled_total", {"grpc_code": "Unavailable"}) == 0 && metric("etcd_server_has_leader") >= 0`), For: arg.Duration(5 * time.Second)},
			pages: pages(healthy, healthy, with(healthy, func(m *member) { m.unavailable = 3 })), wantSamples: 3,
			wantErr: []string{`rb.yml:7:13: expect stopped holding after 2s of the 5s it must hold (sample 3): at {URL}: delta("grpc_server_handled_total", {grpc_code: "Unavailable"}) == 0: was 3`}},
		// settle: a window that does not hold starts again from a new
		// baseline (here at 1s, the scrape after the one that did not
		// hold), and passes once a whole window held.
		{name: "settle starts the window again", m: Module{Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") == 0`), For: arg.Duration(3 * time.Second), Settle: arg.Duration(10 * time.Second)},
			pages:       pages(healthy, with(healthy, func(m *member) { m.leaderChanges = 2 })),
			wantSamples: 6, // baseline 0s, 1s not holding, baseline again at 1s, judged at 2, 3 and 4s
			check: func(t *testing.T, url string, data map[string]any) {
				if data["window_restarts"] != float64(1) || data["held_for"] != "3s" || data["held"] != true {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "settle runs out", m: Module{Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") == 0`), For: arg.Duration(3 * time.Second), Settle: arg.Duration(5 * time.Second)},
			pages:       pages(leaderChanges(1, 2, 3, 4, 5, 6, 7)...),
			wantSamples: 6, // baselines at 0, 1 and 2s; the sample after each moved
			wantErr:     []string{`rb.yml:7:13: expect does not hold at the first sample it judges (it must hold for 3s), and no whole window held within settle 5s (2 restarts): at {URL}: delta("etcd_server_leader_changes_seen_total") == 0: was 1`}},
		// settle as long as for: one window, failing at its first sample
		// that does not hold, as without settle.
		{name: "settle as long as for", m: Module{Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") == 0`), For: arg.Duration(3 * time.Second), Settle: arg.Duration(3 * time.Second)},
			pages:       pages(healthy, with(healthy, func(m *member) { m.leaderChanges = 2 })),
			wantSamples: 2,
			wantErr:     []string{`rb.yml:7:13: expect does not hold at the first sample it judges (it must hold for 3s): at {URL}: delta("etcd_server_leader_changes_seen_total") == 0: was 1`}},
		{name: "delta within", m: Module{Expect: compiled(t, `delta("grpc_server_handled_total", {"grpc_code": "Unavailable"}) >= 2`), Within: arg.Duration(10 * time.Second)},
			pages: pages(healthy, healthy, with(healthy, func(m *member) { m.unavailable = 1 }), with(healthy, func(m *member) { m.unavailable = 2 })), wantSamples: 4,
			check: func(t *testing.T, url string, data map[string]any) {
				if data["held_after"] != "3s" {
					t.Errorf("held_after = %v", data["held_after"])
				}
			}},
		// 10 more fsyncs since the baseline: 8 in (8, 16] ms, 2 above.
		{name: "quantile_delta", m: Module{Expect: compiled(t, `quantile_delta(0.5, "etcd_disk_wal_fsync_duration_seconds") < 0.015 && quantile(0.5, "etcd_disk_wal_fsync_duration_seconds") < 0.003`), For: arg.Duration(time.Second)},
			pages: pages(healthy, with(healthy, func(m *member) { m.fsync = [6]int{10, 40, 90, 98, 108, 110} })), wantSamples: 2,
			check: func(t *testing.T, url string, data map[string]any) {
				// Window: rank 5 of 10 is the 5th of 8 in (8, 16] ms. All: rank 55 is the 15th of 50 in (2, 4] ms.
				near(t, "window p50", readAt(t, data, url, "quantile_delta(0.5, etcd_disk_wal_fsync_duration_seconds)"), 0.008+0.008*5/8)
				near(t, "p50", readAt(t, data, url, "quantile(0.5, etcd_disk_wal_fsync_duration_seconds)"), 0.002+0.002*15/50)
			}},
		{name: "quantile_delta of a quiet window", m: Module{Expect: compiled(t,
			`delta("etcd_disk_wal_fsync_duration_seconds_count") == 0 || quantile_delta(0.99, "etcd_disk_wal_fsync_duration_seconds") < 0.01`), For: arg.Duration(2 * time.Second)},
			pages: pages(healthy), wantSamples: 3},

		{name: "openmetrics", m: Module{Expect: compiled(t, `metric("etcd_server_leader_changes_seen_total") == 2 && quantile(1, "etcd_network_peer_round_trip_time_seconds") == 0.001`)},
			pages: []string{openMetricsPage}, contentType: "application/openmetrics-text; version=1.0.0; charset=utf-8", wantSamples: 1},
		{name: "a real etcd page", m: Module{Expect: compiled(t,
			`metric("etcd_server_has_leader") == 1 && metric("etcd_server_is_leader") == 1 && has_metric("etcd_server_version", {"server_version": "3.6.16"}) && quantile(0.99, "etcd_disk_wal_fsync_duration_seconds") < 0.01 && sum("grpc_server_handled_total", {"grpc_code": "Unavailable"}) == 0`)},
			pages: []string{string(etcdPage(t))}, wantSamples: 1},
		{name: "not a metrics page", m: Module{Expect: compiled(t, `metric("up") == 1`)},
			pages: []string{"<html>login</html>"}, contentType: "text/html", wantSamples: 1,
			wantErr: []string{`does not hold: at {URL}: the answer (Content-Type "text/html") is not a metrics page`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" {
				ct = textFormat
			}
			e := serve(t, ct, tt.pages...)
			m := tt.m
			m.URL = e.url
			if err := m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			m.clock = newFakeClock()
			res, err := m.Run(testCtx(t), testHost(t))
			checkErr(t, err, tt.wantErr, e.url)
			if res.Changed {
				t.Error("a gate reported a change")
			}
			data := roundTrip(t, res.Data)
			if got := data["samples"]; got != float64(tt.wantSamples) {
				t.Errorf("samples = %v, want %d", got, tt.wantSamples)
			}
			if n := int(e.scrapes.Load()); n != tt.wantSamples {
				t.Errorf("the endpoint was scraped %d times, want %d", n, tt.wantSamples)
			}
			if tt.check != nil {
				tt.check(t, e.url, data)
			}
		})
	}
}

// checkErr fails t unless err has the parts of want in order ({URL} stands
// for url), or is nil when want is empty.
func checkErr(t *testing.T, err error, want []string, url string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil, want one containing %q", want)
	}
	rest := err.Error()
	for _, w := range want {
		w = strings.ReplaceAll(w, "{URL}", url)
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("err = %v\nwant it to contain (in order) %q", err, w)
		}
		rest = rest[i+len(w):]
	}
}

// TestURLs evaluates expect on every endpoint: the gate fails naming only
// the ones where it does not hold.
func TestURLs(t *testing.T) {
	a := serve(t, textFormat, healthy.page())
	b := serve(t, textFormat, withLeader(healthy, 0).page())
	c := serve(t, textFormat, healthy.page())
	tests := []struct {
		name    string
		m       Module
		urls    []*endpoint
		wantErr []string
	}{
		{"all hold", Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`)}, []*endpoint{a, c}, nil},
		{"one does not", Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`)}, []*endpoint{a, b, c},
			[]string{"does not hold: at " + b.url + ": metric(\"etcd_server_has_leader\") == 1: was 0"}},
		{"one for a while", Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), For: arg.Duration(10 * time.Second)}, []*endpoint{a, b},
			[]string{"does not hold at the first sample it judges (it must hold for 10s): at " + b.url + ": metric(\"etcd_server_has_leader\") == 1: was 0"}},
		{"one is down", Module{Expect: compiled(t, `metric("etcd_server_has_leader") == 1`)}, []*endpoint{a, {url: "http://" + closedAddr(t) + "/metrics"}},
			[]string{"does not hold: at http://", "/metrics: connect: connection refused (scraped from the controller)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			for _, e := range tt.urls {
				m.URLs = append(m.URLs, e.url)
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			m.clock = newFakeClock()
			res, err := m.Run(testCtx(t), testHost(t))
			checkErr(t, err, tt.wantErr, "")
			data := roundTrip(t, res.Data)
			if _, ok := data["url"]; ok || len(data["urls"].([]any)) != len(tt.urls) {
				t.Errorf("data names the endpoints as %v, %v", data["url"], data["urls"])
			}
			for _, e := range tt.urls[:1] {
				near(t, "has_leader at "+e.url, readAt(t, data, e.url, "etcd_server_has_leader"), 1)
			}
			if err != nil && strings.Contains(err.Error(), a.url) {
				t.Errorf("the message names %s, where expect holds: %v", a.url, err)
			}
		})
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestScrape covers what a scrape sends and how it fails.
func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			w.Header().Set("Content-Type", textFormat)
			fmt.Fprintf(w, "# TYPE seen gauge\nseen{auth=%q,host=%q,accept_text=\"%t\"} 1\n",
				r.Header.Get("Authorization"), r.Host, strings.HasPrefix(r.Header.Get("Accept"), "text/plain;version=0.0.4"))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "/big":
			w.Header().Set("Content-Type", textFormat)
			fmt.Fprint(w, strings.Repeat("# padding\n", 200))
		case "/slow-to-parse":
			// OpenMetrics, one family a line: Prometheus' parser needs
			// milliseconds for each.
			w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0")
			for i := range 5000 {
				fmt.Fprintf(w, "# TYPE g%d gauge\ng%d 1\n", i, i)
			}
			fmt.Fprint(w, "# EOF\n")
		default:
			http.Error(w, "no such page: "+r.URL.Path, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		m       Module
		maxPage int64
		wantErr []string
	}{
		{"headers", Module{URL: srv.URL + "/metrics", Headers: map[string]string{"Authorization": "Bearer t0k", "Host": "etcd.example"},
			Expect: compiled(t, `metric("seen", {"auth": "Bearer t0k", "host": "etcd.example", "accept_text": "true"}) == 1`)}, 0, nil},
		{"status", Module{URL: srv.URL + "/nope", Expect: compiled(t, `metric("up") == 1`)}, 0,
			[]string{"at " + srv.URL + "/nope: status 404, want 200 (\"no such page: /nope\")"}},
		{"timeout", Module{URL: srv.URL + "/slow", Timeout: arg.Duration(100 * time.Millisecond), Expect: compiled(t, `metric("up") == 1`)}, 0,
			[]string{"at " + srv.URL + "/slow: no answer within 100ms (timeout)"}},
		{"too big", Module{URL: srv.URL + "/big", Expect: compiled(t, `metric("up") == 1`)}, 1 << 10,
			[]string{"the answer is larger than 1024 bytes; is this a metrics endpoint?"}},
		{"parsing takes too long", Module{URL: srv.URL + "/slow-to-parse", Timeout: arg.Duration(300 * time.Millisecond), Expect: compiled(t, `metric("g0") == 1`)}, 0,
			[]string{`parsing the answer (Content-Type "application/openmetrics-text") took longer than the timeout (300ms)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			if err := m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			g, err := newGate(m.Defaults(), testHost(t))
			if err != nil {
				t.Fatal(err)
			}
			defer g.close()
			if tt.maxPage > 0 {
				g.scraper.maxPage = tt.maxPage
			}
			_, err = g.run(testCtx(t))
			checkErr(t, err, tt.wantErr, "")
		})
	}
}

// TestHandBuilt runs a module whose expect the loader never compiled: Run
// compiles it with the module's names and the host's vars.
func TestHandBuilt(t *testing.T) {
	e := serve(t, textFormat, healthy.page())
	m := &Module{URL: e.url, Expect: arg.Expr{Src: `metric("etcd_server_leader_changes_seen_total") <= max_changes`}}
	if _, err := m.Run(testCtx(t), testHost(t)); err != nil {
		t.Fatal(err)
	}
	m.Expect = arg.Expr{Src: `metric(1) == 1`}
	if _, err := m.Run(testCtx(t), testHost(t)); err == nil || !strings.Contains(err.Error(), "expect: ") || !strings.Contains(err.Error(), "cannot use int as an argument of type string") {
		t.Fatalf("err = %v, want the compile error", err)
	}
}

// TestStepScope: expect sees what the step's other expressions see.
func TestStepScope(t *testing.T) {
	e := serve(t, textFormat, healthy.page())
	src := `metric("etcd_server_leader_changes_seen_total") <= before.json.changes && result.url == "` + e.url + `"`
	p, ds := eval.Compile(src, diag.Pos{}, &eval.Env{Result: true, Registered: []string{"before"}, Extra: new(Module).ExprNames("expect")}, eval.Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	h := testHost(t)
	h.Scope = &eval.Scope{Registered: map[string]any{"before": map[string]any{"json": map[string]any{"changes": 1}}},
		Extra: map[string]any{"etcd": map[string]any{"leader": "etcd-2"}}}
	m := &Module{URL: e.url, Expect: arg.Expr{Src: src, Program: p}}
	if _, err := m.Run(testCtx(t), h); err != nil {
		t.Fatal(err)
	}
	if len(h.Scope.Extra) != 1 || h.Scope.Result != nil {
		t.Errorf("the step's scope was changed: %+v", h.Scope)
	}
}

// TestStopped: a step stopped (cancelled, or out of time) while the gate
// waits ends at once and says what it last saw.
func TestStopped(t *testing.T) {
	e := serve(t, textFormat, healthy.page())
	ctx, cancel := context.WithCancel(testCtx(t))
	m := &Module{URL: e.url, Expect: compiled(t, `metric("etcd_server_has_leader") == 1`), For: arg.Duration(time.Hour)}
	m.clock = &stoppingClock{fakeClock: newFakeClock(), stopAfter: 3, cancel: cancel}
	res, err := m.Run(ctx, testHost(t))
	checkErr(t, err, []string{"expect `metric(\"etcd_server_has_leader\") == 1`: stopped after 3s (4 samples): context canceled; last sample holds"}, "")
	if res.Data["samples"] != 4 || res.Data["held"] != false {
		t.Errorf("data = %v", res.Data)
	}
}

// stoppingClock cancels the step on its stopAfter+1st sleep.
type stoppingClock struct {
	*fakeClock
	stopAfter int
	sleeps    int
	cancel    func()
}

func (c *stoppingClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.sleeps++; c.sleeps > c.stopAfter {
		c.cancel()
	}
	return c.fakeClock.Sleep(ctx, d)
}

func TestCheck(t *testing.T) {
	up := serve(t, textFormat, healthy.page())
	down := serve(t, textFormat, withLeader(healthy, 0).page())
	leader := compiled(t, `metric("etcd_server_has_leader") == 1`)
	tests := []struct {
		name    string
		m       Module
		wantMsg string
		wantErr []string
	}{
		{"holds", Module{URL: up.url, Expect: leader, For: arg.Duration(time.Hour)}, "holds now", nil},
		{"does not hold", Module{URL: down.url, Expect: leader, For: arg.Duration(time.Hour)}, "",
			[]string{"does not hold now: at " + down.url + ": metric(\"etcd_server_has_leader\") == 1: was 0"}},
		{"within reports", Module{URL: down.url, Expect: leader, Within: arg.Duration(time.Minute)},
			"would wait up to 60s for it to hold; now it does not: at " + down.url + ": metric(\"etcd_server_has_leader\") == 1: was 0", nil},
		{"over changes", Module{URL: up.url, Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") == 0`), For: arg.Duration(time.Minute)},
			"every endpoint answers; expect reads changes since this first scrape, so the run judges it from its next sample", nil},
		{"over changes, down", Module{URL: "http://" + closedAddr(t) + "/metrics", Expect: compiled(t, `delta("etcd_server_leader_changes_seen_total") == 0`), For: arg.Duration(time.Minute)}, "",
			[]string{"does not hold now: at http://", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			if err := m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			clk := newFakeClock()
			m.clock = clk
			before := clk.Now()
			res, err := m.Check(testCtx(t), testHost(t))
			checkErr(t, err, tt.wantErr, "")
			if res.Data["msg"] != nil && res.Data["msg"] != tt.wantMsg || tt.wantMsg != "" && res.Data["msg"] != tt.wantMsg {
				t.Errorf("msg = %q, want %q", res.Data["msg"], tt.wantMsg)
			}
			if res.Data["samples"] != 1 || res.Changed || !clk.Now().Equal(before) {
				t.Errorf("Check took %v samples over %s (changed %v); want one scrape, no waiting", res.Data["samples"], clk.Now().Sub(before), res.Changed)
			}
		})
	}
}

type testInventory []eval.Host

func (inv testInventory) Group(string) []eval.Host { return inv }

// TestHostsOf: a URL is named by the one inventory host with its address.
func TestHostsOf(t *testing.T) {
	inv := testInventory{{Name: "m1", Addr: "127.0.0.11"}, {Name: "m2", Addr: "127.0.0.12"}, {Name: "x", Addr: "127.0.0.13"}, {Name: "y", Addr: "127.0.0.13"}}
	got := hostsOf([]string{"http://127.0.0.12:2381/metrics", "http://127.0.0.13:2381/metrics", "http://10.0.0.1/metrics"}, inv)
	want := map[string]string{
		"http://127.0.0.12:2381/metrics": "on m2 (http://127.0.0.12:2381/metrics)",
		"http://127.0.0.13:2381/metrics": "at http://127.0.0.13:2381/metrics", // two hosts have it
		"http://10.0.0.1/metrics":        "at http://10.0.0.1/metrics",
	}
	if !maps.Equal(got, want) {
		t.Errorf("hostsOf = %v\nwant %v", got, want)
	}
}
