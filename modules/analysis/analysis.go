// Package analysis is the analysis module: measurements of metrics at an
// interval, each judged successful, failed or inconclusive by a success and
// a failure condition, with limits that decide the step, as Argo Rollouts'
// AnalysisTemplate does for Kubernetes.
package analysis

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/promql"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/assertmetric"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
)

func init() {
	modules.Register(modules.Info{
		Name: "analysis",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "judge a change by measurements of metrics, as a canary analysis",
			Description: `Takes count measurements of each metric, interval apart, after
initial_delay, and judges each one with the metric's success and failure
conditions. With count 0 (or no count) and for, it measures every interval
for that long; with neither, until the step's timeout (less one query's
timeout, so the verdict comes first), or once when the step has none. A
measurement that could not be taken (an error) does not count towards
count, as in Argo Rollouts: errors delay the verdict until
consecutive_error_limit says the metric is in Error. A metric measured for
a time that was never measured, only errors, is in Error too. The
measurement after an error is taken at the next interval, as any other
(Argo waits 10s): a step's timeout then bounds how long errors can last.

The source is a Prometheus server (prometheus: its URL; each metric's query and baseline are PromQL), or metrics endpoints scraped from
the controller (url or urls, as assert-metric reads them).

Each metric in metrics has:
  name                     what the metric is called in messages and results
  query                    PromQL that gives one number: a scalar or a
                           vector of one sample (wrap it in sum()); in
                           success and failure it is result
  baseline                 PromQL measured at the same time over the same
                           window, such as the same rate on the host's peers;
                           in success and failure it is baseline
  success                  expression that holds for a good measurement
  failure                  expression that holds for a bad one
  failure_limit            failed measurements tolerated (default 0)
  inconclusive_limit       inconclusive measurements tolerated (default 0)
  consecutive_error_limit  measurements in a row that could not be taken
                           (a query error, Prometheus down, no data) before
                           the metric is in Error (default 4)

A measurement is failed when failure holds, successful when success holds
and failure does not, and inconclusive when neither does. With only success
given, a measurement that misses it is failed; with only failure given, one
that misses it is successful. A query that gives several series is an
error. One that gives none reads 0 when Prometheus has series of every
metric it names (no series of 500s is no errors), and is an error when a
name has none at all (a misspelt name, a target not scraped). A comparison
with NaN (0/0: a rate over no requests) is false.

A metric is Failed when its failed measurements exceed failure_limit, and
the step fails at once, without waiting for the remaining measurements. It
is in Error when its errors in a row exceed consecutive_error_limit, which
fails the step too, and Inconclusive when its inconclusive measurements
exceed inconclusive_limit. Otherwise it is Successful after count
measurements that could be taken: as in Argo Rollouts, a measurement that
errs does not count, and the next one is taken an interval later.

When a metric is Inconclusive, on_inconclusive decides: fail fails the step;
continue passes it, saying so; pause asks the operator on a terminal whether
to go on. --yes does not answer it: without a terminal the host stops, is
rolled back, and the run exits 3 (stopped) rather than 1 when nothing else
failed.

With approve (required, self, timeout, as pause's approve), pause waits for
other people instead of asking the terminal: 'runbook approve RUN_ID --step
NAME' goes on as if the analysis passed; 'runbook reject' (or no decision
within timeout) fails the step as a rejection: the run stops, the host is
rolled back, exit 3. Every decision is journaled with who, where, when and
why. The step's timeout, if it has one, bounds the wait too (a step cut by
its timeout fails). Approvals are only waited for when the step says
approve: a run always has a store to wait on, and an analysis that silently
waited an hour for someone who was never told would be worse than stopping.

Over a scrape (url or urls), metrics have no query: success and failure call
assert-metric's functions (metric, sum, count, delta, quantile,
quantile_delta, has_metric, series) over each endpoint, and the first scrape
of each endpoint, before initial_delay, is the baseline of delta. With urls,
a measurement is the worst of its endpoints' verdicts.

Every measurement (its time, value, baseline and verdict) is in the step's
result, under metrics[].measurements, which the journal and the JSON events
keep, and is logged as it is taken.

The Prometheus server's certificate is always verified (ca_file for a
private CA). bearer_token and password are secrets: pass them from the
vault or -e, they never reach logs or the journal's messages.`,
			Example: `- name: canary analysis
  analysis:
    prometheus: http://127.0.0.1:9090
    interval: 10s
    count: 6
    on_inconclusive: fail
    metrics:
      - name: error-rate
        query: 'sum(rate(http_requests_total{instance="{{ host.addr }}:8080",code=~"5.."}[1m])) / sum(rate(http_requests_total{instance="{{ host.addr }}:8080"}[1m]))'
        baseline: 'sum(rate(http_requests_total{instance!="{{ host.addr }}:8080",code=~"5.."}[1m])) / sum(rate(http_requests_total{instance!="{{ host.addr }}:8080"}[1m]))'
        success: 'result <= max(baseline * 1.5, 0.001)'
        failure: 'result > 0.05'
        failure_limit: 0
        inconclusive_limit: 1
        consecutive_error_limit: 4
- name: latency of the canary, decided by people when inconclusive
  analysis:
    prometheus: http://127.0.0.1:9090
    count: 6
    on_inconclusive: pause
    approve: { required: 1, self: false, timeout: 30m }
    metrics:
      - name: p99-latency
        query: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{instance="{{ host.addr }}:8080"}[1m])))'
        success: 'result < 0.25'
        failure: 'result > 1'
- name: no errors served, over a scrape
  analysis:
    url: 'http://{{ host.addr }}:8080/metrics'
    interval: 5s
    count: 4
    metrics:
      - name: errors
        failure: 'delta("http_requests_total", {"code": "500"}) > 0'`,
		},
	})
}

