package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// fakeClock moves only when the analysis sleeps, so that intervals pass at once.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)} }

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
	c.slept = append(c.slept, d)
	return nil
}

// fakeQuerier answers each query with the next of its scripted answers (the
// last one repeats): a number, or an error where the entry is NaN.
type fakeQuerier struct {
	answers map[string][]float64
	calls   map[string]int
}

var errDown = errors.New("connection refused")

func (f *fakeQuerier) Query(_ context.Context, q string, _ time.Time) (float64, error) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	a := f.answers[q]
	i := min(f.calls[q], len(a)-1)
	f.calls[q]++
	if math.IsNaN(a[i]) {
		return 0, errDown
	}
	return a[i], nil
}

var nan = math.NaN()

func cond(t *testing.T, field, src string) arg.Expr {
	t.Helper()
	if src == "" {
		return arg.Expr{}
	}
	p, ds := eval.Compile(src, diag.Pos{File: "rb.yml", Line: 9, Col: 19}, &eval.Env{Extra: new(Module).ExprNames(field)}, eval.Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	return arg.Expr{Src: src, Pos: p.Pos, Program: p}
}

func testHost() *modules.Host {
	return &modules.Host{Name: "web-1", Addr: "127.0.0.1", Log: zerolog.Nop()}
}

func intp(n int) *int { return &n }

func TestRun(t *testing.T) {
	tests := []struct {
		name             string
		count            int
		onInconclusive   string
		success, failure string
		limits           [3]int // failure, inconclusive, consecutive errors
		result, baseline []float64
		yes              bool
		confirm          *bool // nil: no terminal
		wantPhase        Phase
		wantErr          string
		hold             bool
		taken            int
	}{
		{name: "good canary", count: 3, success: "result <= max(baseline * 1.5, 0.001)", failure: "result > 0.05",
			result: []float64{0.01}, baseline: []float64{0.01}, wantPhase: PhaseSuccessful, taken: 3},
		{name: "bad canary fails fast", count: 6, success: "result <= max(baseline * 1.5, 0.001)", failure: "result > 0.05",
			result: []float64{0.01, 0.08}, baseline: []float64{0.01}, wantPhase: PhaseFailed, taken: 2,
			wantErr: "analysis failed: error-rate failed: 1 failed measurement of 2 measurements, more than failure_limit 0; last value 0.08 (baseline 0.01): failed"},
		{name: "failure wins over success", count: 2, success: "result < 1", failure: "result > 0.05",
			result: []float64{0.5}, baseline: []float64{0}, wantPhase: PhaseFailed, taken: 1, wantErr: "analysis failed"},
		{name: "only success: a miss is a failure", count: 3, success: "result < 0.05", limits: [3]int{1, 0, 4},
			result: []float64{0.1, 0.01, 0.1}, wantPhase: PhaseFailed, taken: 3, wantErr: "2 failed measurements of 3"},
		{name: "only failure: a miss is a success", count: 2, failure: "result > 0.05",
			result: []float64{0.01}, wantPhase: PhaseSuccessful, taken: 2},
		{name: "inconclusive, continue", count: 4, onInconclusive: "continue", success: "result < 0.01", failure: "result > 0.05",
			result: []float64{0.03}, wantPhase: PhaseInconclusive, taken: 1},
		{name: "inconclusive, fail", count: 4, onInconclusive: "fail", success: "result < 0.01", failure: "result > 0.05",
			result: []float64{0.03}, wantPhase: PhaseInconclusive, taken: 1, wantErr: "analysis inconclusive (on_inconclusive: fail): error-rate is inconclusive"},
		{name: "inconclusive, pause without a terminal holds; --yes does not answer", count: 4, onInconclusive: "pause", yes: true,
			success: "result < 0.01", failure: "result > 0.05", limits: [3]int{0, 1, 4},
			result: []float64{0.03, 0.001, 0.03}, wantPhase: PhaseInconclusive, taken: 3, hold: true,
			wantErr: "no terminal to ask whether to go on"},
		{name: "inconclusive, the operator goes on", count: 4, onInconclusive: "pause", confirm: new(true),
			success: "result < 0.01", failure: "result > 0.05", result: []float64{0.03}, wantPhase: PhaseInconclusive, taken: 1},
		{name: "inconclusive, the operator refuses", count: 4, onInconclusive: "pause", confirm: new(false),
			success: "result < 0.01", failure: "result > 0.05", result: []float64{0.03}, wantPhase: PhaseInconclusive, taken: 1,
			wantErr: "the operator did not go on"},
		{name: "Prometheus down: Error after the limit", count: 10, success: "result < 0.01", limits: [3]int{0, 0, 2},
			result: []float64{0.001, nan}, wantPhase: PhaseError, taken: 4,
			wantErr: "error-rate could not be measured: 3 errors in a row, more than consecutive_error_limit 2; last: connection refused"},
		{name: "errors below the limit pass", count: 4, success: "result < 0.01", limits: [3]int{0, 0, 2},
			result: []float64{nan, nan, 0.001}, wantPhase: PhaseSuccessful, taken: 6},
		{name: "Prometheus gone after one measurement: errors fill no count", count: 4, success: "result < 0.01", limits: [3]int{0, 0, 3},
			result: []float64{0.001, nan}, wantPhase: PhaseError, taken: 5,
			wantErr: "error-rate could not be measured: 4 errors in a row, more than consecutive_error_limit 3"},
		{name: "a baseline error is an error", count: 2, success: "result <= baseline", limits: [3]int{0, 0, 0},
			result: []float64{0.001}, baseline: []float64{nan}, wantPhase: PhaseError, taken: 1, wantErr: "baseline: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQuerier{answers: map[string][]float64{"q": tt.result, "b": tt.baseline}}
			mt := Metric{Name: "error-rate", Query: "q", Success: cond(t, "success", tt.success), Failure: cond(t, "failure", tt.failure),
				FailureLimit: tt.limits[0], InconclusiveLimit: tt.limits[1], ConsecutiveErrorLimit: intp(tt.limits[2])}
			if tt.baseline != nil {
				mt.Baseline = "b"
			}
			clk := newFakeClock()
			m := &Module{Prometheus: "http://127.0.0.1:9", Count: tt.count, OnInconclusive: tt.onInconclusive,
				Interval: arg.Duration(10 * time.Second), Metrics: []Metric{mt}, clock: clk, querier: q}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			h := testHost()
			h.Yes = tt.yes
			asked := 0
			if tt.confirm != nil {
				h.Confirm = func(context.Context, string) (bool, error) { asked++; return *tt.confirm, nil }
			}
			res, err := m.Run(context.Background(), h)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			var he *modules.HoldError
			if errors.As(err, &he) != tt.hold {
				t.Errorf("HoldError = %v, want %v", errors.As(err, &he), tt.hold)
			}
			if tt.confirm != nil && asked != 1 {
				t.Errorf("asked %d times, want once", asked)
			}
			if got := res.Data["phase"]; got != string(tt.wantPhase) {
				t.Errorf("phase = %v, want %s", got, tt.wantPhase)
			}
			if got := q.calls["q"]; got != tt.taken {
				t.Errorf("queried %d times, want %d", got, tt.taken)
			}
			ms := res.Data["metrics"].([]any)[0].(map[string]any)["measurements"].([]any)
			if len(ms) != tt.taken {
				t.Errorf("%d measurements in the result, want %d", len(ms), tt.taken)
			}
			if len(clk.slept) != tt.taken-1 && tt.wantPhase != PhaseSuccessful || tt.wantPhase == PhaseSuccessful && len(clk.slept) != tt.taken-1 {
				t.Errorf("slept %d times between %d measurements", len(clk.slept), tt.taken)
			}
			if _, err := json.Marshal(res.Data); err != nil {
				t.Errorf("the result is not JSON: %v", err)
			}
		})
	}
}

