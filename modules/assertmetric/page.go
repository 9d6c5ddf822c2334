package assertmetric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/runbookhq/runbook/modules/internal/probe"
)

// MaxPage is the largest metrics page a scrape reads. etcd's is about 200 KB;
// the largest exporters stay far below this, and a larger answer is more
// likely a wrong URL than metrics.
const MaxPage = 32 << 20

// accept asks for the classic text format first, which every exporter
// speaks and which parses fastest, and takes OpenMetrics where an exporter
// prefers it; both are parsed by Prometheus' own decoders.
const accept = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,*/*;q=0.1"

// page is one scrape of one endpoint, flattened into the series a
// Prometheus server would store: a histogram becomes NAME_bucket{le=...},
// NAME_sum and NAME_count, a summary NAME{quantile=...}, NAME_sum and
// NAME_count.
type page struct {
	series map[string][]*sample // by series name, in page order
	types  map[string]dto.MetricType
	keys   map[string]bool // series seen, to drop a repeated one
	// start is process_start_time_seconds, NaN when the page has none: a
	// change means the process restarted and its counters began again.
	start float64
}

// sample is one series of a page.
type sample struct {
	labels map[string]string
	key    string // name{labels}, sorted: identifies the series across scrapes
	value  float64
	gauge  bool // a gauge's change is a plain difference, never a reset
}

// scraper fetches pages with one client for the whole step, so that the
// connections to the endpoints are reused between samples.
type scraper struct {
	client  *http.Client
	headers map[string]string
	timeout time.Duration
	maxPage int64 // MaxPage, but for tests
	// clientCert says whether cert_file is given, for the hint when an
	// endpoint turns the client away.
	clientCert bool
}

// scrape fetches and parses url. Its errors say what went wrong; the
// caller names the URL.
func (s *scraper) scrape(ctx context.Context, url string) (*page, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	for _, k := range slices.Sorted(maps.Keys(s.headers)) {
		if strings.EqualFold(k, "Host") {
			req.Host = s.headers[k]
			continue
		}
		req.Header.Set(k, s.headers[k])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.requestError(ctx, rctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxPage+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", s.requestError(ctx, rctx, err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d, want 200 (%s)", resp.StatusCode, snippet(body))
	}
	if int64(len(body)) > s.maxPage {
		return nil, fmt.Errorf("the answer is larger than %s; is this a metrics endpoint?", size(s.maxPage))
	}
	p, err := parse(rctx, resp.Header, body)
	switch {
	case err == nil:
		return p, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case rctx.Err() != nil:
		// Prometheus' OpenMetrics parser takes seconds over a page of etcd's
		// size, its text parser milliseconds.
		return nil, fmt.Errorf("parsing the answer (Content-Type %q) took longer than the timeout (%s); raise timeout, or have the endpoint serve the text format, which parses far faster",
			contentType(resp.Header), probe.Dur(s.timeout))
	}
	return nil, err
}

// requestError says why a request failed: the step was stopped, the scrape
// ran out of time, or what the network said.
func (s *scraper) requestError(ctx, rctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case rctx.Err() != nil:
		return fmt.Errorf("no answer within %s (timeout)", probe.Dur(s.timeout))
	}
	msg := probe.HTTPError(err)
	if strings.Contains(msg, "certificate required") {
		if s.clientCert {
			msg += "; the endpoint does not take cert_file: it is not signed by a CA the endpoint trusts"
		} else {
			msg += "; the endpoint wants a client certificate: give cert_file and key_file"
		}
	}
	return fmt.Errorf("%s (scraped from the controller)", msg)
}

// parse decodes body in the format its Content-Type names, with Prometheus'
// decoders; a missing or unknown type is read as the classic text format,
// as Prometheus itself does. It stops when ctx is done.
func parse(ctx context.Context, header http.Header, body []byte) (*page, error) {
	format := expfmt.ResponseFormat(header)
	dec := expfmt.NewDecoder(bytes.NewReader(body), format)
	p := &page{series: map[string][]*sample{}, types: map[string]dto.MetricType{}, keys: map[string]bool{}, start: math.NaN()}
	for {
		// The OpenMetrics decoder works a family at a time, slowly: stop
		// between two when the scrape is out of time.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the answer (Content-Type %q) is not a metrics page: %w", contentType(header), err)
		}
		p.add(&mf)
	}
	if starts := p.series["process_start_time_seconds"]; len(starts) == 1 {
		p.start = starts[0].value
	}
	return p, nil
}

func contentType(h http.Header) string {
	ct := h.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return ct
}

// add flattens one metric family into the page's series.
func (p *page) add(mf *dto.MetricFamily) {
	name := mf.GetName()
	typ := mf.GetType()
	p.types[name] = typ
	for _, m := range mf.GetMetric() {
		labels := make(map[string]string, len(m.GetLabel())+1)
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		switch typ {
		case dto.MetricType_COUNTER:
			p.put(name, labels, "", "", m.GetCounter().GetValue(), false)
		case dto.MetricType_GAUGE:
			p.put(name, labels, "", "", m.GetGauge().GetValue(), true)
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				p.put(name, labels, "quantile", formatFloat(q.GetQuantile()), q.GetValue(), true)
			}
			p.put(name+"_sum", labels, "", "", s.GetSampleSum(), false)
			p.put(name+"_count", labels, "", "", float64(s.GetSampleCount()), false)
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			// A histogram has integer counts or float ones, never both (the
			// parsers make it so): the other getter gives 0.
			count := float64(h.GetSampleCount())
			if f := h.GetSampleCountFloat(); f != 0 {
				count = f
			}
			hasInf := false
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if f := b.GetCumulativeCountFloat(); f != 0 {
					c = f
				}
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
				p.put(name+"_bucket", labels, "le", formatFloat(b.GetUpperBound()), c, false)
			}
			if !hasInf {
				// The protobuf format leaves the +Inf bucket out: it is the count.
				p.put(name+"_bucket", labels, "le", "+Inf", count, false)
			}
			sum, cnt := "_sum", "_count"
			if typ == dto.MetricType_GAUGE_HISTOGRAM {
				sum, cnt = "_gsum", "_gcount"
			}
			p.put(name+sum, labels, "", "", h.GetSampleSum(), false)
			p.put(name+cnt, labels, "", "", count, false)
		default: // untyped, and types this module does not know: read as plain values
			p.put(name, labels, "", "", m.GetUntyped().GetValue(), false)
		}
	}
}

// put adds a series; extraName/extraValue is the le or quantile label.
func (p *page) put(name string, labels map[string]string, extraName, extraValue string, v float64, gauge bool) {
	if extraName != "" {
		labels = maps.Clone(labels)
		labels[extraName] = extraValue
	}
	s := &sample{labels: labels, value: v, gauge: gauge}
	s.key = name + formatLabels(labels)
	if p.keys[s.key] {
		// A broken exporter wrote the series twice: keep the first, as
		// Prometheus does when it ingests the page.
		return
	}
	p.keys[s.key] = true
	p.series[name] = append(p.series[name], s)
}

// formatLabels writes labels as PromQL does: {a="x",b="y"}, sorted; none is "".
func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// formatFloat writes a bound or a value as the text format does: +Inf, 0.25, 1e-05.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// size writes a byte count for a message: 32 MiB, 1024 bytes.
func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// snippet shows the start of a body in a message.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	if s == "" {
		return "empty body"
	}
	return strconv.Quote(s)
}
