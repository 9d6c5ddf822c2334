// Package etcdload writes keys to etcd at a steady rate, one attempt per write,
// and then reads them back to tell acknowledged, failed and lost writes apart.
package etcdload

import (
	"sort"
	"sync"
	"time"
)

// Write is one Put as it happened: when it began, how long it took, and its
// error ("" when etcd acknowledged it).
type Write struct {
	Seq     int64
	Start   time.Time
	Latency time.Duration
	Done    bool
	Err     string
}

// Acked reports whether etcd acknowledged the write.
func (w Write) Acked() bool { return w.Done && w.Err == "" }

// end is when the write's answer (or its failure) came.
func (w Write) end() time.Time { return w.Start.Add(w.Latency) }

// Recorder keeps every write of a run. Its clock is a parameter so that the
// statistics can be tested with times chosen by the test.
type Recorder struct {
	now func() time.Time

	mu      sync.Mutex
	started time.Time
	stopped time.Time
	writes  []Write // writes[i].Seq == i+1
}

// NewRecorder starts a recording at now().
func NewRecorder(now func() time.Time) *Recorder {
	return &Recorder{now: now, started: now()}
}

// Begin numbers a new write from 1 upwards and notes when it began.
func (r *Recorder) Begin() int64 {
	t := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := int64(len(r.writes) + 1)
	r.writes = append(r.writes, Write{Seq: seq, Start: t})
	return seq
}

// End records the outcome of write seq: err == nil means acknowledged.
func (r *Recorder) End(seq int64, err error) {
	t := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &r.writes[seq-1]
	w.Latency = t.Sub(w.Start)
	w.Done = true
	if err != nil {
		w.Err = err.Error()
		if w.Err == "" {
			w.Err = "error without a message"
		}
	}
}

// Stop notes when the run stopped starting new writes; writes still in
// flight may end after it.
func (r *Recorder) Stop() {
	t := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped.IsZero() {
		r.stopped = t
	}
}

// Writes returns a copy of every write, in order of Seq.
func (r *Recorder) Writes() []Write {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Write(nil), r.writes...)
}

// Gap is the longest time without an acknowledged write. AfterSeq is the
// acknowledged write that opened it (0: the start of the run) and BeforeSeq
// the one that closed it (0: the end of the run).
type Gap struct {
	Duration  time.Duration
	From, To  time.Time
	AfterSeq  int64
	BeforeSeq int64
}

// ErrorCount is how often one error message was seen.
type ErrorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

// Stats summarises a recording.
type Stats struct {
	Started, Stopped, Ended time.Time // Ended: when the last write ended, or Stopped if later
	Attempted               int64
	Acknowledged            int64
	Failed                  int64 // including writes that never ended (none, once Run returns)
	Slow                    int64 // acknowledged, but slower than SlowWrite
	MaxGap                  Gap
	P50, P99, Max           time.Duration // of acknowledged writes
	Slowest                 Write         // the slowest acknowledged write; Seq 0 if none
	Errors                  []ErrorCount  // most frequent first
	FirstFailures           []Write       // the first MaxFailuresListed failed writes, in order of Seq
	SlowWrites              []Write       // the first MaxSlowListed acknowledged writes slower than SlowWrite
}

// MaxSlowListed bounds the slow writes Stats lists one by one: enough to
// cover every stretch of slow writes of an upgrade at a few hundred writes
// a second, which an explanation groups into a few.
const MaxSlowListed = 5000

// SlowWrite is the latency from which an acknowledged write is listed one by
// one, to be explained like a failed one.
const SlowWrite = 100 * time.Millisecond

// MaxFailuresListed bounds the failed writes Stats lists one by one, with
// their times, so that a report can tie each to what the cluster went
// through then; the count is always complete.
const MaxFailuresListed = 20

// Stats computes the statistics of the writes so far. The gap counts from the
// start of the recording and up to its end, so a cluster that never answered,
// or stopped answering for good, shows as one long gap.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	st := Stats{Started: r.started, Stopped: r.stopped}
	writes := append([]Write(nil), r.writes...)
	r.mu.Unlock()
	if st.Stopped.IsZero() {
		st.Stopped = r.now()
	}
	st.Ended = st.Stopped

	var acked []Write
	errs := map[string]int64{}
	for _, w := range writes {
		st.Attempted++
		if w.Done && w.end().After(st.Ended) {
			st.Ended = w.end()
		}
		if w.Acked() {
			acked = append(acked, w)
			if w.Latency > SlowWrite {
				st.Slow++
				if len(st.SlowWrites) < MaxSlowListed {
					st.SlowWrites = append(st.SlowWrites, w)
				}
			}
			continue
		}
		st.Failed++
		if len(st.FirstFailures) < MaxFailuresListed {
			st.FirstFailures = append(st.FirstFailures, w)
		}
		if !w.Done {
			errs["did not end"]++
		} else {
			errs[w.Err]++
		}
	}
	st.Acknowledged = int64(len(acked))

	sort.Slice(acked, func(i, j int) bool {
		if !acked[i].end().Equal(acked[j].end()) {
			return acked[i].end().Before(acked[j].end())
		}
		return acked[i].Seq < acked[j].Seq
	})
	prev := Gap{From: st.Started}
	for _, w := range acked {
		if d := w.end().Sub(prev.From); d > st.MaxGap.Duration || st.MaxGap.To.IsZero() {
			st.MaxGap = Gap{Duration: d, From: prev.From, To: w.end(), AfterSeq: prev.AfterSeq, BeforeSeq: w.Seq}
		}
		prev = Gap{From: w.end(), AfterSeq: w.Seq}
	}
	if d := st.Ended.Sub(prev.From); d > st.MaxGap.Duration || st.MaxGap.To.IsZero() {
		st.MaxGap = Gap{Duration: d, From: prev.From, To: st.Ended, AfterSeq: prev.AfterSeq}
	}

	if len(acked) > 0 {
		lat := make([]time.Duration, len(acked))
		for i, w := range acked {
			lat[i] = w.Latency
			if w.Latency > st.Slowest.Latency || st.Slowest.Seq == 0 {
				st.Slowest = w
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		st.P50, st.P99, st.Max = percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
	}

	for msg, n := range errs {
		st.Errors = append(st.Errors, ErrorCount{Error: msg, Count: n})
	}
	sort.Slice(st.Errors, func(i, j int) bool {
		if st.Errors[i].Count != st.Errors[j].Count {
			return st.Errors[i].Count > st.Errors[j].Count
		}
		return st.Errors[i].Error < st.Errors[j].Error
	})
	return st
}

// percentile is the nearest-rank percentile of sorted, which is not empty:
// the smallest value that at least p percent of the values do not exceed.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}