// TestMeasurementsInResult checks what each measurement records.
func TestMeasurementsInResult(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"q": {0.01, 0.02}, "b": {0.02}}}
	clk := newFakeClock()
	start := clk.Now()
	m := &Module{Prometheus: "http://u:secretpw@127.0.0.1:9", Count: 2, Interval: arg.Duration(10 * time.Second),
		InitialDelay: Delay(5 * time.Second), clock: clk, querier: q,
		Metrics: []Metric{{Name: "err", Query: "q", Baseline: "b", Success: cond(t, "success", "result <= baseline")}}}
	h := testHost()
	var progress []map[string]any
	h.Progress = func(d map[string]any) { progress = append(progress, d) }
	res, err := m.Run(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != 2 || progress[0]["value"] != 0.01 || progress[0]["baseline"] != 0.02 || progress[1]["n"] != 2 ||
		progress[1]["verdict"] != "successful" || progress[1]["phase"] != "Successful" || progress[0]["metric"] != "err" {
		t.Errorf("progress events %v: want one per measurement as it is taken", progress)
	}
	b, _ := json.Marshal(res.Data)
	if strings.Contains(string(b), "secretpw") {
		t.Errorf("the result shows the password: %s", b)
	}
	ms := res.Data["metrics"].([]any)[0].(map[string]any)["measurements"].([]any)
	first, second := ms[0].(map[string]any), ms[1].(map[string]any)
	if first["time"] != start.Add(5*time.Second).Format(time.RFC3339Nano) || second["time"] != start.Add(15*time.Second).Format(time.RFC3339Nano) {
		t.Errorf("measurement times %v, %v: want initial_delay then interval", first["time"], second["time"])
	}
	if first["value"] != 0.01 || first["baseline"] != 0.02 || first["verdict"] != "successful" || second["value"] != 0.02 {
		t.Errorf("measurements = %v", ms)
	}
	if res.Data["msg"] != "err successful: 2 of 2 measurements" {
		t.Errorf("msg = %v", res.Data["msg"])
	}
}

