package assertmetric

import (
	"context"
	"math"
	"net/http"
	"testing"
)

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 WAL fsyncs: 10 up to 1ms, 30 more up to 2ms, 50 up to 4ms, 8 up
	// to 8ms, 2 up to 16ms.
	fsync := func() []bucket {
		return []bucket{{0.001, 10}, {0.002, 40}, {0.004, 90}, {0.008, 98}, {0.016, 100}, {inf, 100}}
	}
	tests := []struct {
		name string
		q    float64
		bs   []bucket
		want float64 // NaN: no answer
	}{
		// rank 50 is in (2ms, 4ms], the 10th of its 50: 2ms + 2ms·10/50.
		{"median", 0.5, fsync(), 0.0024},
		// rank 99 is the 1st of the 2 in (8ms, 16ms]: 8ms + 8ms·1/2.
		{"p99", 0.99, fsync(), 0.012},
		// rank 90 is the last of (2ms, 4ms]: its upper bound.
		{"rank on a bound", 0.9, fsync(), 0.004},
		// rank 5 is in the first bucket, which starts at 0: 1ms·5/10.
		{"first bucket starts at zero", 0.05, fsync(), 0.0005},
		{"q=1 is the last finite bucket holding all", 1, fsync(), 0.016},
		{"q=0 is the start of the first bucket", 0, fsync(), 0},
		{"buckets in any order", 0.5, []bucket{{inf, 100}, {0.004, 90}, {0.001, 10}, {0.016, 100}, {0.002, 40}, {0.008, 98}}, 0.0024},
		// rank 9 of 10 is above the last finite bound: that bound is the answer.
		{"rank in +Inf", 0.9, []bucket{{0.1, 5}, {inf, 10}}, 0.1},
		{"non-positive first bound", 0.1, []bucket{{-1, 2}, {0, 4}, {inf, 10}}, -1},
		// A bucket scraped lower than the one below it is taken as equal:
		// (1, 2] is empty, so rank 10 is the 6th of 16 in (2, 4].
		{"non-monotonic counts", 0.5, []bucket{{1, 4}, {2, 2}, {4, 20}, {inf, 20}}, 2 + 2*6.0/16},
		{"no observations", 0.5, []bucket{{1, 0}, {inf, 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []bucket{{1, 5}, {2, 10}}, math.NaN()},
		{"one bucket", 0.5, []bucket{{inf, 10}}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bucketQuantile(tt.q, tt.bs)
			if math.IsNaN(tt.want) {
				if !math.IsNaN(got) {
					t.Errorf("bucketQuantile = %v, want NaN", got)
				}
				return
			}
			if math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("bucketQuantile = %v, want %v", got, tt.want)
			}
		})
	}
}

// pageOf parses text exposition for a test.
func pageOf(t *testing.T, text string) *page {
	t.Helper()
	h := http.Header{"Content-Type": {"text/plain; version=0.0.4"}}
	p, err := parse(context.Background(), h, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTrackerDelta(t *testing.T) {
	// page has counter c{k="a"}, c{k="b"} unless b is "", gauge g, and the
	// process start time unless start is "".
	page := func(start string, a, b, g string) string {
		out := "# TYPE c counter\nc{k=\"a\"} " + a + "\n"
		if b != "" {
			out += "c{k=\"b\"} " + b + "\n"
		}
		out += "# TYPE g gauge\ng " + g + "\n"
		if start != "" {
			out += "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds " + start + "\n"
		}
		return out
	}
	tests := []struct {
		name         string
		pages        []string
		wantA, wantB float64
		wantG        float64
		wantResets   int
	}{
		{"baseline only", []string{page("100", "5", "1", "7")}, 0, 0, 0, 0},
		{"growth adds up", []string{page("100", "5", "1", "7"), page("100", "6", "1", "9"), page("100", "9", "4", "3")}, 4, 3, -4, 0},
		// a: 5 → 6 (+1), restart, 2 (+2), 3 (+1); b: 1 → 1, restart, gone, 0 (+0).
		{"restart by start time", []string{page("100", "5", "1", "7"), page("100", "6", "1", "7"), page("200", "2", "", "1"), page("200", "3", "0", "1")}, 4, 0, -6, 1},
		// Without process_start_time_seconds a decrease is the restart.
		{"restart by decrease", []string{page("", "5", "1", "7"), page("", "6", "3", "7"), page("", "2", "1", "7")}, 3, 3, 0, 0},
		// A restart that brings the counter back above its old value is
		// only seen through the start time.
		{"restart above the old value", []string{page("100", "5", "1", "7"), page("300", "8", "2", "7")}, 8, 2, 0, 1},
		// b is created after the baseline (a labelled counter on first use).
		{"series that appears later counts from zero", []string{page("100", "5", "", "7"), page("100", "5", "2", "7"), page("100", "5", "3", "7")}, 0, 3, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker()
			for _, text := range tt.pages {
				tr.observe(pageOf(t, text))
			}
			got := map[string]float64{`c{k="a"}`: tt.wantA, `c{k="b"}`: tt.wantB, "g": tt.wantG}
			for key, want := range got {
				if tr.inc[key] != want {
					t.Errorf("growth of %s = %v, want %v", key, tr.inc[key], want)
				}
			}
			if tr.resets != tt.wantResets {
				t.Errorf("resets = %d, want %d", tr.resets, tt.wantResets)
			}
		})
	}
}
