package assertmetric

import (
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// etcdPage is /metrics of a real etcd 3.6.16 member (one member, a few
// writes), captured once: what the parsers must read as etcd writes it.
func etcdPage(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "etcd-3.6.16.metrics"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// value returns the value of the series with key in p, or fails t.
func value(t *testing.T, p *page, name, key string) float64 {
	t.Helper()
	for _, s := range p.series[name] {
		if s.key == key {
			return s.value
		}
	}
	t.Fatalf("no series %s in the page; %s has %s", key, name, labelSets(p.series[name], ""))
	return 0
}

const openMetricsPage = `# TYPE etcd_server_leader_changes_seen counter
# HELP etcd_server_leader_changes_seen The number of leader changes seen.
etcd_server_leader_changes_seen_total 2
# TYPE etcd_server_has_leader gauge
etcd_server_has_leader 1
# TYPE etcd_network_peer_round_trip_time_seconds histogram
etcd_network_peer_round_trip_time_seconds_bucket{To="91bc3c398fb3c146",le="0.001"} 1
etcd_network_peer_round_trip_time_seconds_bucket{To="91bc3c398fb3c146",le="+Inf"} 3
etcd_network_peer_round_trip_time_seconds_count{To="91bc3c398fb3c146"} 3
etcd_network_peer_round_trip_time_seconds_sum{To="91bc3c398fb3c146"} 0.0042
# EOF
`

const summaryPage = `# HELP rpc_duration_seconds RPC latency.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service="kv",quantile="0.5"} 0.01
rpc_duration_seconds{service="kv",quantile="0.99"} 0.2
rpc_duration_seconds_sum{service="kv"} 10
rpc_duration_seconds_count{service="kv"} 100
# Untyped and comments are fine too.
untyped_thing 3
`

func TestParse(t *testing.T) {
	text := "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
	om := "application/openmetrics-text; version=1.0.0; charset=utf-8"
	tests := []struct {
		name        string
		contentType string
		body        string
		wantErr     string
		check       func(t *testing.T, p *page)
	}{
		{"etcd", text, string(etcdPage(t)), "", func(t *testing.T, p *page) {
			if v := value(t, p, "etcd_server_has_leader", "etcd_server_has_leader"); v != 1 {
				t.Errorf("has_leader = %v", v)
			}
			if v := value(t, p, "etcd_server_version", `etcd_server_version{server_version="3.6.16"}`); v != 1 {
				t.Errorf("server_version = %v", v)
			}
			const h = "etcd_disk_wal_fsync_duration_seconds"
			if p.types[h] != dto.MetricType_HISTOGRAM {
				t.Errorf("type of %s = %v", h, p.types[h])
			}
			if n := len(p.series[h+"_bucket"]); n != 15 {
				t.Errorf("%s has %d buckets, want 15 with +Inf", h, n)
			}
			if v := value(t, p, h+"_bucket", h+`_bucket{le="0.002"}`); v != 21 {
				t.Errorf("le=0.002 bucket = %v", v)
			}
			if inf, count := value(t, p, h+"_bucket", h+`_bucket{le="+Inf"}`), value(t, p, h+"_count", h+"_count"); inf != 26 || count != 26 {
				t.Errorf("+Inf bucket = %v, count = %v, want 26", inf, count)
			}
			if p.start != 1.79549068865e+09 {
				t.Errorf("start = %v", p.start)
			}
			ok := `grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`
			if v := value(t, p, "grpc_server_handled_total", ok); v != 20 {
				t.Errorf("%s = %v", ok, v)
			}
			if s := p.series["etcd_server_proposals_pending"][0]; !s.gauge {
				t.Error("a gauge is not marked as one")
			}
			if s := p.series["etcd_server_proposals_failed_total"][0]; s.gauge {
				t.Error("a counter is marked as a gauge")
			}
		}},
		{"openmetrics", om, openMetricsPage, "", func(t *testing.T, p *page) {
			if v := value(t, p, "etcd_server_leader_changes_seen_total", "etcd_server_leader_changes_seen_total"); v != 2 {
				t.Errorf("counter = %v", v)
			}
			const h = "etcd_network_peer_round_trip_time_seconds"
			if v := value(t, p, h+"_bucket", h+`_bucket{To="91bc3c398fb3c146",le="+Inf"}`); v != 3 {
				t.Errorf("+Inf bucket = %v", v)
			}
			if !math.IsNaN(p.start) {
				t.Errorf("start = %v, want NaN (none on the page)", p.start)
			}
		}},
		{"summary and untyped", text, summaryPage, "", func(t *testing.T, p *page) {
			if v := value(t, p, "rpc_duration_seconds", `rpc_duration_seconds{quantile="0.99",service="kv"}`); v != 0.2 {
				t.Errorf("0.99 quantile = %v", v)
			}
			if v := value(t, p, "rpc_duration_seconds_count", `rpc_duration_seconds_count{service="kv"}`); v != 100 {
				t.Errorf("count = %v", v)
			}
			if v := value(t, p, "untyped_thing", "untyped_thing"); v != 3 {
				t.Errorf("untyped = %v", v)
			}
		}},
		{"no content type is the text format", "", "up 1\n", "", func(t *testing.T, p *page) {
			if v := value(t, p, "up", "up"); v != 1 {
				t.Errorf("up = %v", v)
			}
		}},
		{"html", "text/html; charset=utf-8", "<html><body>Not the metrics</body></html>\n", `the answer (Content-Type "text/html") is not a metrics page`, nil},
		{"bad value", text, "up one\n", `expected float as value, got "one"`, nil},
		{"openmetrics without EOF", om, "# TYPE up gauge\nup 1\n", `(Content-Type "application/openmetrics-text") is not a metrics page`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.contentType != "" {
				h.Set("Content-Type", tt.contentType)
			}
			p, err := parse(context.Background(), h, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parse: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parse error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestFormatLabels(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"b": "2", "a": `say "hi"`}, `{a="say \"hi\"",b="2"}`},
	}
	for _, tt := range tests {
		if got := formatLabels(tt.labels); got != tt.want {
			t.Errorf("formatLabels(%v) = %s, want %s", tt.labels, got, tt.want)
		}
	}
}
