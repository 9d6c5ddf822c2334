package analysis

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runbookhq/runbook/internal/promlab"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// service is a real HTTP service on 127.0.0.1 that counts the requests it
// serves in http_requests_total{code} and serves its metrics at /metrics.
// Traffic runs against it until the test ends; errPercent of every
// hundred requests are 500s.
type service struct {
	addr string
}

func startService(t *testing.T, errPercent int) *service {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, errPercent)
}

// serveOn is startService on a listener of the caller's.
func serveOn(t *testing.T, l net.Listener, errPercent int) *service {
	t.Helper()
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "requests served"}, []string{"code"})
	reg.MustRegister(reqs)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	var mu sync.Mutex
	n := 0
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		fail := n*errPercent%100 < errPercent // spread evenly, not in bursts
		mu.Unlock()
		if fail {
			reqs.WithLabelValues("500").Inc()
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		reqs.WithLabelValues("200").Inc()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan struct{})
	// The traffic: a steady request rate, so rate() has something to read.
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Second}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if resp, err := client.Get("http://" + l.Addr().String() + "/"); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return &service{addr: l.Addr().String()}
}

// TestAgainstPrometheus runs the analysis against a real Prometheus that
// scrapes two real services every second: a good one (no errors) and a bad
// one (10% errors), then stops Prometheus in the middle of an analysis.
func TestAgainstPrometheus(t *testing.T) {
	promlab.Binary(t)
	good, bad := startService(t, 0), startService(t, 10)
	prom := promlab.New(t, []string{good.addr, bad.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	errorRate := func(sel string) string {
		return `sum(rate(http_requests_total{` + sel + `,code="500"}[5s])) / sum(rate(http_requests_total{` + sel + `}[5s]))`
	}
	for _, s := range []*service{good, bad} {
		// rate() needs two samples of each series in its window.
		if err := prom.WaitQuery(ctx, `count_over_time(http_requests_total{instance="`+s.addr+`",code="200"}[5s]) >= 3`); err != nil {
			t.Fatal(err)
		}
	}
	if err := prom.WaitQuery(ctx, `sum(rate(http_requests_total{instance="`+bad.addr+`",code="500"}[5s])) > 0`); err != nil {
		t.Fatal(err)
	}
	analysis := func(instance string, count int, errLimit int) *Module {
		return &Module{Prometheus: prom.URL, Count: count, Interval: arg.Duration(time.Second), Timeout: arg.Duration(5 * time.Second),
			Metrics: []Metric{{
				Name:                  "error-rate",
				Query:                 errorRate(`instance="` + instance + `"`),
				Baseline:              errorRate(`instance!="` + instance + `"`),
				Success:               cond(t, "success", "result <= max(baseline * 1.5, 0.001)"),
				Failure:               cond(t, "failure", "result > 0.05"),
				ConsecutiveErrorLimit: intp(errLimit),
			}}}
	}

	t.Run("good canary passes", func(t *testing.T) {
		m := analysis(good.addr, 3, 4)
		res, err := m.Run(ctx, testHost())
		if err != nil {
			t.Fatalf("%v\n%v", err, res.Data)
		}
		mt := res.Data["metrics"].([]any)[0].(map[string]any)
		if mt["successful"] != 3 || res.Data["phase"] != "Successful" {
			t.Errorf("result %v", res.Data)
		}
		for _, ms := range mt["measurements"].([]any) {
			if v := ms.(map[string]any); v["value"] != 0.0 || v["baseline"] == nil {
				t.Errorf("measurement %v: want value 0 and the bad peer's rate as baseline", v)
			}
		}
	})

	t.Run("bad canary fails at the first measurement", func(t *testing.T) {
		m := analysis(bad.addr, 5, 4)
		res, err := m.Run(ctx, testHost())
		if err == nil || !strings.Contains(err.Error(), "analysis failed: error-rate failed: 1 failed measurement of 1 measurement") {
			t.Fatalf("error = %v, want a failure at once", err)
		}
		ms := res.Data["metrics"].([]any)[0].(map[string]any)["measurements"].([]any)
		if v := ms[0].(map[string]any); v["verdict"] != "failed" || v["value"].(float64) < 0.05 {
			t.Errorf("measurement %v: want about 0.1, failed", v)
		}
	})

	t.Run("Prometheus stopped: Error after the limit", func(t *testing.T) {
		m := analysis(good.addr, 10, 2)
		clk := &stoppingClock{stop: func() {
			if err := prom.Stop(); err != nil {
				t.Error(err)
			}
		}}
		m.clock = clk
		res, err := m.Run(ctx, testHost())
		var he *modules.HoldError
		if err == nil || errors.As(err, &he) || !strings.Contains(err.Error(), "analysis error: error-rate could not be measured: 3 errors in a row, more than consecutive_error_limit 2") {
			t.Fatalf("error = %v, want Error after 3 errors", err)
		}
		mt := res.Data["metrics"].([]any)[0].(map[string]any)
		if mt["successful"] != 1 || mt["errors"] != 3 || len(mt["measurements"].([]any)) != 4 {
			t.Errorf("metric %v: want 1 success, then 3 errors", mt)
		}
	})
}

// stoppingClock is the real clock that calls stop at the first wait, after
// the first measurement.
type stoppingClock struct {
	realClock
	once sync.Once
	stop func()
}

func (c *stoppingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.once.Do(c.stop)
	return c.realClock.Sleep(ctx, d)
}
