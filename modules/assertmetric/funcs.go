package assertmetric

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/runbookhq/runbook/internal/diag"
)

// usageError is a call that can never succeed, whatever the endpoint
// answers (a quantile of 1.5, a label value that is not a string): the gate
// fails at once instead of waiting out within.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usage(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// tracker follows one endpoint's series across the scrapes of a step, for
// delta and quantile_delta. Its first scrape is the baseline.
type tracker struct {
	started bool
	start   float64            // process_start_time_seconds of the last scrape
	last    map[string]float64 // series key → value at the last scrape
	base    map[string]float64 // gauges: value at the baseline
	inc     map[string]float64 // series key → growth since the baseline
	resets  int                // restarts seen
}

func newTracker() *tracker {
	return &tracker{last: map[string]float64{}, base: map[string]float64{}, inc: map[string]float64{}}
}

// observe adds a scrape. Counters add up their growth between consecutive
// scrapes, as Prometheus' increase() does: when a counter went down, or the
// process start time changed, the process restarted and its new value is
// all growth since then. A series first seen after the baseline counts from
// zero, as client libraries create labelled counters on first use. It
// reports whether the process restarted since the previous scrape.
func (t *tracker) observe(p *page) (restarted bool) {
	if !t.started {
		t.started = true
		t.start = p.start
		for _, ss := range p.series {
			for _, s := range ss {
				t.last[s.key] = s.value
				t.inc[s.key] = 0
				if s.gauge {
					t.base[s.key] = s.value
				}
			}
		}
		return false
	}
	// NaN != NaN: a page without the start time never signals a restart here.
	restarted = !math.IsNaN(p.start) && !math.IsNaN(t.start) && p.start != t.start
	if restarted {
		t.resets++
	}
	t.start = p.start
	for _, ss := range p.series {
		for _, s := range ss {
			prev, seen := t.last[s.key]
			switch {
			case s.gauge:
				t.inc[s.key] = s.value - t.base[s.key]
			case !seen, restarted, s.value < prev:
				t.inc[s.key] += s.value
			default:
				t.inc[s.key] += s.value - prev
			}
			t.last[s.key] = s.value
		}
	}
	return restarted
}

// reader evaluates the metric functions against one endpoint's page and
// remembers what they read, for the result and for messages.
type reader struct {
	p     *page
	t     *tracker
	reads []read
	index map[string]int
}

type read struct {
	key   string
	value any // float64, int or bool
}

func newReader(p *page, t *tracker) *reader {
	return &reader{p: p, t: t, index: map[string]int{}}
}

func (r *reader) record(key string, v any) {
	if i, ok := r.index[key]; ok {
		r.reads[i].value = v
		return
	}
	r.index[key] = len(r.reads)
	r.reads = append(r.reads, read{key, v})
}

// funcs returns the functions expect calls, bound to r.
func (r *reader) funcs() map[string]any {
	return map[string]any{
		"metric":         metricFunc(r.metric),
		"has_metric":     r.hasMetric,
		"series":         r.seriesOf,
		"sum":            metricFunc(r.sum),
		"count":          r.count,
		"delta":          metricFunc(r.delta),
		"quantile":       quantileFunc(r.quantile),
		"quantile_delta": quantileFunc(r.quantileDelta),
	}
}

func (r *reader) metric(name string, labels ...map[string]any) (float64, error) {
	sel, ss, err := r.selected("metric", name, labels)
	if err != nil {
		return 0, err
	}
	s, err := r.one(name, sel, ss)
	if err != nil {
		return 0, err
	}
	r.record(s.key, s.value)
	return s.value, nil
}

func (r *reader) hasMetric(name string, labels ...map[string]any) (bool, error) {
	sel, err := selector("has_metric", labels)
	if err != nil {
		return false, err
	}
	ss := r.p.series[name]
	if ss == nil {
		// A histogram or summary is known by its family name too, so that
		// has_metric guards quantile.
		switch r.p.types[name] {
		case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
			ss = r.p.series[name+"_count"]
		}
	}
	ok := len(filter(ss, sel)) > 0
	r.record("has_metric("+name+formatLabels(sel)+")", ok)
	return ok, nil
}

func (r *reader) seriesOf(name string, labels ...map[string]any) ([]Series, error) {
	sel, ss, err := r.selected("series", name, labels)
	if err != nil {
		return nil, err
	}
	out := make([]Series, len(ss))
	for i, s := range ss {
		out[i] = Series{Labels: maps.Clone(s.labels), Value: s.value}
		r.record(s.key, s.value)
	}
	if len(ss) == 0 {
		r.record("count("+name+formatLabels(sel)+")", 0)
	}
	return out, nil
}