// Module holds the analysis module's arguments.
type Module struct {
	Prometheus     string            `yaml:"prometheus" doc:"URL of the Prometheus server to query (or url/urls to scrape instead)"`
	URL            string            `yaml:"url" doc:"metrics endpoint to scrape from the controller instead of querying Prometheus"`
	URLs           []string          `yaml:"urls" doc:"several endpoints to scrape: each measurement is the worst of theirs"`
	Interval       arg.Duration      `yaml:"interval" default:"10s" doc:"time between two measurements"`
	Count          int               `yaml:"count" doc:"judged measurements of each metric (errors do not count); 0: as many as fit in for, else in the step's timeout, else 1"`
	For            arg.Duration      `yaml:"for" doc:"with count 0: measure every interval for this long"`
	InitialDelay   Delay             `yaml:"initial_delay" doc:"wait this long before the first measurement"`
	OnInconclusive string            `yaml:"on_inconclusive" default:"pause" doc:"when a metric is inconclusive: pause (ask the operator; without a terminal stop, exit 3), fail, or continue"`
	Metrics        []Metric          `yaml:"metrics" runbook:"required" doc:"the metrics to measure: name, query, baseline, success, failure and their limits"`
	Timeout        arg.Duration      `yaml:"timeout" default:"10s" doc:"time limit of one query or scrape"`
	CAFile         string            `yaml:"ca_file" doc:"PEM file on the controller, relative to the runbook's folder, with the CA of the server's certificate"`
	CertFile       string            `yaml:"cert_file" doc:"PEM client certificate for servers that ask for one (with key_file)"`
	KeyFile        string            `yaml:"key_file" doc:"PEM private key of cert_file"`
	BearerToken    string            `yaml:"bearer_token" doc:"token sent to Prometheus as Authorization: Bearer (a secret)"`
	Username       string            `yaml:"username" doc:"user name for basic auth to Prometheus"`
	Password       string            `yaml:"password" doc:"password for basic auth to Prometheus (a secret)"`
	Headers        map[string]string `yaml:"headers" doc:"request headers of a scrape (url, urls)"`
	// Approve is a section: nil when the step has no approve: key.
	Approve *Approve `yaml:"approve" doc:"with on_inconclusive: pause, wait for approvals by other people (runbook approve) instead of asking the terminal; --yes does not pass it"`

	// clock is what the analysis waits by; nil is the real one.
	clock clock
	// querier replaces the Prometheus client in tests.
	querier querier
}

// Approve is the approve: section: who may let an inconclusive analysis go
// on, as pause's approve: says it.
type Approve = modules.ApproveArgs

// DefaultApprovalTimeout is approve.timeout when it is not given.
const DefaultApprovalTimeout = modules.DefaultApprovalTimeout

