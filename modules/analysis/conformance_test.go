package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// issueStep is the analysis step exactly as the issue that asked for the
// module writes it; %COUNT% is replaced to try count 0 with for.
const issueStep = `runbook: canary
hosts: web
steps:
- name: canary analysis
  analysis:
    prometheus: '{{ prometheus_url }}'
    interval: 10s              # between measurements
    count: 6                   # measurements; 0 with ` + "`for:`" + ` = until the step's timeout
    initial_delay: 0s
    on_inconclusive: pause     # pause | fail | continue
    metrics:
      - name: error-rate
        query: 'sum(rate(http_requests_total{instance="{{ host.addr }}:8080",code=~"5.."}[1m])) / sum(rate(http_requests_total{instance="{{ host.addr }}:8080"}[1m]))'
        baseline: 'sum(rate(http_requests_total{instance!="{{ host.addr }}:8080",code=~"5.."}[1m])) / sum(rate(http_requests_total{instance!="{{ host.addr }}:8080"}[1m]))'
        success: 'result <= max(baseline * 1.5, 0.001)'
        failure: 'result > 0.05'
        failure_limit: 0        # failed measurements tolerated
        inconclusive_limit: 1   # measurements where neither condition held
        consecutive_error_limit: 4   # query errors in a row (Prometheus down) before Error
`

// loadIssueStep loads src as runbook validate does and renders its step
// for a host at 10.0.0.5, as the run does.
func loadIssueStep(t *testing.T, src string) *Module {
	t.Helper()
	rb, ds := spec.LoadBytes("canary.yml", []byte(src), modules.Default, spec.LoadOptions{Vars: map[string]any{"prometheus_url": "http://127.0.0.1:9090"}})
	if err := ds.Err(); err != nil {
		t.Fatalf("the issue's YAML does not load: %v", err)
	}
	scope := &eval.Scope{Vars: map[string]any{"prometheus_url": "http://127.0.0.1:9090"}, Host: eval.Host{Name: "web-1", Addr: "10.0.0.5"}}
	args, err := rb.Steps[0].NewArgs(modules.Default, scope)
	if err != nil {
		t.Fatalf("the issue's step does not render: %v", err)
	}
	return args.(*Module)
}

// TestIssueShape: every field of the issue's YAML is accepted and means
// what the issue says.
func TestIssueShape(t *testing.T) {
	m := loadIssueStep(t, issueStep)
	const canary = `sum(rate(http_requests_total{instance="10.0.0.5:8080",code=~"5.."}[1m])) / sum(rate(http_requests_total{instance="10.0.0.5:8080"}[1m]))`
	const peers = `sum(rate(http_requests_total{instance!="10.0.0.5:8080",code=~"5.."}[1m])) / sum(rate(http_requests_total{instance!="10.0.0.5:8080"}[1m]))`
	if len(m.Metrics) != 1 {
		t.Fatalf("metrics = %+v", m.Metrics)
	}
	mt := m.Metrics[0]
	for _, f := range []struct {
		field     string
		got, want any
	}{
		{"prometheus", m.Prometheus, "http://127.0.0.1:9090"},
		{"interval", m.Interval.Std(), 10 * time.Second},
		{"count", m.Count, 6},
		{"initial_delay", m.InitialDelay.Std(), time.Duration(0)},
		{"on_inconclusive", m.OnInconclusive, "pause"},
		{"metrics[0].name", mt.Name, "error-rate"},
		{"metrics[0].query", mt.Query, canary},
		{"metrics[0].baseline", mt.Baseline, peers},
		{"metrics[0].success", mt.Success.Src, "result <= max(baseline * 1.5, 0.001)"},
		{"metrics[0].failure", mt.Failure.Src, "result > 0.05"},
		{"metrics[0].failure_limit", mt.FailureLimit, 0},
		{"metrics[0].inconclusive_limit", mt.InconclusiveLimit, 1},
		{"metrics[0].consecutive_error_limit", mt.errorLimit(), 4},
	} {
		if f.got != f.want {
			t.Errorf("%s = %#v, want %#v", f.field, f.got, f.want)
		}
	}
	if mt.Success.Program == nil || mt.Failure.Program == nil {
		t.Error("success and failure are not compiled")
	}
}

// timedQuerier answers the canary's query and the peers' baseline from
// scripts (NaN: an error) and records when each was evaluated.
type timedQuerier struct {
	mu               sync.Mutex
	result, baseline []float64
	n                map[bool]int
	at               map[bool][]time.Time
	// lastQuery is when the canary's query was last evaluated: the
	// baseline of the same measurement must be evaluated at that time.
	lastQuery time.Time
	mismatch  []string
}

