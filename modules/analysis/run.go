package analysis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/promql"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/assertmetric"
	"github.com/runbookhq/runbook/modules/internal/probe"
)

// clock is what the analysis waits by.
type clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time                                   { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error { return probe.Sleep(ctx, d) }

// querier gives the number a PromQL query evaluates to at a time.
type querier interface {
	Query(ctx context.Context, query string, at time.Time) (float64, error)
}

// promQuerier is a querier over a real server.
type promQuerier struct{ c *promql.Client }

func (p promQuerier) Query(ctx context.Context, query string, at time.Time) (float64, error) {
	return p.c.Number(ctx, query, at)
}

// Run measures until every metric is decided and passes or fails the step
// by the analysis' phase. It never changes anything.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	a, err := newAnalysis(m.Defaults(), h)
	if err != nil {
		return modules.Result{}, err
	}
	defer a.close()
	phase, err := a.run(ctx)
	data := a.data(phase)
	if err != nil {
		return modules.Result{Data: data}, err
	}
	return a.decide(ctx, phase, data)
}

// Check takes one measurement of each metric and shows it; nothing is
// decided from one measurement, so it only fails when the source cannot
// be read at all.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	a, err := newAnalysis(d, h)
	if err != nil {
		return modules.Result{}, err
	}
	defer a.close()
	var parts []string
	for _, st := range a.states {
		ms := a.measure(ctx, st.m)
		st.measurements = append(st.measurements, ms)
		parts = append(parts, fmt.Sprintf("%s now %s", st.m.Name, describe(ms)))
	}
	data := a.data(Running)
	data["msg"] = fmt.Sprintf("would take %s; %s", a.schedule(ctx), strings.Join(parts, "; "))
	if ap := d.Approve; ap != nil {
		req := ap.Request("")
		data["msg"] = fmt.Sprintf("%s; if inconclusive, would wait for %s", data["msg"], plural(req.Required, "approval"))
	}
	return modules.Result{Data: data}, nil
}

// analysis is one run of the module.
type analysis struct {
	m       *Module // with defaults
	h       *modules.Host
	clock   clock
	q       querier
	client  *promql.Client
	src     *assertmetric.Source
	urls    []string
	states  []*state
	scope   eval.Scope
	start   time.Time
	success []*eval.Program // by metric; nil when not given
	failure []*eval.Program
}

func newAnalysis(m *Module, h *modules.Host) (*analysis, error) {
	a := &analysis{m: m, h: h, clock: m.clock, q: m.querier}
	if a.clock == nil {
		a.clock = realClock{}
	}
	a.scope = eval.Scope{Vars: h.Vars, Host: eval.Host{Name: h.Name, Addr: h.Addr, Vars: h.Vars}}
	if h.Scope != nil {
		a.scope = *h.Scope
	}
	a.scope.Result = nil // result is the measured number here
	for i := range m.Metrics {
		mt := &m.Metrics[i]
		s, err := program(mt.Success, "success", m, h)
		if err != nil {
			return nil, fmt.Errorf("metric %q: %w", mt.Name, err)
		}
		f, err := program(mt.Failure, "failure", m, h)
		if err != nil {
			return nil, fmt.Errorf("metric %q: %w", mt.Name, err)
		}
		a.success, a.failure = append(a.success, s), append(a.failure, f)
		a.states = append(a.states, newState(mt, m.count()))
	}
	switch {
	case m.Prometheus != "" && a.q == nil:
		c, err := promql.New(promql.Config{
			URL: m.Prometheus, CAFile: controllerPath(h, m.CAFile), CertFile: controllerPath(h, m.CertFile), KeyFile: controllerPath(h, m.KeyFile),
			BearerToken: m.BearerToken, Username: m.Username, Password: m.Password, Timeout: m.Timeout.Std(),
		})
		if err != nil {
			return nil, err
		}
		a.client, a.q = c, promQuerier{c}
	case m.Prometheus == "":
		src, err := assertmetric.NewSource(h, assertmetric.ScrapeOptions{
			Timeout: m.Timeout.Std(), Headers: m.Headers, CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile,
		})
		if err != nil {
			return nil, err
		}
		a.src = src
		a.urls = m.URLs
		if m.URL != "" {
			a.urls = []string{m.URL}
		}
	}
	return a, nil
}

// program is a condition as the loader compiled it, or compiled here for
// a module built by hand.
func program(x arg.Expr, field string, m *Module, h *modules.Host) (*eval.Program, error) {
	if x.Src == "" {
		return nil, nil
	}
	if x.Program != nil {
		return x.Program, nil
	}
	p, ds := eval.Compile(x.Src, x.Pos, &eval.Env{Vars: h.Vars, Extra: m.ExprNames(field)}, eval.Bool)
	if err := ds.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return p, nil
}