// TestForWithoutCount measures every interval until for is up.
func TestForWithoutCount(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"q": {0}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", For: arg.Duration(time.Minute), Interval: arg.Duration(10 * time.Second),
		clock: newFakeClock(), querier: q, Metrics: []Metric{{Name: "x", Query: "q", Failure: cond(t, "failure", "result > 0")}}}
	if _, err := m.Run(context.Background(), testHost()); err != nil {
		t.Fatal(err)
	}
	if q.calls["q"] != 7 {
		t.Errorf("%d measurements in 1m at 10s, want 7 (at 0s, 10s ... 60s)", q.calls["q"])
	}
}

// TestUntilTheStepTimeout: count 0 without for measures every interval
// until the step's timeout, less one query's time limit so that the
// verdict comes before the step is cut; then it is Successful.
func TestUntilTheStepTimeout(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"q": {0}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", Interval: arg.Duration(10 * time.Second), Timeout: arg.Duration(10 * time.Second),
		clock: newFakeClock(), querier: q, Metrics: []Metric{{Name: "x", Query: "q", Failure: cond(t, "failure", "result > 0")}}}
	ctx, cancel := context.WithTimeout(context.Background(), 65*time.Second)
	defer cancel()
	res, err := m.Run(ctx, testHost())
	if err != nil {
		t.Fatal(err)
	}
	if q.calls["q"] != 6 || res.Data["phase"] != "Successful" {
		t.Errorf("%d measurements, phase %v: want 6 (at 0s ... 50s) before a 65s timeout less 10s", q.calls["q"], res.Data["phase"])
	}
	// Without count, for or a step timeout: one measurement.
	q = &fakeQuerier{answers: map[string][]float64{"q": {0}}}
	m.querier, m.clock = q, newFakeClock()
	if _, err := m.Run(context.Background(), testHost()); err != nil || q.calls["q"] != 1 {
		t.Errorf("%d measurements (%v), want 1", q.calls["q"], err)
	}
}

// TestForOnlyErrors: a metric that could not be measured once in its time
// is in Error, not Successful.
func TestForOnlyErrors(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"q": {nan}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", For: arg.Duration(30 * time.Second), Interval: arg.Duration(10 * time.Second),
		clock: newFakeClock(), querier: q, Metrics: []Metric{{Name: "x", Query: "q", Failure: cond(t, "failure", "result > 0"), ConsecutiveErrorLimit: intp(10)}}}
	_, err := m.Run(context.Background(), testHost())
	if err == nil || !strings.Contains(err.Error(), "analysis error: x could not be measured: 4 errors and no measurement before the time was up") {
		t.Errorf("error = %v, want Error", err)
	}
}

