package assertmetric

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// FuzzPage parses arbitrary exposition text and reads every name of it with
// each function: nothing panics, a page scraped twice unchanged has grown by
// nothing, and a quantile lies within its histogram's bounds.
func FuzzPage(f *testing.F) {
	f.Add(healthy.page())
	f.Add(summaryPage)
	f.Add("# TYPE h histogram\nh_bucket{le=\"-1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum -1\n")
	f.Add("# TYPE c counter\nc{a=\"x\"} NaN\nc{a=\"y\"} +Inf\n")
	text := http.Header{"Content-Type": {textFormat}}
	f.Fuzz(func(t *testing.T, body string) {
		p, err := parse(context.Background(), text, []byte(body))
		if err != nil {
			return
		}
		tr := newTracker()
		tr.observe(p)
		tr.observe(p)
		r := newReader(p, tr)
		for name := range p.series {
			_, _ = r.metric(name)
			_, _ = r.hasMetric(name)
			_, _ = r.seriesOf(name)
			_, _ = r.sum(name)
			_, _ = r.count(name)
			if d, err := r.delta(name); err != nil || d != 0 && !math.IsNaN(d) {
				t.Errorf("delta(%s) over an unchanged page = %v, %v; want 0", name, d, err)
			}
		}
		for name, typ := range p.types {
			_, _ = r.hasMetric(name)
			if typ != dto.MetricType_HISTOGRAM {
				continue
			}
			lo, hi := 0.0, math.Inf(-1)
			for _, s := range p.series[name+"_bucket"] {
				le, err := strconv.ParseFloat(s.labels["le"], 64)
				if err != nil || math.IsNaN(le) {
					return // no bounds to hold the answer to
				}
				if !math.IsInf(le, 1) {
					lo, hi = math.Min(lo, le), math.Max(hi, le)
				}
			}
			for _, q := range []float64{0, 0.5, 0.99, 1} {
				v, err := r.quantile(q, name)
				if err == nil && !math.IsNaN(v) && (v < lo || v > hi) {
					t.Errorf("quantile(%v, %s) = %v, outside the bounds [%v, %v]", q, name, v, lo, hi)
				}
				_, _ = r.quantileDelta(q, name)
			}
		}
	})
}