func (a *analysis) close() {
	if a.client != nil {
		a.client.Close()
	}
	if a.src != nil {
		a.src.Close()
	}
}

// controllerPath resolves a file on the controller against the runbook's folder.
func controllerPath(h *modules.Host, file string) string {
	if file == "" || filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(h.RunbookDir, file)
}

// windowed reports whether a condition reads changes since the first
// scrape, which then must be taken before the first measurement.
func (a *analysis) windowed() bool {
	for _, ps := range [][]*eval.Program{a.success, a.failure} {
		for _, p := range ps {
			if p == nil {
				continue
			}
			for _, n := range p.Names() {
				if n == "delta" || n == "quantile_delta" {
					return true
				}
			}
		}
	}
	return false
}

// run measures every metric at each tick until all are decided, and stops
// at once when one is Failed, in Error or Inconclusive. Its error is an
// interruption (the step was stopped or timed out).
func (a *analysis) run(ctx context.Context) (Phase, error) {
	d := a.m
	a.start = a.clock.Now()
	if a.src != nil && a.windowed() {
		// The baseline of delta: an endpoint that does not answer now takes
		// its baseline at its first measurement, which is then an error.
		var wg sync.WaitGroup
		for _, u := range a.urls {
			wg.Go(func() { _, _ = a.src.Scrape(ctx, u) })
		}
		wg.Wait()
	}
	if err := a.sleep(ctx, d.InitialDelay.Std()); err != nil {
		return Running, err
	}
	deadline, timed := a.until(ctx)
	if timed {
		for _, st := range a.states {
			st.countExpected = 0
		}
	}
	for n := 1; ; n++ {
		at := a.clock.Now()
		for i, st := range a.states {
			if st.phase != Running {
				continue
			}
			ms := a.measure(ctx, &a.m.Metrics[i])
			if err := ctx.Err(); err != nil {
				return Running, fmt.Errorf("analysis stopped at measurement %d: %w", n, err)
			}
			phase := st.add(ms)
			a.progress(st.m.Name, n, ms, phase)
			a.h.Log.Info().Str("metric", st.m.Name).Int("n", n).Str("verdict", string(ms.Verdict)).
				Str("value", num(ms.Value)).Str("baseline", num(ms.Baseline)).Str("phase", string(phase)).Msg("analysis measurement")
		}
		phase, done := a.phase()
		if done || (phase != Running && phase != PhaseSuccessful) {
			return phase, nil
		}
		next := at.Add(d.Interval.Std())
		if timed && next.After(deadline) {
			for _, st := range a.states {
				st.timeUp()
			}
			p, _ := a.phase()
			return p, nil
		}
		if err := a.sleep(ctx, next.Sub(a.clock.Now())); err != nil {
			return Running, fmt.Errorf("analysis stopped after measurement %d: %w", n, err)
		}
	}
}

// until is when an analysis without a count stops measuring, and whether
// it has such an end: for after the first measurement's time, or else the
// step's timeout (the context's deadline) less one query's time limit, so
// that the last measurement and the verdict come before the step is cut.
func (a *analysis) until(ctx context.Context) (time.Time, bool) {
	if a.m.Count > 0 {
		return time.Time{}, false
	}
	now := a.clock.Now()
	end, timed := now.Add(a.m.For.Std()), a.m.For > 0
	if dl, ok := ctx.Deadline(); ok {
		// The deadline is on the real clock; the analysis waits by its own.
		bound := now.Add(time.Until(dl) - a.m.Timeout.Std())
		if !timed || bound.Before(end) {
			end, timed = bound, true
		}
	}
	return end, timed
}

// progress reports a measurement as it is taken, for the journal, the JSON
// events and the live view.
func (a *analysis) progress(metric string, n int, ms Measurement, phase Phase) {
	if a.h.Progress == nil {
		return
	}
	d := map[string]any{"metric": metric, "n": n, "time": ms.At.UTC().Format(time.RFC3339Nano),
		"verdict": string(ms.Verdict), "phase": string(phase)}
	if !math.IsNaN(ms.Value) {
		d["value"] = jsonFloat(ms.Value)
	}
	if !math.IsNaN(ms.Baseline) {
		d["baseline"] = jsonFloat(ms.Baseline)
	}
	if ms.Err != nil {
		d["error"] = ms.Err.Error()
	}
	a.h.Progress(d)
}

// phase is the analysis' phase so far, and whether every metric is decided.
func (a *analysis) phase() (Phase, bool) {
	p, done := PhaseSuccessful, true
	for _, st := range a.states {
		if st.phase == Running {
			done = false
		}
		p = worse(p, st.phase)
	}
	return p, done
}

func (a *analysis) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	return a.clock.Sleep(ctx, d)
}

