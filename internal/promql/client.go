// Package promql queries a Prometheus server over its HTTP API and checks
// PromQL syntax, so that modules and expressions can judge a change by what
// the server has recorded rather than by one scrape.
package promql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Config says how to reach one Prometheus server. BearerToken and Password
// are secrets: String and every error of this package leave them out.
type Config struct {
	URL string
	// CAFile is a PEM file with the CA that signs the server's certificate;
	// empty means the system's roots. Certificates are always verified.
	CAFile string
	// CertFile and KeyFile are a client certificate, for servers that ask for one.
	CertFile, KeyFile string
	BearerToken       string
	Username          string
	Password          string
	// Timeout bounds one query, on the server and on the way; 0 is 10s.
	Timeout time.Duration
}

// String names the server without its secrets.
func (c Config) String() string {
	auth := ""
	switch {
	case c.BearerToken != "":
		auth = " (bearer token)"
	case c.Username != "":
		auth = " (basic auth as " + c.Username + ")"
	}
	return redactURL(c.URL) + auth
}

// DefaultTimeout bounds a query when Config.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Client runs queries against one server.
type Client struct {
	api     v1.API
	http    api.Client
	url     string // without user info, for messages
	timeout time.Duration
}

// New checks cfg and returns a client; it does not contact the server.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus: %q is not an http:// or https:// URL of a Prometheus server", redactURL(cfg.URL))
	}
	if cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != "") {
		return nil, errors.New("prometheus: give a bearer token or a user name and password, not both")
	}
	if u.User != nil && (cfg.BearerToken != "" || cfg.Username != "") {
		return nil, errors.New("prometheus: the URL has credentials and others are given too; give them once")
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("prometheus: ca_file: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("prometheus: ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("prometheus: a client certificate needs both cert_file and key_file")
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("prometheus: cert_file, key_file: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	var rt http.RoundTripper = tr
	switch {
	case cfg.BearerToken != "":
		rt = &authRoundTripper{next: tr, header: "Bearer " + cfg.BearerToken}
	case cfg.Username != "":
		rt = &authRoundTripper{next: tr, user: cfg.Username, pass: cfg.Password, basic: true}
	case u.User != nil:
		p, _ := u.User.Password()
		rt = &authRoundTripper{next: tr, user: u.User.Username(), pass: p, basic: true}
	}
	clean := *u
	clean.User = nil
	hc, err := api.NewClient(api.Config{Address: clean.String(), RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", clean.String(), err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{api: v1.NewAPI(hc), http: hc, url: clean.String(), timeout: timeout}, nil
}

// URL is the server's address, without credentials.
func (c *Client) URL() string { return c.url }

// Close lets go of idle connections.
func (c *Client) Close() {
	if cc, ok := c.http.(interface{ CloseIdleConnections() }); ok {
		cc.CloseIdleConnections()
	}
}

// authRoundTripper adds credentials to every request. It keeps them out of
// the request's URL, where errors would print them.
type authRoundTripper struct {
	next       http.RoundTripper
	header     string
	user, pass string
	basic      bool
}

func (a *authRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if a.basic {
		r.SetBasicAuth(a.user, a.pass)
	} else {
		r.Header.Set("Authorization", a.header)
	}
	return a.next.RoundTrip(r)
}

// Query runs an instant query at t (the zero time is now). A query that does
// not parse is refused before it is sent, with the place of the error.
func (c *Client) Query(ctx context.Context, query string, t time.Time) (*Result, error) {
	if err := Check(query); err != nil {
		return nil, err
	}
	if t.IsZero() {
		t = time.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, warn, _, err := c.api.Query(ctx, query, t, v1.WithTimeout(c.timeout))
	if err != nil {
		return nil, c.wrap(query, err)
	}
	return &Result{Value: v, Warnings: warn, Query: query}, nil
}

// Number runs an instant query that must give one number. A query that
// matches no series gives 0 when Prometheus has series of every metric
// it names: sum(rate(errors_total{code="500"}[1m])) over a service that
// never failed has no series, and means no errors. A name Prometheus has
// no series of (a typo, a target not scraped) is an error, so that it
// never passes unseen.
func (c *Client) Number(ctx context.Context, query string, t time.Time) (float64, error) {
	r, err := c.Query(ctx, query, t)
	if err != nil {
		return math.NaN(), err
	}
	n, err := r.Number()
	if !errors.Is(err, ErrNoData) {
		return n, err
	}
	names, _ := MetricNames(query)
	if len(names) == 0 {
		return math.NaN(), err
	}
	missing, merr := c.Missing(ctx, names, t)
	switch {
	case merr != nil:
		return math.NaN(), merr
	case len(missing) > 0:
		return math.NaN(), fmt.Errorf("prometheus %s: query %q: no series named %s: a misspelt name, or a target that is not scraped", c.url, shorten(query), strings.Join(missing, ", "))
	}
	return 0, nil
}

// Missing returns those of names that Prometheus has no series of at t
// (within its lookback of 5 minutes).
func (c *Client) Missing(ctx context.Context, names []string, t time.Time) ([]string, error) {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	r, err := c.Query(ctx, `count by (__name__) ({__name__=~"`+strings.Join(quoted, "|")+`"})`, t)
	if err != nil {
		return nil, err
	}
	s, err := r.Samples()
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, x := range s {
		have[x.Labels["__name__"]] = true
	}
	var missing []string
	for _, n := range names {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// Range is the window and resolution of a range query.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// QueryRange runs a range query; its result is a matrix.
func (c *Client) QueryRange(ctx context.Context, query string, r Range) (*Result, error) {
	if err := Check(query); err != nil {
		return nil, err
	}
	if r.Step <= 0 || !r.End.After(r.Start) {
		return nil, fmt.Errorf("prometheus: range query %q: want start before end and a positive step, got %s to %s step %s", shorten(query), r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), r.Step)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, warn, _, err := c.api.QueryRange(ctx, query, v1.Range{Start: r.Start, End: r.End, Step: r.Step}, v1.WithTimeout(c.timeout))
	if err != nil {
		return nil, c.wrap(query, err)
	}
	return &Result{Value: v, Warnings: warn, Query: query}, nil
}

// wrap says which server and query failed. The URL in a transport error
// has no credentials: they travel in headers only.
func (c *Client) wrap(query string, err error) error {
	var ae *v1.Error
	if errors.As(err, &ae) && ae.Detail != "" {
		return fmt.Errorf("prometheus %s: query %q: %s: %s", c.url, shorten(query), ae.Msg, ae.Detail)
	}
	return fmt.Errorf("prometheus %s: query %q: %w", c.url, shorten(query), err)
}

// Result is what a query gave.
type Result struct {
	Value    model.Value
	Warnings []string
	Query    string
}

// ErrNoData is the error of Number for a query that matched no series: an
// error rate over no requests has no value, and a rule must not read that
// as 0.
var ErrNoData = errors.New("no data: the query matched no series")

// Number is the result as one number: a scalar, or a vector of exactly one
// sample.
func (r *Result) Number() (float64, error) {
	switch v := r.Value.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch len(v) {
		case 0:
			return math.NaN(), fmt.Errorf("query %q: %w", shorten(r.Query), ErrNoData)
		case 1:
			return float64(v[0].Value), nil
		}
		labels := make([]string, 0, 3)
		for i, s := range v {
			if i == 3 {
				labels = append(labels, "...")
				break
			}
			labels = append(labels, s.Metric.String())
		}
		return math.NaN(), fmt.Errorf("query %q gave %d series, want one number (aggregate it, e.g. with sum()): %s", shorten(r.Query), len(v), strings.Join(labels, ", "))
	case nil:
		return math.NaN(), fmt.Errorf("query %q: %w", shorten(r.Query), ErrNoData)
	}
	return math.NaN(), fmt.Errorf("query %q gave a %s, want a scalar or a vector of one sample", shorten(r.Query), r.Value.Type())
}

// Sample is one series of an instant vector.
type Sample struct {
	Labels map[string]string `expr:"labels" json:"labels"`
	Value  float64           `expr:"value" json:"value"`
}

// Samples is the result as a list of series with their labels, sorted by
// labels; a scalar is one sample without labels.
func (r *Result) Samples() ([]Sample, error) {
	switch v := r.Value.(type) {
	case *model.Scalar:
		return []Sample{{Labels: map[string]string{}, Value: float64(v.Value)}}, nil
	case model.Vector:
		out := make([]Sample, len(v))
		for i, s := range v {
			out[i] = Sample{Labels: labelMap(s.Metric), Value: float64(s.Value)}
		}
		sort.Slice(out, func(i, j int) bool { return model.LabelSet(toSet(out[i].Labels)).Before(toSet(out[j].Labels)) })
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("query %q gave a %s, want an instant vector", shorten(r.Query), r.Value.Type())
}

// Point is one value of a series over time.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// Series is one series of a matrix.
type Series struct {
	Labels map[string]string `json:"labels"`
	Points []Point           `json:"points"`
}

// Matrix is the result of a range query (or an instant query over a range
// selector) as series of points.
func (r *Result) Matrix() ([]Series, error) {
	m, ok := r.Value.(model.Matrix)
	if !ok {
		if r.Value == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("query %q gave a %s, want a matrix (a range query or a range selector)", shorten(r.Query), r.Value.Type())
	}
	out := make([]Series, len(m))
	for i, s := range m {
		pts := make([]Point, len(s.Values))
		for j, p := range s.Values {
			pts[j] = Point{Time: p.Timestamp.Time(), Value: float64(p.Value)}
		}
		out[i] = Series{Labels: labelMap(s.Metric), Points: pts}
	}
	return out, nil
}

func labelMap(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}

func toSet(m map[string]string) model.LabelSet {
	out := make(model.LabelSet, len(m))
	for k, v := range m {
		out[model.LabelName(k)] = model.LabelValue(v)
	}
	return out
}

// redactURL hides the password of a URL with user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(s, "@") {
			return "(a URL that does not parse)"
		}
		return s
	}
	return u.Redacted()
}

// shorten puts a query on one line for a message.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
