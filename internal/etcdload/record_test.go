package etcdload

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeClock is moved by the test only.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// event is one step of a scripted recording: at offset at, begin a write
// (seq > 0 and begin) or end it with err ("" means acknowledged), or stop.
type event struct {
	at    time.Duration
	seq   int64
	begin bool
	err   string
	stop  bool
}

func begin(at time.Duration, seq int64) event          { return event{at: at, seq: seq, begin: true} }
func ack(at time.Duration, seq int64) event            { return event{at: at, seq: seq} }
func fail(at time.Duration, seq int64, e string) event { return event{at: at, seq: seq, err: e} }
func stop(at time.Duration) event                      { return event{at: at, stop: true} }

func play(t *testing.T, events []event) *Recorder {
	t.Helper()
	clk := newFakeClock()
	rec := NewRecorder(clk.Now)
	for _, e := range events {
		clk.Add(t0.Add(e.at).Sub(clk.Now()))
		switch {
		case e.stop:
			rec.Stop()
		case e.begin:
			if got := rec.Begin(); got != e.seq {
				t.Fatalf("Begin at %s = seq %d, want %d", e.at, got, e.seq)
			}
		case e.err != "":
			rec.End(e.seq, errors.New(e.err))
		default:
			rec.End(e.seq, nil)
		}
	}
	return rec
}

const ms1 = time.Millisecond