func (q *timedQuerier) Query(_ context.Context, query string, at time.Time) (float64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == nil {
		q.n, q.at = map[bool]int{}, map[bool][]time.Time{}
	}
	isBaseline := strings.Contains(query, "instance!=")
	script := q.result
	if isBaseline {
		script = q.baseline
	}
	v := script[min(q.n[isBaseline], len(script)-1)]
	q.n[isBaseline]++
	q.at[isBaseline] = append(q.at[isBaseline], at)
	if isBaseline && !at.Equal(q.lastQuery) {
		q.mismatch = append(q.mismatch, fmt.Sprintf("baseline at %v after the query at %v", at, q.lastQuery))
	}
	if !isBaseline {
		q.lastQuery = at
	}
	if math.IsNaN(v) {
		return 0, errDown
	}
	return v, nil
}

// tickingClock moves 1ms each time it is read, so that two reads of the
// clock never give the same time: a baseline evaluated at a time of its
// own would show.
type tickingClock struct{ *fakeClock }

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	c.now = c.now.Add(time.Millisecond)
	return now
}

// TestIssueSemantics runs the issue's step over scripted Prometheus
// answers: the verdict of each measurement, the limits, fail fast, and the
// defaults Argo Rollouts has.
func TestIssueSemantics(t *testing.T) {
	tests := []struct {
		name             string
		edit             func(*Module)
		result, baseline []float64
		want             Phase
		taken            int // queries of the canary
		wantErr          string
		hold             bool
	}{
		{name: "a good canary: 6 successful", result: []float64{0.01}, baseline: []float64{0.01},
			want: PhaseSuccessful, taken: 6},
		{name: "over 1.5 times its peers and under 5%: inconclusive twice, held without a terminal",
			result: []float64{0.03}, baseline: []float64{0.01}, want: PhaseInconclusive, taken: 2, hold: true,
			wantErr: "error-rate is inconclusive: 2 measurements where neither success nor failure held, more than inconclusive_limit 1"},
		{name: "one inconclusive is tolerated", result: []float64{0.03, 0.01}, baseline: []float64{0.01},
			want: PhaseSuccessful, taken: 6},
		{name: "a failure fails fast", result: []float64{0.01, 0.01, 0.08}, baseline: []float64{0.01},
			want: PhaseFailed, taken: 3, wantErr: "analysis failed: error-rate failed: 1 failed measurement of 3 measurements, more than failure_limit 0"},
		{name: "both conditions hold: failed", result: []float64{0.08}, baseline: []float64{1},
			want: PhaseFailed, taken: 1, wantErr: "last value 0.08 (baseline 1): failed"},
		{name: "Prometheus down: Error after 5 errors in a row (limit 4)", result: []float64{0.01, nan}, baseline: []float64{0.01},
			want: PhaseError, taken: 6, wantErr: "error-rate could not be measured: 5 errors in a row, more than consecutive_error_limit 4"},
		{name: "4 errors in a row pass, and do not count towards count", result: []float64{nan, nan, nan, nan, 0.01}, baseline: []float64{0.01},
			want: PhaseSuccessful, taken: 10},
		{name: "a baseline error is an error", result: []float64{0.01}, baseline: []float64{nan},
			want: PhaseError, taken: 5, wantErr: "baseline: connection refused"},
		{name: "only success: a miss is a failure", edit: func(m *Module) { m.Metrics[0].Failure = arg.Expr{} },
			result: []float64{0.01, 0.03}, baseline: []float64{0.01}, want: PhaseFailed, taken: 2, wantErr: "error-rate failed"},
		{name: "only failure: a miss is a success", edit: func(m *Module) { m.Metrics[0].Success = arg.Expr{} },
			result: []float64{0.03}, baseline: []float64{0.01}, want: PhaseSuccessful, taken: 6},
		{name: "failure_limit 1 tolerates one failure", edit: func(m *Module) { m.Metrics[0].FailureLimit = 1 },
			result: []float64{0.08, 0.01}, baseline: []float64{0.01}, want: PhaseSuccessful, taken: 6},
		{name: "default limits: failure 0, inconclusive 0, errors 4", edit: func(m *Module) {
			m.Metrics[0].InconclusiveLimit, m.Metrics[0].ConsecutiveErrorLimit = 0, nil
		}, result: []float64{0.03}, baseline: []float64{0.01}, want: PhaseInconclusive, taken: 1, hold: true, wantErr: "inconclusive"},
		{name: "on_inconclusive: continue", edit: func(m *Module) { m.OnInconclusive = "continue" },
			result: []float64{0.03}, baseline: []float64{0.01}, want: PhaseInconclusive, taken: 2},
		{name: "on_inconclusive: fail", edit: func(m *Module) { m.OnInconclusive = "fail" },
			result: []float64{0.03}, baseline: []float64{0.01}, want: PhaseInconclusive, taken: 2, wantErr: "on_inconclusive: fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadIssueStep(t, issueStep)
			if tt.edit != nil {
				tt.edit(m)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			q := &timedQuerier{result: tt.result, baseline: tt.baseline}
			m.querier, m.clock = q, &tickingClock{fakeClock: newFakeClock()}
			h := testHost()
			h.Yes = true // never answers an inconclusive analysis
			res, err := m.Run(context.Background(), h)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			var he *modules.HoldError
			if errors.As(err, &he) != tt.hold {
				t.Errorf("held = %v, want %v", errors.As(err, &he), tt.hold)
			}
			if res.Data["phase"] != string(tt.want) || q.n[false] != tt.taken {
				t.Errorf("phase %v after %d measurements, want %s after %d", res.Data["phase"], q.n[false], tt.want, tt.taken)
			}
			// The baseline is measured over the same window: the same
			// evaluation time as the query, at every measurement.
			for _, m := range q.mismatch {
				t.Error(m)
			}
			if len(q.at[true]) == 0 {
				t.Error("the baseline was never measured")
			}
			for i := 1; i < len(q.at[false]); i++ {
				// The clock ticks 1ms at each read: interval, give or take those.
				if d := q.at[false][i].Sub(q.at[false][i-1]); d < 10*time.Second || d > 10*time.Second+10*time.Millisecond {
					t.Errorf("measurements %d and %d are %v apart, want interval 10s", i, i+1, d)
				}
			}
		})
	}
}

