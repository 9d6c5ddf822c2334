package etcdload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Report is what a run found, as written to -out. Durations are in
// milliseconds so that other tools need not parse Go durations.
type Report struct {
	Version    int             `json:"version"`
	RunID      string          `json:"run_id"`
	Endpoints  []string        `json:"endpoints"`
	Prefix     string          `json:"prefix"`
	Rate       float64         `json:"rate"`
	TimeoutMS  float64         `json:"timeout_ms"`
	Started    time.Time       `json:"started"`
	Stopped    time.Time       `json:"stopped"` // no write started after it
	Ended      time.Time       `json:"ended"`   // the last write ended
	StopReason StopReason      `json:"stop_reason"`
	Writes     Counts          `json:"writes"`
	MaxGap     GapReport       `json:"max_gap"`
	Latency    Latency         `json:"latency"`
	Slowest    *Slowest        `json:"slowest,omitempty"`
	Errors     []ErrorCount    `json:"errors,omitempty"`
	Failures   []Failure       `json:"failures,omitempty"`    // the first failed writes, one by one
	SlowWrites []Failure       `json:"slow_writes,omitempty"` // the first acknowledged writes slower than SlowWrite
	Members    []MemberOutages `json:"members,omitempty"`     // with -watch: when each member was out
	Verify     VerifyReport    `json:"verify"`
}

// ReportVersion is the version of the report's layout.
const ReportVersion = 1

// Counts are the writes by outcome.
type Counts struct {
	Attempted     int64 `json:"attempted"`
	Acknowledged  int64 `json:"acknowledged"`
	Failed        int64 `json:"failed"`
	Lost          int64 `json:"lost"`
	FailedApplied int64 `json:"failed_but_applied"`
	Slow          int64 `json:"slow"` // acknowledged after more than SlowWrite
}

// GapReport is the longest time without an acknowledged write.
type GapReport struct {
	MS        float64   `json:"ms"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	AfterSeq  int64     `json:"after_seq"`  // 0: from the start of the run
	BeforeSeq int64     `json:"before_seq"` // 0: until the end of the run
}

// Latency is over acknowledged writes.
type Latency struct {
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// Slowest is the slowest acknowledged write.
type Slowest struct {
	Seq       int64     `json:"seq"`
	Key       string    `json:"key"`
	Started   time.Time `json:"started"`
	LatencyMS float64   `json:"latency_ms"`
}

// Failure is one failed write: when it started, how long until it failed
// (or the run ended, when it never did), and the error.
type Failure struct {
	Seq       int64     `json:"seq"`
	Started   time.Time `json:"started"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error"`
}