// TestFailFastAcrossMetrics stops every metric when one fails.
func TestFailFastAcrossMetrics(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"a": {0}, "b": {0, 1}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", Count: 10, clock: newFakeClock(), querier: q, Metrics: []Metric{
		{Name: "a", Query: "a", Failure: cond(t, "failure", "result > 0")},
		{Name: "b", Query: "b", Failure: cond(t, "failure", "result > 0")},
	}}
	res, err := m.Run(context.Background(), testHost())
	if err == nil || !strings.Contains(err.Error(), "b failed") || strings.Contains(err.Error(), "a failed") {
		t.Fatalf("error = %v, want b failed", err)
	}
	if q.calls["a"] != 2 || q.calls["b"] != 2 || res.Data["phase"] != "Failed" {
		t.Errorf("calls %v phase %v: want both stopped after the second measurement", q.calls, res.Data["phase"])
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := &fakeQuerier{answers: map[string][]float64{"q": {0}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", Count: 3, clock: newFakeClock(), querier: q,
		Metrics: []Metric{{Name: "x", Query: "q", Failure: cond(t, "failure", "result > 0")}}}
	if _, err := m.Run(ctx, testHost()); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want the cancellation", err)
	}
}

func TestValidate(t *testing.T) {
	ok := func() Metric { return Metric{Name: "m", Query: "up", Success: arg.Expr{Src: "result == 1"}} }
	with := func(f func(*Module)) *Module {
		m := &Module{Prometheus: "http://127.0.0.1:9090", Metrics: []Metric{ok()}}
		f(m)
		return m
	}
	tests := []struct {
		name string
		m    *Module
		want string
	}{
		{"valid", with(func(*Module) {}), ""},
		{"no source", with(func(m *Module) { m.Prometheus = "" }), "no source given"},
		{"two sources", with(func(m *Module) { m.URL = "http://127.0.0.1:1/metrics" }), "give one source"},
		{"bad on_inconclusive", with(func(m *Module) { m.OnInconclusive = "wait" }), `on_inconclusive: is "wait"; give pause, fail or continue`},
		{"count and for", with(func(m *Module) { m.Count = 2; m.For = arg.Duration(time.Minute) }), "for: count is also given"},
		{"no metrics", with(func(m *Module) { m.Metrics = nil }), "metrics: is empty"},
		{"no condition", with(func(m *Module) { m.Metrics[0].Success = arg.Expr{} }), "has neither success nor failure"},
		{"no query", with(func(m *Module) { m.Metrics[0].Query = "" }), `metric "m": has no query`},
		{"twice", with(func(m *Module) { m.Metrics = append(m.Metrics, ok()) }), "is given twice"},
		{"query over a scrape", with(func(m *Module) { m.Prometheus = ""; m.URL = "http://127.0.0.1:1/metrics" }), "query and baseline are PromQL for prometheus"},
		{"token and user", with(func(m *Module) { m.BearerToken = "t"; m.Username = "u"; m.Password = "p" }), "not both"},
		{"headers with prometheus", with(func(m *Module) { m.Headers = map[string]string{"X": "y"} }), "headers: are for a scrape"},
		{"negative limit", with(func(m *Module) { m.Metrics[0].FailureLimit = -1 }), "must not be negative"},
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

// TestCheck takes one measurement of each metric and decides nothing.
func TestCheck(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"q": {0.5}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", Count: 6, Interval: arg.Duration(10 * time.Second), clock: newFakeClock(), querier: q,
		Metrics: []Metric{{Name: "err", Query: "q", Failure: cond(t, "failure", "result > 0.05")}}}
	res, err := m.Check(context.Background(), testHost())
	if err != nil {
		t.Fatal(err)
	}
	if q.calls["q"] != 1 || res.Data["msg"] != "would take 6 measurements 10s apart; err now value 0.5: failed" {
		t.Errorf("calls %d, msg %q", q.calls["q"], res.Data["msg"])
	}
}

// TestCheckSchedule says what the analysis would take when no count is
// given, and that it would wait for approvals.
func TestCheckSchedule(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]float64{"q": {0}}}
	m := &Module{Prometheus: "http://127.0.0.1:9", Interval: arg.Duration(10 * time.Second), clock: newFakeClock(), querier: q,
		Approve: &Approve{Required: 2}, Metrics: []Metric{{Name: "err", Query: "q", Failure: cond(t, "failure", "result > 0.05")}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	res, err := m.Check(ctx, testHost())
	if err != nil {
		t.Fatal(err)
	}
	if want := "would take measurements until the step's timeout 10s apart; err now value 0: successful; if inconclusive, would wait for 2 approvals"; res.Data["msg"] != want {
		t.Errorf("msg %q, want %q", res.Data["msg"], want)
	}
}