// TestIssueCountZero: count 0 with for measures every interval for that
// long; count 0 alone, until the step's timeout.
func TestIssueCountZero(t *testing.T) {
	for _, tt := range []struct {
		name, replace string
		timeout       time.Duration
		want          int
	}{
		{"count 0 with for 1m", "count: 0\n    for: 1m", 0, 7},
		{"count 0 until a 95s step timeout less the 10s query timeout", "count: 0", 95 * time.Second, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := loadIssueStep(t, strings.Replace(issueStep, "count: 6", tt.replace, 1))
			m = m.Defaults()
			if m.Count != 0 {
				t.Fatalf("count = %d", m.Count)
			}
			q := &timedQuerier{result: []float64{0.01}, baseline: []float64{0.01}}
			m.querier, m.clock = q, newFakeClock()
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			res, err := m.Run(ctx, testHost())
			if err != nil || res.Data["phase"] != "Successful" || q.n[false] != tt.want {
				t.Errorf("%v, phase %v after %d measurements, want Successful after %d", err, res.Data["phase"], q.n[false], tt.want)
			}
		})
	}
}

// TestIssueShapeOverScrape: the same step over a scrape of real endpoints
// (url, urls) instead of Prometheus: success, failure and inconclusive as
// assert-metric's functions read them.
func TestIssueShapeOverScrape(t *testing.T) {
	serve := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/metrics"
	}
	good := serve("# TYPE app_error_ratio gauge\napp_error_ratio 0.001\n")
	meh := serve("# TYPE app_error_ratio gauge\napp_error_ratio 0.03\n")
	bad := serve("# TYPE app_error_ratio gauge\napp_error_ratio 0.08\n")
	step := func(source string) string {
		return `runbook: canary
hosts: web
steps:
- name: canary analysis
  analysis:
    ` + source + `
    interval: 10s
    count: 3
    initial_delay: 0s
    on_inconclusive: fail
    metrics:
      - name: error-rate
        success: 'metric("app_error_ratio") <= 0.01'
        failure: 'metric("app_error_ratio") > 0.05'
        failure_limit: 0
        inconclusive_limit: 0
        consecutive_error_limit: 4
`
	}
	for _, tt := range []struct {
		name, source string
		want         Phase
		wantErr      string
	}{
		{"url, good", "url: " + good, PhaseSuccessful, ""},
		{"url, neither", "url: " + meh, PhaseInconclusive, "on_inconclusive: fail"},
		{"urls, one bad", "urls: [" + good + ", " + bad + "]", PhaseFailed, "analysis failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := loadIssueStep(t, step(tt.source))
			m.clock = newFakeClock()
			res, err := m.Run(context.Background(), testHost())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if res.Data["phase"] != string(tt.want) {
				t.Errorf("phase = %v, want %s", res.Data["phase"], tt.want)
			}
		})
	}
}