// Metric is one metric of an analysis.
type Metric struct {
	Name                  string   `yaml:"name" runbook:"required" doc:"name of the metric in messages and results"`
	Query                 string   `yaml:"query" doc:"PromQL giving one number, result in the conditions"`
	Baseline              string   `yaml:"baseline" doc:"PromQL measured at the same time, baseline in the conditions"`
	Success               arg.Expr `yaml:"success" doc:"expression that holds for a good measurement"`
	Failure               arg.Expr `yaml:"failure" doc:"expression that holds for a bad measurement"`
	FailureLimit          int      `yaml:"failure_limit" doc:"failed measurements tolerated"`
	InconclusiveLimit     int      `yaml:"inconclusive_limit" doc:"inconclusive measurements tolerated"`
	ConsecutiveErrorLimit *int     `yaml:"consecutive_error_limit" doc:"measurements in a row that could not be taken before the metric is in Error (default 4)"`
}

// DefaultConsecutiveErrorLimit is Argo Rollouts' default.
const DefaultConsecutiveErrorLimit = 4

func (m *Metric) errorLimit() int {
	if m.ConsecutiveErrorLimit == nil {
		return DefaultConsecutiveErrorLimit
	}
	return *m.ConsecutiveErrorLimit
}

// DecodeNode decodes a metric strictly and checks the syntax of its PromQL
// where it is in the file, so that an error points at its line and column.
// A query with {{ }} outside its quoted strings is checked once rendered,
// when the step runs (the decoder sees it again then).
func (m *Metric) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	type plain Metric
	d.DecodeValue(n, (*plain)(m), ds)
	n = arg.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := arg.Resolve(n.Content[i]), arg.Resolve(n.Content[i+1])
		if k == nil || (k.Value != "query" && k.Value != "baseline") || v == nil || v.Kind != yaml.ScalarNode {
			continue
		}
		var err error
		if d.OnTemplate != nil && arg.IsTemplateScalar(v) && (d.Unrendered == nil || d.Unrendered(v)) {
			_, err = promql.CheckTemplated(v.Value)
		} else {
			err = promql.Check(v.Value)
		}
		var se *promql.SyntaxError
		switch {
		case !errors.As(err, &se):
		case d.OnTemplate == nil && strings.Contains(string(d.Source), "{{"):
			// A rendered value when the step runs: its text is not the
			// file's, so the place is the value's and the message shows it.
			_, col := promql.LineCol(se.Query, se.Offset)
			ds.Errorf(d.ValuePos(v), "%s.%s: PromQL syntax error in the rendered query %q at column %d: %s", d.Path(), k.Value, se.Query, col, se.Msg)
		default:
			ds.Errorf(queryPos(d, v, se.Offset), "%s.%s: PromQL syntax error: %s", d.Path(), k.Value, se.Msg)
		}
	}
}

