// Package assertmetric is the assert-metric module: a gate over Prometheus
// metrics scraped from the controller, held now, for a while, or within a time.
package assertmetric

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
)

func init() {
	modules.Register(modules.Info{
		Name: "assert-metric",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "fail unless an expression over Prometheus metrics holds",
			Description: `Scrapes a Prometheus metrics endpoint from the controller (the machine
runbook runs on) and fails the step unless expect holds over what it read.
With urls, every endpoint is scraped and expect must hold for each of them
("on every member"); the message names the ones where it does not.

Without for and within, one scrape decides. With for, expect must hold on
every sample, interval apart, for the whole time; the step fails at the
first sample where it does not and says when it stopped holding. With
within, the step passes as soon as a sample holds and fails when none did in
time. With both, expect must first hold within the one, then keep holding
for the other. A scrape that fails (no answer, a status other than 200, not
a metrics page) is a sample where expect does not hold.

In expect, besides the step's usual names:
  metric(name [, labels])     the value of the one series of name whose
                              labels include labels; an error when there are
                              several (the message lists their labels)
  has_metric(name [, labels]) whether such a series exists
  series(name [, labels])     the matching series, each {labels, value}
  sum(name [, labels])        the sum of the matching series' values
  count(name [, labels])      how many series match
  delta(name [, labels])      how much the matching counters grew since
                              the step's first scrape (summed over them)
  quantile(q, name [, labels])        the q-quantile (0 to 1) of histogram
                                      name, from its cumulative buckets
  quantile_delta(q, name [, labels])  the same over the observations made
                                      since the step's first scrape
labels is a map of label values: {"To": "8e9e05c52164694d"}. sum and
count hide expr's own functions of those names in expect (reduce adds up a
list), and result.url is the endpoint being judged.

A name the endpoint does not export at all fails the gate, saying which
name at which URL: a typo or a missing metric never passes silently. Guard
with has_metric where absence is fine: !has_metric("x") || metric("x") == 0.
Labels that match none of the name's series are an empty set: sum, count and
delta give 0 and series an empty list, while metric and quantile, which need
a value, fail. A comparison with NaN (the quantile of a histogram without
observations) is false.

delta follows Prometheus' increase(): it adds up the growth between
consecutive scrapes, and when a counter went down, or
process_start_time_seconds changed (the process restarted), it counts the
new value as growth from zero. A series that appears after the first scrape
counts from zero too. For a gauge it is the plain difference since the first
scrape. quantile follows histogram_quantile(): linear interpolation inside
the bucket, the upper bound of the last finite bucket for ranks in +Inf;
when labels match several histograms their buckets are added, as
histogram_quantile(q, sum by (le) (...)) does.

With settle (and for, over changes), a sample where expect does not hold
does not fail the gate at once: the window starts again from a new baseline,
and the gate fails when a whole window of for can no longer end within
settle. It judges a cluster as it is from now on, after a disturbance the
gate must not count, such as members restarted by an interrupted run. With
settle equal to for, there is one window, as without it.

The first scrape of each URL is the baseline of delta and quantile_delta:
an expression that uses them needs for or within, and is judged from the
next sample on. With for alone, for counts from the baseline, so it is the
window the changes are measured over. A histogram without observations in
the window has no quantile (NaN, so comparisons fail); where a quiet window
is fine, say so:
  delta("h_count") == 0 || quantile_delta(0.99, "h") < 0.01

The endpoint is asked for the classic text format, which every Prometheus
client library serves; an answer in OpenMetrics is parsed as such, by
Prometheus' OpenMetrics parser, which needs seconds for a page of etcd's
size: raise timeout for such an endpoint.

Certificates are always verified: give ca_file for a private CA, and
cert_file and key_file where the endpoint wants a client certificate (etcd's
client URL with --client-cert-auth). Files are read on the controller,
relative to the runbook's folder.

With prometheus instead of url or urls, nothing is scraped: expect asks
that server with promql("..."), which gives the one number a PromQL query
evaluates to now (a scalar, or a vector of one sample: wrap it in sum()),
and for, within and interval work as over a scrape. The PromQL is parsed
when the runbook loads. A query that matches no series reads 0 when the
server has series of every metric it names, and fails when a name has
none (a misspelt name never passes). bearer_token, or username and
password, authenticate to the server; they are secrets.

In --check the endpoints are scraped once: a gate that does not hold now
fails, except one with within, which reports what it would wait for, and
one over changes, which only shows that the endpoints answer.`,
			Example: `- name: member is back and stable
  assert-metric:
    url: 'http://{{ host.addr }}:2381/metrics'
    expect: 'metric("etcd_server_has_leader") == 1'
    for: 20s
- name: every member has a leader and few leader changes
  assert-metric:
    urls:
      - http://10.0.0.11:2381/metrics
      - http://10.0.0.12:2381/metrics
      - http://10.0.0.13:2381/metrics
    expect: >-
      metric("etcd_server_has_leader") == 1
      && delta("etcd_server_leader_changes_seen_total") <= 1
      && (delta("etcd_disk_wal_fsync_duration_seconds_count") == 0
          || quantile_delta(0.99, "etcd_disk_wal_fsync_duration_seconds") < 0.01)
    for: 60s
    interval: 5s
- name: the new binary serves
  assert-metric:
    url: https://10.0.0.11:2379/metrics
    ca_file: pki/etcd-ca.pem
    cert_file: pki/runbook.pem
    key_file: pki/runbook-key.pem
    expect: 'has_metric("etcd_server_version", {"server_version": "3.7.3"})'
    within: 60s
- name: no member saw a failed proposal for a minute, by Prometheus
  assert-metric:
    prometheus: http://127.0.0.1:19090
    expect: 'promql("sum(increase(etcd_server_proposals_failed_total[1m]))") == 0'
    for: 60s
    interval: 10s`,
		},
	})
}