func (r *reader) sum(name string, labels ...map[string]any) (float64, error) {
	sel, ss, err := r.selected("sum", name, labels)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, s := range ss {
		total += s.value
	}
	r.record("sum("+name+formatLabels(sel)+")", total)
	return total, nil
}

func (r *reader) count(name string, labels ...map[string]any) (int, error) {
	sel, ss, err := r.selected("count", name, labels)
	if err != nil {
		return 0, err
	}
	r.record("count("+name+formatLabels(sel)+")", len(ss))
	return len(ss), nil
}

func (r *reader) delta(name string, labels ...map[string]any) (float64, error) {
	sel, ss, err := r.selected("delta", name, labels)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, s := range ss {
		total += r.t.inc[s.key]
	}
	r.record("delta("+name+formatLabels(sel)+")", total)
	return total, nil
}

func (r *reader) quantile(q float64, name string, labels ...map[string]any) (float64, error) {
	return r.quantileOf("quantile", q, name, labels, func(s *sample) float64 { return s.value })
}

func (r *reader) quantileDelta(q float64, name string, labels ...map[string]any) (float64, error) {
	return r.quantileOf("quantile_delta", q, name, labels, func(s *sample) float64 { return r.t.inc[s.key] })
}

// quantileOf computes the q-quantile of histogram name from the buckets'
// counts as count gives them (now, or grown since the baseline).
func (r *reader) quantileOf(fn string, q float64, name string, labels []map[string]any, count func(*sample) float64) (float64, error) {
	if math.IsNaN(q) || q < 0 || q > 1 {
		return 0, usage("%s: q must be from 0 to 1 (0.99 for the 99th percentile), got %s", fn, formatFloat(q))
	}
	sel, err := selector(fn, labels)
	if err != nil {
		return 0, err
	}
	name = strings.TrimSuffix(name, "_bucket")
	buckets := r.p.series[name+"_bucket"]
	if buckets == nil {
		if t, ok := r.p.types[name]; ok && t != dto.MetricType_HISTOGRAM {
			hint := ""
			if t == dto.MetricType_SUMMARY {
				hint = fmt.Sprintf("; a summary exports its quantiles: metric(%q, {\"quantile\": \"0.99\"})", name)
			}
			return 0, usage("%s: %s is a %s, not a histogram%s", fn, name, strings.ToLower(t.String()), hint)
		}
		return 0, r.missing("histogram "+name, name, r.histograms())
	}
	ss := filter(buckets, sel)
	if len(ss) == 0 {
		return 0, r.noMatch("histogram "+name, sel, buckets, "le")
	}
	// Add up the buckets of every matching histogram by bound, as
	// histogram_quantile(q, sum by (le) (...)) does.
	byBound := map[float64]float64{}
	for _, s := range ss {
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: histogram %s has a bucket with le=%q, which is not a number", fn, name, s.labels["le"])
		}
		byBound[le] += count(s)
	}
	bs := make([]bucket, 0, len(byBound))
	for le, c := range byBound {
		bs = append(bs, bucket{upper: le, count: c})
	}
	v := bucketQuantile(q, bs)
	r.record(fmt.Sprintf("%s(%s, %s%s)", fn, formatFloat(q), name, formatLabels(sel)), v)
	return v, nil
}

// bucket is one cumulative bucket of a histogram.
type bucket struct {
	upper float64 // le
	count float64 // observations ≤ upper
}

// bucketQuantile is Prometheus' histogram_quantile over classic buckets: find
// the bucket holding rank q·count and interpolate linearly inside it,
// assuming its observations spread evenly. A rank in the +Inf bucket gives
// the upper bound of the last finite one; the first bucket starts at 0
// unless its bound is not positive. Without a +Inf bucket, with fewer than
// two buckets or without observations, there is no answer: NaN.
func bucketQuantile(q float64, bs []bucket) float64 {
	sort.Slice(bs, func(i, j int) bool { return bs[i].upper < bs[j].upper })
	if len(bs) < 2 || !math.IsInf(bs[len(bs)-1].upper, 1) {
		return math.NaN()
	}
	// Counts scraped a moment apart may dip; a cumulative count cannot.
	for i := 1; i < len(bs); i++ {
		if bs[i].count < bs[i-1].count {
			bs[i].count = bs[i-1].count
		}
	}
	observations := bs[len(bs)-1].count
	if observations == 0 {
		return math.NaN()
	}
	rank := q * observations
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].count >= rank })
	switch {
	case b == len(bs)-1:
		return bs[len(bs)-2].upper
	case b == 0 && bs[0].upper <= 0:
		return bs[0].upper
	}
	start, end, count := 0.0, bs[b].upper, bs[b].count
	if b > 0 {
		start = bs[b-1].upper
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count)
}

