package analysis

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runbookhq/runbook/modules/arg"
)

// TestScrape judges a real endpoint served by client_golang over HTTP on
// 127.0.0.1: the first scrape is the baseline of delta, and errors served
// between two measurements fail the metric.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "requests"}, []string{"code"})
	reg.MustRegister(reqs)
	reqs.WithLabelValues("200").Add(10)
	reqs.WithLabelValues("500").Add(3) // before the analysis: not counted
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	clk := &servingClock{fakeClock: newFakeClock()}
	m := &Module{URL: srv.URL + "/metrics", Count: 3, Interval: arg.Duration(time.Second), clock: clk,
		Metrics: []Metric{{Name: "errors", Failure: cond(t, "failure", `delta("http_requests_total", {"code": "500"}) > 0`)}}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	// Between the second and third measurements the service serves an error.
	clk.onSleep = func(n int) {
		reqs.WithLabelValues("200").Inc()
		if n == 2 {
			reqs.WithLabelValues("500").Inc()
		}
	}
	res, err := m.Run(context.Background(), testHost())
	if err == nil || !strings.Contains(err.Error(), "errors failed: 1 failed measurement of 3") {
		t.Fatalf("error = %v, want a failure at the third measurement", err)
	}
	ms := res.Data["metrics"].([]any)[0].(map[string]any)["measurements"].([]any)
	if v := ms[2].(map[string]any); v["verdict"] != "failed" || v["value"] != 1.0 || !strings.Contains(v["detail"].(string), `http_requests_total{code="500"}`) {
		t.Errorf("third measurement = %v", v)
	}
	if v := ms[0].(map[string]any); v["verdict"] != "successful" || v["value"] != 0.0 {
		t.Errorf("first measurement = %v, want 0 errors since the baseline", v)
	}

	// An endpoint that is gone: errors in a row, then Error.
	srv.Close()
	m.Metrics[0].ConsecutiveErrorLimit = intp(1)
	m.Count = 5
	m.clock = newFakeClock()
	_, err = m.Run(context.Background(), testHost())
	if err == nil || !strings.Contains(err.Error(), "analysis error: errors could not be measured: 2 errors in a row") {
		t.Errorf("error = %v, want Error after 2 failed scrapes", err)
	}
}

// servingClock lets the test change what the service serves while the
// analysis waits.
type servingClock struct {
	*fakeClock
	sleeps  int
	onSleep func(n int)
}

func (c *servingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps++
	if c.onSleep != nil {
		c.onSleep(c.sleeps)
	}
	return c.fakeClock.Sleep(ctx, d)
}