// Module holds the assert-metric module's arguments.
type Module struct {
	URL      string            `yaml:"url" doc:"metrics endpoint to scrape from the controller, http:// or https://"`
	URLs     []string          `yaml:"urls" doc:"several endpoints instead of url: expect must hold for each"`
	Expect   arg.Expr          `yaml:"expect" runbook:"required" doc:"expression over metric(), delta(), quantile() ... that must hold"`
	For      arg.Duration      `yaml:"for" doc:"expect must hold on every sample for this long"`
	Within   arg.Duration      `yaml:"within" doc:"expect must come to hold within this time (then hold for for, when given)"`
	Settle   arg.Duration      `yaml:"settle" doc:"with for over changes: a sample where expect does not hold starts the window again, until a whole window can no longer end within this time"`
	Interval arg.Duration      `yaml:"interval" default:"1s" doc:"with for or within: time between two samples"`
	Timeout  arg.Duration      `yaml:"timeout" default:"5s" doc:"time limit of one scrape: the request and parsing the answer"`
	Headers  map[string]string `yaml:"headers" doc:"request headers, such as Authorization"`
	CAFile   string            `yaml:"ca_file" doc:"PEM file on the controller, relative to the runbook's folder, with the CA that signs the endpoint's certificate"`
	CertFile string            `yaml:"cert_file" doc:"PEM client certificate for endpoints that ask for one (with key_file)"`
	KeyFile  string            `yaml:"key_file" doc:"PEM private key of cert_file"`
	// The Prometheus source: expect calls promql() against this server.
	Prometheus  string `yaml:"prometheus" doc:"URL of a Prometheus server to query instead of scraping: expect calls promql(\"...\")"`
	BearerToken string `yaml:"bearer_token" doc:"with prometheus: token sent as Authorization: Bearer (a secret)"`
	Username    string `yaml:"username" doc:"with prometheus: user name for basic auth"`
	Password    string `yaml:"password" doc:"with prometheus: password for basic auth (a secret)"`

	// clock is the time the gate waits by; nil is the real one. Tests set a
	// fake one so that for and within run without waiting.
	clock clock
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// endpoints returns url or urls, whichever is given.
func (m *Module) endpoints() []string {
	if m.URL != "" {
		return []string{m.URL}
	}
	return m.URLs
}

// Validate checks that one of url and urls is given, and that the other
// arguments fit them.
func (m *Module) Validate() error {
	if m.Prometheus != "" {
		return m.validatePrometheus()
	}
	if m.BearerToken != "" || m.Username != "" || m.Password != "" {
		return &modules.FieldError{Field: "bearer_token", Msg: "bearer_token, username and password are for prometheus; a scrape sends headers"}
	}
	switch {
	case m.URL == "" && m.URLs == nil:
		return errors.New("no endpoint given; give url, or urls for several, or prometheus to query a server")
	case m.URL != "" && m.URLs != nil:
		return &modules.FieldError{Field: "urls", Msg: "url is also given; give one endpoint as url or several as urls"}
	case m.URLs != nil && len(m.URLs) == 0:
		return &modules.FieldError{Field: "urls", Msg: "is an empty list; give the endpoints to scrape"}
	}
	field := "url"
	if m.URL == "" {
		field = "urls"
	}
	seen := map[string]bool{}
	https, templated := false, false
	for _, u := range m.endpoints() {
		if err := argcheck.URL(u); err != nil {
			return &modules.FieldError{Field: field, Msg: err.Error()}
		}
		if seen[u] {
			return &modules.FieldError{Field: field, Msg: fmt.Sprintf("%q is given twice", u)}
		}
		seen[u] = true
		https = https || strings.HasPrefix(u, "https://")
		templated = templated || argcheck.Templated(u)
	}
	if m.Expect.Src == "" {
		return &modules.FieldError{Field: "expect", Msg: "is required: the expression that must hold, such as metric(\"etcd_server_has_leader\") == 1"}
	}
	if m.For == 0 && m.Within == 0 {
		if m.Interval != 0 {
			return &modules.FieldError{Field: "interval", Msg: "is the time between samples of for and within, and neither is given"}
		}
		if f := windowFunc(m.Expect.Program); f != "" {
			return &modules.FieldError{Field: "expect", Msg: fmt.Sprintf("uses %s, which measures changes since the step's first scrape, and without for or within there is no later one: add for or within", f)}
		}
	}
	if m.Settle != 0 {
		switch {
		case m.For == 0:
			return &modules.FieldError{Field: "settle", Msg: "is how long a window of for may take to hold, and for is not given"}
		case m.Within != 0:
			return &modules.FieldError{Field: "settle", Msg: "cannot go with within; give for and settle to wait for a whole window that holds"}
		case m.Settle < m.For:
			return &modules.FieldError{Field: "settle", Msg: fmt.Sprintf("%s is shorter than for (%s), so no window could end within it; give at least %s", m.Settle, m.For, m.For)}
		case m.Expect.Program != nil && windowFunc(m.Expect.Program) == "":
			return &modules.FieldError{Field: "settle", Msg: "restarts a window over changes, and expect reads none (no delta or quantile_delta); use within to wait for it to hold"}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		if k == "" || strings.ContainsAny(k, " \t:\r\n") {
			return &modules.FieldError{Field: "headers", Msg: fmt.Sprintf("%q is not a header name", k)}
		}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		if m.CertFile == "" {
			return &modules.FieldError{Field: "key_file", Msg: "is the key of a client certificate; give cert_file too"}
		}
		return &modules.FieldError{Field: "cert_file", Msg: "needs its private key; give key_file too"}
	}
	if !https && !templated {
		for _, f := range []struct{ field, value string }{{"ca_file", m.CAFile}, {"cert_file", m.CertFile}} {
			if f.value != "" {
				return &modules.FieldError{Field: f.field, Msg: "is only used for https:// URLs"}
			}
		}
	}
	return nil
}

// windowFunc returns the first function p calls that needs a baseline
// scrape (delta, quantile_delta), or "". Validate can tell only once the
// loader has compiled the expression (p is then not nil).
func windowFunc(p *eval.Program) string {
	for _, n := range p.Names() {
		if n == "delta" || n == "quantile_delta" {
			return n
		}
	}
	return ""
}

// ExprNames declares the metric functions for expect, so that a call with
// arguments of the wrong type is a load error.
func (m *Module) ExprNames(field string) map[string]any {
	if field != "expect" {
		return nil
	}
	return map[string]any{
		"metric":         (metricFunc)(nil),
		"has_metric":     (func(string, ...map[string]any) (bool, error))(nil),
		"series":         (func(string, ...map[string]any) ([]Series, error))(nil),
		"sum":            (metricFunc)(nil),
		"count":          (func(string, ...map[string]any) (int, error))(nil),
		"delta":          (metricFunc)(nil),
		"quantile":       (quantileFunc)(nil),
		"quantile_delta": (quantileFunc)(nil),
	}
}

type (
	metricFunc   = func(name string, labels ...map[string]any) (float64, error)
	quantileFunc = func(q float64, name string, labels ...map[string]any) (float64, error)
)

// Series is one series as series() gives it to expressions.
type Series struct {
	Labels map[string]string `expr:"labels"`
	Value  float64           `expr:"value"`
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
	_ modules.ExprNamer = (*Module)(nil)
)

// validatePrometheus checks the arguments of the Prometheus source.
func (m *Module) validatePrometheus() error {
	switch {
	case m.URL != "" || m.URLs != nil:
		return &modules.FieldError{Field: "prometheus", Msg: "url or urls is also given; give prometheus to query a server, or url/urls to scrape endpoints"}
	case m.Expect.Src == "":
		return &modules.FieldError{Field: "expect", Msg: "is required: the expression that must hold, such as promql(\"sum(up{job=\\\"etcd\\\"})\") == 3"}
	case m.Settle != 0:
		return &modules.FieldError{Field: "settle", Msg: "restarts a window of delta over scrapes; with prometheus, write the window in PromQL (increase(x[1m]))"}
	case len(m.Headers) > 0:
		return &modules.FieldError{Field: "headers", Msg: "are for a scrape; prometheus takes bearer_token, or username and password"}
	case m.BearerToken != "" && m.Username != "":
		return &modules.FieldError{Field: "bearer_token", Msg: "username is also given; give a bearer token or basic auth, not both"}
	case (m.Username == "") != (m.Password == ""):
		return &modules.FieldError{Field: "username", Msg: "basic auth needs both username and password"}
	case (m.CertFile == "") != (m.KeyFile == ""):
		return &modules.FieldError{Field: "cert_file", Msg: "a client certificate needs both cert_file and key_file"}
	case m.For == 0 && m.Within == 0 && m.Interval != 0:
		return &modules.FieldError{Field: "interval", Msg: "is the time between samples of for and within, and neither is given"}
	}
	if err := argcheck.URL(m.Prometheus); err != nil {
		return &modules.FieldError{Field: "prometheus", Msg: err.Error()}
	}
	if m.Expect.Program != nil {
		for _, n := range m.Expect.Program.Names() {
			if _, scrape := m.ExprNames("expect")[n]; scrape {
				return &modules.FieldError{Field: "expect", Msg: fmt.Sprintf("calls %s(), which reads a scrape (url, urls); with prometheus, ask the server with promql(\"...\")", n)}
			}
		}
	}
	return nil
}