// match returns the series of name whose labels include sel. A name the
// page does not have at all is an error; labels that match nothing are not.
// selected reads fn's optional label selector and returns it with the series of
// name it matches: the prologue every look-up shares.
func (r *reader) selected(fn, name string, labels []map[string]any) (map[string]string, []*sample, error) {
	sel, err := selector(fn, labels)
	if err != nil {
		return nil, nil, err
	}
	ss, err := r.match(name, sel)
	return sel, ss, err
}

func (r *reader) match(name string, sel map[string]string) ([]*sample, error) {
	ss, ok := r.p.series[name]
	if !ok {
		return nil, r.missing("metric "+name, name, slices.Sorted(maps.Keys(r.p.series)))
	}
	return filter(ss, sel), nil
}

// one returns the only series of ss, or says why there is not exactly one.
func (r *reader) one(name string, sel map[string]string, ss []*sample) (*sample, error) {
	switch len(ss) {
	case 1:
		return ss[0], nil
	case 0:
		return nil, r.noMatch("metric "+name, sel, r.p.series[name], "")
	}
	return nil, fmt.Errorf("metric %s%s has %d series, and metric() reads one: add labels to pick it (%s), or use sum or series",
		name, formatLabels(sel), len(ss), labelSets(ss, ""))
}

// missing says that the page has no series called name, with the nearest
// name it has, or how to read a histogram known by its family name.
func (r *reader) missing(what, name string, candidates []string) error {
	msg := what + " is missing"
	if r.p.types[name] == dto.MetricType_HISTOGRAM {
		return fmt.Errorf("%s; %s is a histogram: read it with quantile(q, %q), or its %s_count and %s_sum", msg, name, name, name, name)
	}
	if s := diag.Suggest(name, candidates); s != "" {
		return fmt.Errorf("%s; %s", msg, s)
	}
	return errors.New(msg)
}

// histograms returns the names of the page's histograms.
func (r *reader) histograms() []string {
	var out []string
	for name, t := range r.p.types {
		if t == dto.MetricType_HISTOGRAM {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// noMatch says that no series of what has the labels sel, and which label
// sets it has (leaving out skip, the le of buckets).
func (r *reader) noMatch(what string, sel map[string]string, all []*sample, skip string) error {
	return fmt.Errorf("%s has no series with labels %s; it has %s", what, formatLabels(sel), labelSets(all, skip))
}

// labelSets lists the distinct label sets of ss for a message, cut short.
func labelSets(ss []*sample, skip string) string {
	const max = 8
	var sets []string
	seen := map[string]bool{}
	for _, s := range ss {
		labels := s.labels
		if skip != "" {
			labels = maps.Clone(labels)
			delete(labels, skip)
		}
		set := formatLabels(labels)
		if set == "" {
			set = "{}"
		}
		if !seen[set] {
			seen[set] = true
			sets = append(sets, set)
		}
	}
	if len(sets) > max {
		return strings.Join(sets[:max], ", ") + fmt.Sprintf(" and %d more", len(sets)-max)
	}
	return strings.Join(sets, ", ")
}

// filter returns the series whose labels include sel.
func filter(ss []*sample, sel map[string]string) []*sample {
	if len(sel) == 0 {
		return ss
	}
	var out []*sample
	for _, s := range ss {
		ok := true
		for k, v := range sel {
			if got, has := s.labels[k]; !has || got != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// selector reads the optional labels argument: one map of label values.
func selector(fn string, labels []map[string]any) (map[string]string, error) {
	switch len(labels) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, usage("%s: takes one map of labels, got %d; put them in one map: {\"a\": \"x\", \"b\": \"y\"}", fn, len(labels))
	}
	sel := make(map[string]string, len(labels[0]))
	for _, k := range slices.Sorted(maps.Keys(labels[0])) {
		s, ok := labels[0][k].(string)
		if !ok {
			return nil, usage("%s: label %s must be a string, got %v (%T); quote it: {%q: \"%v\"}", fn, k, labels[0][k], labels[0][k], k, labels[0][k])
		}
		sel[k] = s
	}
	return sel, nil
}