// VerifyReport is the outcome of reading the writes back.
type VerifyReport struct {
	Complete bool     `json:"complete"`
	Checked  int64    `json:"checked"`
	Error    string   `json:"error,omitempty"`
	LostKeys []string `json:"lost_keys,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func dur(msec float64) time.Duration { return time.Duration(msec * float64(time.Millisecond)) }

// NewReport puts a run's statistics and verification together.
func NewReport(cfg Config, endpoints []string, reason StopReason, st Stats, v Verification) *Report {
	r := &Report{
		Version:    ReportVersion,
		RunID:      cfg.RunID,
		Endpoints:  endpoints,
		Prefix:     cfg.Prefix,
		Rate:       cfg.Rate,
		TimeoutMS:  ms(cfg.Timeout),
		Started:    st.Started,
		Stopped:    st.Stopped,
		Ended:      st.Ended,
		StopReason: reason,
		Writes: Counts{
			Attempted: st.Attempted, Acknowledged: st.Acknowledged, Failed: st.Failed,
			Lost: v.Lost, FailedApplied: v.FailedApplied, Slow: st.Slow,
		},
		MaxGap: GapReport{
			MS: ms(st.MaxGap.Duration), From: st.MaxGap.From, To: st.MaxGap.To,
			AfterSeq: st.MaxGap.AfterSeq, BeforeSeq: st.MaxGap.BeforeSeq,
		},
		Latency: Latency{P50MS: ms(st.P50), P99MS: ms(st.P99), MaxMS: ms(st.Max)},
		Errors:  st.Errors,
		Verify:  VerifyReport{Complete: v.Err == nil, Checked: v.Checked, LostKeys: v.LostKeys},
	}
	if v.Err != nil {
		r.Verify.Error = v.Err.Error()
	}
	for _, w := range st.FirstFailures {
		f := Failure{Seq: w.Seq, Started: w.Start, LatencyMS: ms(w.Latency), Error: w.Err}
		if !w.Done {
			f.LatencyMS, f.Error = ms(st.Ended.Sub(w.Start)), "did not end"
		}
		r.Failures = append(r.Failures, f)
	}
	for _, w := range st.SlowWrites {
		r.SlowWrites = append(r.SlowWrites, Failure{Seq: w.Seq, Started: w.Start, LatencyMS: ms(w.Latency)})
	}
	if st.Slowest.Seq != 0 {
		r.Slowest = &Slowest{Seq: st.Slowest.Seq, Key: cfg.Key(st.Slowest.Seq), Started: st.Slowest.Start, LatencyMS: ms(st.Slowest.Latency)}
	}
	return r
}

// OK reports whether the run shows no loss: some write was acknowledged,
// every acknowledged write was read back with its value, and the read back
// finished. Failed writes are what a run measures, not a failure of it.
func (r *Report) OK() bool {
	return r.Writes.Acknowledged > 0 && r.Writes.Lost == 0 && r.Verify.Complete
}

// Verdict says in one line why the run is or is not OK.
func (r *Report) Verdict() string {
	switch {
	case !r.Verify.Complete:
		return "NOT VERIFIED: the writes could not all be read back: " + r.Verify.Error
	case r.Writes.Lost > 0:
		return fmt.Sprintf("LOST WRITES: %s missing or changed", plural(r.Writes.Lost, "acknowledged write"))
	case r.Writes.Acknowledged == 0:
		return "NO WRITE ACKNOWLEDGED: check the endpoints"
	}
	return "OK: every acknowledged write was read back"
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFile writes the report to path through a temporary file, so that a
// reader never sees half a report.
func (r *Report) WriteFile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	err = r.WriteJSON(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the report %s: %w", path, err)
	}
	return nil
}

// ReadReport reads a report written by WriteFile. A malformed file is
// reported at its line and column.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%s:%s: %v; is it a report written by etcd-load -out?", path, lineCol(data, se.Offset), err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s:%s: %v; is it a report written by etcd-load -out?", path, lineCol(data, te.Offset), err)
		}
		return nil, fmt.Errorf("%s: %v; is it a report written by etcd-load -out?", path, err)
	}
	if r.Version != ReportVersion {
		return nil, fmt.Errorf("%s: report version %d, this etcd-load reads version %d", path, r.Version, ReportVersion)
	}
	return &r, nil
}

// lineCol turns the offset of a JSON error, which is just after the byte at
// fault, into the "LINE:COL" of that byte, both 1-based.
func lineCol(data []byte, off int64) string {
	off = min(max(off-1, 0), int64(len(data)))
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("%d:%d", line, col)
}

// WriteText writes the human summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	elapsed := r.Ended.Sub(r.Started)
	achieved := 0.0
	if elapsed > 0 {
		achieved = float64(r.Writes.Attempted) / elapsed.Seconds()
	}
	p("etcd-load: %s in %s (%.1f/s, asked %.4g/s) to %s; stopped by %s\n",
		plural(r.Writes.Attempted, "write"), round(elapsed), achieved, r.Rate, strings.Join(r.Endpoints, ","), r.StopReason)
	p("  acknowledged  %d\n", r.Writes.Acknowledged)
	p("  failed        %d", r.Writes.Failed)
	if r.Writes.FailedApplied > 0 {
		p(" (%d of them took effect anyway)", r.Writes.FailedApplied)
	}
	p("\n")
	for i, e := range r.Errors {
		if i == 3 {
			p("                … and %s\n", plural(int64(len(r.Errors)-3), "other error"))
			break
		}
		p("                %d × %s\n", e.Count, e.Error)
	}
	for i, f := range r.Failures {
		if i == 5 {
			p("                … the others in the JSON report (-out)\n")
			break
		}
		p("                #%d started %s, failed after %s: %s\n", f.Seq, f.Started.UTC().Format("15:04:05.000"), round(dur(f.LatencyMS)), f.Error)
	}
	p("  lost          %d", r.Writes.Lost)
	if !r.Verify.Complete {
		p(" among the %s read back before the verification stopped", plural(r.Verify.Checked, "acknowledged write"))
	}
	p("\n")
	for _, k := range r.Verify.LostKeys {
		p("                %s\n", k)
	}
	g := r.MaxGap
	p("  longest gap   %s without an acknowledged write, %s\n", round(dur(g.MS)), gapBounds(g))
	if r.Writes.Acknowledged > 0 {
		p("  latency       p50 %s, p99 %s, max %s\n", round(dur(r.Latency.P50MS)), round(dur(r.Latency.P99MS)), round(dur(r.Latency.MaxMS)))
	}
	if s := r.Slowest; s != nil {
		p("  slowest       #%d %s, started %s, took %s\n", s.Seq, s.Key, s.Started.UTC().Format("15:04:05.000"), round(dur(s.LatencyMS)))
	}
	p("%s\n", r.Verdict())
	_, err := io.WriteString(w, b.String())
	return err
}

// plural says "1 write" and "2 writes".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func gapBounds(g GapReport) string {
	from, to := "the start", "the end"
	if g.AfterSeq != 0 {
		from = fmt.Sprintf("write #%d", g.AfterSeq)
	}
	if g.BeforeSeq != 0 {
		to = fmt.Sprintf("write #%d", g.BeforeSeq)
	}
	return fmt.Sprintf("from %s (%s) to %s (%s)", from, g.From.UTC().Format("15:04:05.000"), to, g.To.UTC().Format("15:04:05.000"))
}

// round keeps a duration readable: three significant digits or so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