func TestStats(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name   string
		events []event
		want   Stats
	}{
		{
			name:   "no write at all: the whole run is the gap",
			events: []event{stop(5 * time.Second)},
			want: Stats{
				Started: t0, Stopped: at(5 * time.Second), Ended: at(5 * time.Second),
				MaxGap: Gap{Duration: 5 * time.Second, From: t0, To: at(5 * time.Second)},
			},
		},
		{
			name: "steady writes: the gap is the longest of start→first, between acks, last→end",
			events: []event{
				begin(0, 1), ack(2*ms1, 1),
				begin(10*ms1, 2), ack(13*ms1, 2),
				begin(20*ms1, 3), ack(21*ms1, 3),
				stop(30 * ms1),
			},
			want: Stats{
				Started: t0, Stopped: at(30 * ms1), Ended: at(30 * ms1),
				Attempted: 3, Acknowledged: 3,
				MaxGap: Gap{Duration: 11 * ms1, From: at(2 * ms1), To: at(13 * ms1), AfterSeq: 1, BeforeSeq: 2},
				P50:    2 * ms1, P99: 3 * ms1, Max: 3 * ms1,
				Slowest: Write{Seq: 2, Start: at(10 * ms1), Latency: 3 * ms1, Done: true},
			},
		},
		{
			name: "an outage in the middle: failed writes do not close the gap",
			events: []event{
				begin(0, 1), ack(1*ms1, 1),
				begin(100*ms1, 2),
				begin(200*ms1, 3), fail(300*ms1, 3, "etcdserver: leader changed"),
				fail(2100*ms1, 2, "context deadline exceeded"),
				begin(2200*ms1, 4), fail(2250*ms1, 4, "etcdserver: leader changed"),
				begin(2300*ms1, 5), ack(2302*ms1, 5),
				stop(2400 * ms1),
			},
			want: Stats{
				Started: t0, Stopped: at(2400 * ms1), Ended: at(2400 * ms1),
				Attempted: 5, Acknowledged: 2, Failed: 3,
				MaxGap: Gap{Duration: 2301 * ms1, From: at(1 * ms1), To: at(2302 * ms1), AfterSeq: 1, BeforeSeq: 5},
				P50:    1 * ms1, P99: 2 * ms1, Max: 2 * ms1,
				Slowest: Write{Seq: 5, Start: at(2300 * ms1), Latency: 2 * ms1, Done: true},
				Errors: []ErrorCount{
					{Error: "etcdserver: leader changed", Count: 2},
					{Error: "context deadline exceeded", Count: 1},
				},
				FirstFailures: []Write{
					{Seq: 2, Start: at(100 * ms1), Latency: 2000 * ms1, Done: true, Err: "context deadline exceeded"},
					{Seq: 3, Start: at(200 * ms1), Latency: 100 * ms1, Done: true, Err: "etcdserver: leader changed"},
					{Seq: 4, Start: at(2200 * ms1), Latency: 50 * ms1, Done: true, Err: "etcdserver: leader changed"},
				},
			},
		},
		{
			name: "the cluster stops answering for good: the gap runs to the end",
			events: []event{
				begin(0, 1), ack(5*ms1, 1),
				begin(10*ms1, 2),
				stop(1000 * ms1),
				fail(2010*ms1, 2, "context deadline exceeded"),
			},
			want: Stats{
				Started: t0, Stopped: at(1000 * ms1), Ended: at(2010 * ms1),
				Attempted: 2, Acknowledged: 1, Failed: 1,
				MaxGap: Gap{Duration: 2005 * ms1, From: at(5 * ms1), To: at(2010 * ms1), AfterSeq: 1},
				P50:    5 * ms1, P99: 5 * ms1, Max: 5 * ms1,
				Slowest: Write{Seq: 1, Start: t0, Latency: 5 * ms1, Done: true},
				Errors:  []ErrorCount{{Error: "context deadline exceeded", Count: 1}},
				FirstFailures: []Write{
					{Seq: 2, Start: at(10 * ms1), Latency: 2000 * ms1, Done: true, Err: "context deadline exceeded"},
				},
			},
		},
		{
			name: "answers out of order: the gap follows the answers, not the sequence",
			events: []event{
				begin(0, 1), begin(1*ms1, 2),
				ack(3*ms1, 2), ack(50*ms1, 1),
				stop(60 * ms1),
			},
			want: Stats{
				Started: t0, Stopped: at(60 * ms1), Ended: at(60 * ms1),
				Attempted: 2, Acknowledged: 2,
				MaxGap: Gap{Duration: 47 * ms1, From: at(3 * ms1), To: at(50 * ms1), AfterSeq: 2, BeforeSeq: 1},
				P50:    2 * ms1, P99: 50 * ms1, Max: 50 * ms1,
				Slowest: Write{Seq: 1, Start: t0, Latency: 50 * ms1, Done: true},
			},
		},
		{
			name:   "a write still in flight counts as failed",
			events: []event{begin(0, 1), stop(10 * ms1)},
			want: Stats{
				Started: t0, Stopped: at(10 * ms1), Ended: at(10 * ms1),
				Attempted: 1, Failed: 1,
				MaxGap:        Gap{Duration: 10 * ms1, From: t0, To: at(10 * ms1)},
				Errors:        []ErrorCount{{Error: "did not end", Count: 1}},
				FirstFailures: []Write{{Seq: 1, Start: t0}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := play(t, tt.events).Stats()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Stats() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * ms1
	}
	tests := []struct {
		vals      []time.Duration
		p         int
		want      time.Duration
		wantLabel string
	}{
		{[]time.Duration{7}, 50, 7, "one value"},
		{[]time.Duration{7}, 99, 7, "one value, p99"},
		{[]time.Duration{1, 2}, 50, 1, "two values, p50 is the lower"},
		{[]time.Duration{1, 2}, 99, 2, "two values, p99 is the upper"},
		{hundred, 50, 50 * ms1, "1..100 p50"},
		{hundred, 99, 99 * ms1, "1..100 p99"},
		{hundred, 100, 100 * ms1, "1..100 p100"},
		{append(hundred, 5*time.Second), 99, 100 * ms1, "101 values: p99 is the 100th"},
	}
	for _, tt := range tests {
		if got := percentile(tt.vals, tt.p); got != tt.want {
			t.Errorf("%s: percentile(p%d) = %s, want %s", tt.wantLabel, tt.p, got, tt.want)
		}
	}
}

// Writes that begin and end from many goroutines at once are all recorded,
// each once, in order of Seq.
func TestRecorderConcurrent(t *testing.T) {
	rec := NewRecorder(time.Now)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := rec.Begin()
			var err error
			if i%5 == 0 {
				err = fmt.Errorf("failure %d", i%2)
			}
			rec.End(seq, err)
		}()
	}
	wg.Wait()
	rec.Stop()
	ws := rec.Writes()
	for i, w := range ws {
		if w.Seq != int64(i+1) || !w.Done {
			t.Fatalf("write %d = %+v, want seq %d and done", i, w, i+1)
		}
	}
	st := rec.Stats()
	if st.Attempted != 50 || st.Acknowledged != 40 || st.Failed != 10 {
		t.Errorf("attempted/acked/failed = %d/%d/%d, want 50/40/10", st.Attempted, st.Acknowledged, st.Failed)
	}
}