// measure takes one measurement of mt.
func (a *analysis) measure(ctx context.Context, mt *Metric) Measurement {
	i := a.indexOf(mt)
	if a.src != nil {
		return a.measureScrape(ctx, i)
	}
	ms := Measurement{At: a.clock.Now(), Value: math.NaN(), Baseline: math.NaN()}
	v, err := a.q.Query(ctx, mt.Query, ms.At)
	if err != nil {
		ms.Verdict, ms.Err = Errored, err
		return ms
	}
	ms.Value = v
	if mt.Baseline != "" {
		b, err := a.q.Query(ctx, mt.Baseline, ms.At)
		if err != nil {
			ms.Verdict, ms.Err = Errored, fmt.Errorf("baseline: %w", err)
			return ms
		}
		ms.Baseline = b
	}
	ms.Verdict, ms.Err = a.judge(i, map[string]any{"result": ms.Value, "baseline": ms.Baseline})
	return ms
}

// measureScrape scrapes every endpoint and judges each; the measurement is
// the worst verdict among them.
func (a *analysis) measureScrape(ctx context.Context, i int) Measurement {
	ms := Measurement{At: a.clock.Now(), Value: math.NaN(), Baseline: math.NaN(), Verdict: Successful}
	rank := map[Verdict]int{Successful: 0, Inconclusive: 1, Errored: 2, Failed: 3}
	var details []string
	for _, u := range a.urls {
		v, detail, values, err := a.scrapeOne(ctx, i, u)
		if len(a.urls) > 1 {
			detail = u + ": " + detail
		}
		if err != nil {
			details = append(details, fmt.Sprintf("%s: %v", u, err))
			ms.Err = errors.Join(ms.Err, err)
		} else if detail != "" {
			details = append(details, detail)
		}
		if rank[v] > rank[ms.Verdict] {
			ms.Verdict = v
		}
		// One value when there is one endpoint and its condition read one.
		if len(a.urls) == 1 && err == nil {
			if f, ok := singleValue(values); ok {
				ms.Value = f
			}
		}
	}
	ms.Detail = strings.Join(details, "; ")
	if ms.Verdict != Errored {
		ms.Err = nil
	}
	return ms
}

func (a *analysis) scrapeOne(ctx context.Context, i int, u string) (Verdict, string, map[string]any, error) {
	r, err := a.src.Scrape(ctx, u)
	if err != nil {
		return Errored, "", nil, err
	}
	if r.Baseline && a.windowed() {
		return Errored, "", nil, fmt.Errorf("%s: first scrape, taken as the baseline of delta", u)
	}
	v, err := a.judge(i, r.Funcs())
	return v, r.Reads(), r.Values(), err
}

// singleValue is the number a condition read, when it read one.
func singleValue(values map[string]any) (float64, bool) {
	if len(values) != 1 {
		return 0, false
	}
	for _, v := range values {
		switch n := v.(type) {
		case float64:
			return n, true
		case int:
			return float64(n), true
		}
	}
	return 0, false
}

// judge evaluates metric i's conditions over names.
func (a *analysis) judge(i int, names map[string]any) (Verdict, error) {
	scope := a.scope
	scope.Extra = maps.Clone(a.scope.Extra)
	if scope.Extra == nil {
		scope.Extra = map[string]any{}
	}
	maps.Copy(scope.Extra, names)
	var s, f bool
	if p := a.success[i]; p != nil {
		ok, err := p.Bool(&scope)
		if err != nil {
			return Errored, fmt.Errorf("success: %w", err)
		}
		s = ok
	}
	if p := a.failure[i]; p != nil {
		ok, err := p.Bool(&scope)
		if err != nil {
			return Errored, fmt.Errorf("failure: %w", err)
		}
		f = ok
	}
	return judge(a.success[i] != nil, s, a.failure[i] != nil, f), nil
}

func (a *analysis) indexOf(mt *Metric) int {
	for i := range a.m.Metrics {
		if &a.m.Metrics[i] == mt {
			return i
		}
	}
	panic("analysis: a metric of another analysis")
}

