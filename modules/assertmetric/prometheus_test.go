package assertmetric

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/promlab"
	"github.com/runbookhq/runbook/modules/arg"
)

// TestPrometheusSource holds expect over promql() against a real
// Prometheus scraping a real endpoint.
func TestPrometheusSource(t *testing.T) {
	promlab.Binary(t)
	reg := prometheus.NewRegistry()
	leader := prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_has_leader", Help: "1 when the member has a leader"})
	leader.Set(1)
	reg.MustRegister(leader)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	prom := promlab.New(t, []string{strings.TrimPrefix(srv.URL, "http://")})
	ctx := testCtx(t)
	if err := prom.WaitQuery(ctx, "etcd_server_has_leader"); err != nil {
		t.Fatal(err)
	}
	expect := func(src string) arg.Expr {
		p, ds := eval.Compile(src, diag.Pos{File: "rb.yml", Line: 7, Col: 13}, &eval.Env{Result: true, Extra: new(Module).ExprNames("expect")}, eval.Bool)
		if err := ds.Err(); err != nil {
			t.Fatal(err)
		}
		return arg.Expr{Src: src, Pos: p.Pos, Program: p}
	}
	m := &Module{Prometheus: prom.URL, Expect: expect(`promql("sum(etcd_server_has_leader)") == 1`),
		For: arg.Duration(2 * time.Second), Interval: arg.Duration(time.Second), clock: newFakeClock()}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := m.Run(ctx, testHost(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["prometheus"] != prom.URL || res.Data["samples"] != 3 {
		t.Errorf("result %v", res.Data)
	}

	m.Expect = expect(`promql("sum(etcd_server_has_leader)") == 0`)
	m.For = 0
	m.Interval = 0
	_, err = m.Run(ctx, testHost(t))
	if err == nil || !strings.Contains(err.Error(), `rb.yml:7:13: expect does not hold: at `+prom.URL+`: read promql("sum(etcd_server_has_leader)")=1`) {
		t.Errorf("error = %v", err)
	}

	// Prometheus gone: a sample that does not hold, saying why.
	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = m.Run(context.Background(), testHost(t))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error with Prometheus stopped = %v", err)
	}
}

func TestValidatePrometheus(t *testing.T) {
	tests := []struct {
		name string
		m    Module
		want string
	}{
		{"valid", Module{Prometheus: "http://127.0.0.1:9090", Expect: loaded(t, `promql("up") == 1`)}, ""},
		{"with url", Module{Prometheus: "http://127.0.0.1:9090", URL: "http://127.0.0.1:1/metrics", Expect: loaded(t, `promql("up") == 1`)}, "url or urls is also given"},
		{"scrape function", Module{Prometheus: "http://127.0.0.1:9090", Expect: loaded(t, `metric("up") == 1`)}, "calls metric(), which reads a scrape"},
		{"token and user", Module{Prometheus: "http://127.0.0.1:9090", Expect: loaded(t, `promql("up") == 1`), BearerToken: "t", Username: "u", Password: "p"}, "not both"},
		{"token over a scrape", Module{URL: "http://127.0.0.1:1/metrics", Expect: loaded(t, `metric("up") == 1`), BearerToken: "t"}, "are for prometheus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