// queryPos is the file position of byte offset off in scalar n's value.
func queryPos(d *arg.Decoder, n *yaml.Node, off int) diag.Pos {
	runes := len([]rune(n.Value[:min(off, len(n.Value))]))
	if at := d.ValuePositions(n); len(at) > 0 {
		return at[min(runes, len(at)-1)]
	}
	p := d.ValuePos(n)
	line, col := promql.LineCol(n.Value, off)
	if line == 1 {
		p.Col += col - 1
	} else {
		p.Line += line - 1
		p.Col += col - 1
	}
	return p
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// count is how many measurements each metric takes; 0 means as many as fit
// in For (or the step's timeout, which Run sees).
func (m *Module) count() int {
	if m.Count == 0 && m.For == 0 {
		return 1
	}
	return m.Count
}

// scrapeNames are the functions the conditions see over a scrape.
var scrapeNames = assertmetric.FuncTypes()

// ExprNames declares result and baseline (numbers) and the scrape functions
// for success and failure.
func (m *Module) ExprNames(field string) map[string]any {
	if field != "success" && field != "failure" {
		return nil
	}
	names := map[string]any{"result": float64(0), "baseline": float64(0)}
	for k, v := range scrapeNames {
		names[k] = v
	}
	return names
}

// Validate checks the source, the schedule and each metric.
func (m *Module) Validate() error {
	sources := 0
	for _, given := range []bool{m.Prometheus != "", m.URL != "", m.URLs != nil} {
		if given {
			sources++
		}
	}
	switch {
	case sources == 0:
		return errors.New("no source given; give prometheus (a server's URL), or url or urls to scrape")
	case sources > 1:
		return errors.New("give one source: prometheus, url or urls")
	case m.URLs != nil && len(m.URLs) == 0:
		return &modules.FieldError{Field: "urls", Msg: "is an empty list; give the endpoints to scrape"}
	}
	for _, f := range []struct {
		field string
		urls  []string
	}{{"prometheus", []string{m.Prometheus}}, {"url", []string{m.URL}}, {"urls", m.URLs}} {
		for _, u := range f.urls {
			if u == "" && f.field != "urls" {
				continue
			}
			if err := argcheck.URL(u); err != nil {
				return &modules.FieldError{Field: f.field, Msg: err.Error()}
			}
		}
	}
	scrape := m.Prometheus == ""
	if scrape && (m.BearerToken != "" || m.Username != "" || m.Password != "") {
		return &modules.FieldError{Field: "bearer_token", Msg: "bearer_token, username and password are for prometheus; a scrape sends headers"}
	}
	if !scrape && len(m.Headers) > 0 {
		return &modules.FieldError{Field: "headers", Msg: "are for a scrape (url, urls); prometheus takes bearer_token or username and password"}
	}
	if m.BearerToken != "" && m.Username != "" {
		return &modules.FieldError{Field: "bearer_token", Msg: "username is also given; give a bearer token or basic auth, not both"}
	}
	if (m.Username == "") != (m.Password == "") {
		return &modules.FieldError{Field: "username", Msg: "basic auth needs both username and password"}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		return &modules.FieldError{Field: "cert_file", Msg: "a client certificate needs both cert_file and key_file"}
	}
	switch {
	case m.Count < 0:
		return &modules.FieldError{Field: "count", Msg: fmt.Sprintf("is %d; give how many measurements to take, at least 1", m.Count)}
	case m.Count > 0 && m.For > 0:
		return &modules.FieldError{Field: "for", Msg: "count is also given; give count, or count 0 and for to measure for a time"}
	case m.Interval < 0 || m.InitialDelay < 0 || m.For < 0 || m.Timeout < 0:
		return errors.New("interval, initial_delay, for and timeout must not be negative")
	}
	switch m.OnInconclusive {
	case "", "pause", "fail", "continue":
	default:
		return &modules.FieldError{Field: "on_inconclusive", Msg: fmt.Sprintf("is %q; give pause, fail or continue", m.OnInconclusive)}
	}
	if a := m.Approve; a != nil {
		switch {
		case m.OnInconclusive != "" && m.OnInconclusive != "pause":
			return &modules.FieldError{Field: "approve", Msg: fmt.Sprintf("is waited for when on_inconclusive is pause, and it is %s; remove approve or set on_inconclusive: pause", m.OnInconclusive)}
		}
		if err := a.Validate(); err != nil {
			return err
		}
	}
	if len(m.Metrics) == 0 {
		return &modules.FieldError{Field: "metrics", Msg: "is empty; give at least one metric with a name and a success or failure condition"}
	}
	seen := map[string]bool{}
	for i, mt := range m.Metrics {
		at := fmt.Sprintf("metrics[%d]", i)
		if mt.Name != "" {
			at = fmt.Sprintf("metric %q", mt.Name)
		}
		fail := func(msg string) error { return &modules.FieldError{Field: "metrics", Msg: at + ": " + msg} }
		switch {
		case strings.TrimSpace(mt.Name) == "":
			return fail("has no name")
		case seen[mt.Name]:
			return fail("is given twice; give each metric its own name")
		case mt.Success.Src == "" && mt.Failure.Src == "":
			return fail("has neither success nor failure; give at least one condition, such as success: 'result < 0.01'")
		case mt.FailureLimit < 0 || mt.InconclusiveLimit < 0 || mt.errorLimit() < 0:
			return fail("limits must not be negative")
		case !scrape && mt.Query == "":
			return fail("has no query; give the PromQL whose value is result")
		case scrape && (mt.Query != "" || mt.Baseline != ""):
			return fail("query and baseline are PromQL for prometheus; over a scrape, success and failure call metric(), delta() ... themselves")
		}
		seen[mt.Name] = true
		for _, e := range []*arg.Expr{&mt.Success, &mt.Failure} {
			if e.Program == nil {
				continue
			}
			for _, n := range e.Program.Names() {
				if _, isScrape := scrapeNames[n]; isScrape && !scrape {
					return fail(fmt.Sprintf("calls %s(), which reads a scrape (url, urls); with prometheus, put the PromQL in query and compare result", n))
				}
				if scrape && n == "result" {
					return fail("reads result, the value of a query; over a scrape, read metrics with metric(), delta() ...")
				}
				if n == "baseline" && mt.Baseline == "" {
					return fail("reads baseline, and no baseline query is given")
				}
			}
		}
	}
	return nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.ExprNamer = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ arg.NodeDecoder   = (*Metric)(nil)
	_                   = eval.Bool
)