// decide passes or fails the step by the phase.
func (a *analysis) decide(ctx context.Context, phase Phase, data map[string]any) (modules.Result, error) {
	reasons := a.reasons(phase)
	switch phase {
	case PhaseSuccessful:
		data["msg"] = reasons
		return modules.Result{Data: data}, nil
	case PhaseFailed, PhaseError:
		return modules.Result{Data: data}, fmt.Errorf("analysis %s: %s", strings.ToLower(string(phase)), reasons)
	}
	// Inconclusive.
	switch a.m.OnInconclusive {
	case "continue":
		data["msg"] = reasons + "; on_inconclusive: continue"
		return modules.Result{Data: data}, nil
	case "fail":
		return modules.Result{Data: data}, fmt.Errorf("analysis inconclusive (on_inconclusive: fail): %s", reasons)
	}
	// pause: --yes never answers for the operator here, since no measurement
	// said the change is good.
	if a.m.Approve != nil {
		return a.awaitApproval(ctx, reasons, data)
	}
	if a.h.Confirm == nil {
		return modules.Result{Data: data}, &modules.HoldError{Err: fmt.Errorf("analysis inconclusive, and no terminal to ask whether to go on (on_inconclusive: pause; --yes does not answer it): %s", reasons)}
	}
	ok, err := a.h.Confirm(ctx, fmt.Sprintf("Analysis inconclusive: %s. Go on as if it passed?", reasons))
	if err != nil {
		return modules.Result{Data: data}, fmt.Errorf("analysis inconclusive: asking the operator: %w", err)
	}
	data["confirmed"] = ok
	if !ok {
		return modules.Result{Data: data}, fmt.Errorf("analysis inconclusive, and the operator did not go on: %s", reasons)
	}
	data["msg"] = reasons + "; the operator went on"
	return modules.Result{Data: data}, nil
}

// awaitApproval waits for other people to let an inconclusive analysis go
// on (runbook approve) or stop it (runbook reject, or the timeout): the
// terminal and --yes play no part. A rejection wraps modules.ErrRejected,
// which stops the run and rolls the host back, exit 3.
func (a *analysis) awaitApproval(ctx context.Context, reasons string, data map[string]any) (modules.Result, error) {
	if a.h.Approve == nil {
		return modules.Result{Data: data}, &modules.HoldError{Err: fmt.Errorf("analysis inconclusive, and this run has no approval store to wait on (on_inconclusive: pause with approve): %s", reasons)}
	}
	req := a.m.Approve.Request(fmt.Sprintf("Analysis inconclusive: %s. Approve to go on as if it passed; reject to roll back.", reasons))
	data["required"] = req.Required
	data["approved"] = false
	out, err := a.h.Approve(ctx, req)
	for k, v := range out.Data {
		data[k] = v
	}
	if err != nil {
		return modules.Result{Data: data}, fmt.Errorf("analysis inconclusive (on_inconclusive: pause): %w", err)
	}
	data["approved"] = true
	data["approvers"] = out.Approvers
	data["msg"] = reasons + "; approved by " + strings.Join(out.Approvers, ", ")
	return modules.Result{Data: data}, nil
}

// reasons says why the metrics that decided the phase did: the worst ones,
// or all of them when it is Successful.
func (a *analysis) reasons(phase Phase) string {
	var out []string
	for _, st := range a.states {
		if st.phase == phase || phase == PhaseSuccessful {
			r := st.reason
			if l := st.last(); l != nil && phase != PhaseSuccessful && st.phase != PhaseError {
				r += "; last " + describe(*l)
			}
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}

// describe says what a measurement saw: "0.08 (baseline 0.01): failed".
func describe(m Measurement) string {
	var b strings.Builder
	switch {
	case m.Err != nil && m.Verdict == Errored:
		return "error: " + m.Err.Error()
	case !math.IsNaN(m.Value):
		b.WriteString("value " + num(m.Value))
	case m.Detail != "":
		b.WriteString("read " + m.Detail)
	}
	if !math.IsNaN(m.Baseline) {
		b.WriteString(" (baseline " + num(m.Baseline) + ")")
	}
	b.WriteString(": " + string(m.Verdict))
	return b.String()
}

// data is the step's result: the phase and every metric's measurements.
func (a *analysis) data(phase Phase) map[string]any {
	metrics := make([]any, len(a.states))
	for i, st := range a.states {
		metrics[i] = st.data()
	}
	out := map[string]any{"phase": string(phase), "metrics": metrics}
	if a.m.Prometheus != "" {
		out["prometheus"] = redactedURL(a.m.Prometheus)
	} else {
		out["urls"] = append([]string(nil), a.urls...)
	}
	if !a.start.IsZero() {
		out["took"] = probe.Dur(a.clock.Now().Sub(a.start).Round(time.Millisecond))
	}
	return out
}

// schedule says what the analysis takes: "6 measurements 10s apart".
func (a *analysis) schedule(ctx context.Context) string {
	n := a.m.count()
	what := plural(n, "measurement")
	_, stepTimeout := ctx.Deadline()
	switch {
	case n == 0:
		what = "measurements for " + probe.Dur(a.m.For.Std())
	case a.m.Count == 0 && stepTimeout:
		n, what = 0, "measurements until the step's timeout"
	}
	if n != 1 {
		what += " " + probe.Dur(a.m.Interval.Std()) + " apart"
	}
	if a.m.InitialDelay > 0 {
		what += " after " + probe.Dur(a.m.InitialDelay.Std())
	}
	return what
}

// redactedURL hides a password in a URL's user info.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

// num prints a measured number; "" for none.
func num(f float64) string {
	if math.IsNaN(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}
