package analysis

import (
	"fmt"
	"math"
	"time"
)

// Verdict is how one measurement was judged.
type Verdict string

const (
	Successful   Verdict = "successful"
	Failed       Verdict = "failed"
	Inconclusive Verdict = "inconclusive"
	Errored      Verdict = "error"
)

// Phase is where a metric (or the whole analysis) stands, by Argo's names.
type Phase string

const (
	Running           Phase = "Running"
	PhaseSuccessful   Phase = "Successful"
	PhaseFailed       Phase = "Failed"
	PhaseInconclusive Phase = "Inconclusive"
	PhaseError        Phase = "Error"
)

// worse orders phases for the analysis as a whole: a Failed metric decides
// over one in Error, which decides over an Inconclusive one.
func worse(a, b Phase) Phase {
	rank := map[Phase]int{PhaseSuccessful: 0, Running: 1, PhaseInconclusive: 2, PhaseError: 3, PhaseFailed: 4}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// judge is a measurement's verdict from its conditions: failure wins over
// success; with only one of them given, missing it means the other. hasX
// says whether the condition is given, x whether it held.
func judge(hasSuccess, success, hasFailure, failure bool) Verdict {
	switch {
	case hasFailure && failure:
		return Failed
	case hasSuccess && success:
		return Successful
	case hasSuccess && hasFailure:
		return Inconclusive
	case hasSuccess:
		return Failed
	}
	return Successful
}

// Measurement is one measurement of a metric.
type Measurement struct {
	At       time.Time
	Value    float64 // NaN when there is none (an error, a scrape)
	Baseline float64 // NaN when there is none
	Verdict  Verdict
	// Detail is what a scrape read, or why the measurement failed.
	Detail string
	Err    error
}

// state is the state machine of one metric: it counts verdicts and tells
// when the metric is decided.
type state struct {
	m             *Metric
	measurements  []Measurement
	successful    int
	failed        int
	inconclusive  int
	errors        int
	errorsInARow  int
	phase         Phase
	reason        string // why the phase, in words
	countExpected int    // 0: until the time is up
}

func newState(m *Metric, count int) *state {
	return &state{m: m, phase: Running, countExpected: count}
}

// add records a measurement and returns the metric's phase after it. A
// phase other than Running is final: Failed, Error and Inconclusive end the
// metric at once, without its remaining measurements.
func (s *state) add(ms Measurement) Phase {
	if s.phase != Running {
		return s.phase
	}
	s.measurements = append(s.measurements, ms)
	switch ms.Verdict {
	case Successful:
		s.successful++
		s.errorsInARow = 0
	case Failed:
		s.failed++
		s.errorsInARow = 0
	case Inconclusive:
		s.inconclusive++
		s.errorsInARow = 0
	case Errored:
		s.errors++
		s.errorsInARow++
	}
	switch {
	case s.failed > s.m.FailureLimit:
		s.phase = PhaseFailed
		s.reason = fmt.Sprintf("%s failed: %s of %s, more than failure_limit %d", s.m.Name, plural(s.failed, "failed measurement"), plural(len(s.measurements), "measurement"), s.m.FailureLimit)
	case s.inconclusive > s.m.InconclusiveLimit:
		s.phase = PhaseInconclusive
		s.reason = fmt.Sprintf("%s is inconclusive: %s where neither success nor failure held, more than inconclusive_limit %d", s.m.Name, plural(s.inconclusive, "measurement"), s.m.InconclusiveLimit)
	case s.errorsInARow > s.m.errorLimit():
		s.phase = PhaseError
		s.reason = fmt.Sprintf("%s could not be measured: %s in a row, more than consecutive_error_limit %d; last: %v", s.m.Name, plural(s.errorsInARow, "error"), s.m.errorLimit(), ms.Err)
	case s.countExpected > 0 && s.taken() >= s.countExpected:
		s.succeed()
	}
	return s.phase
}

// taken is how many measurements were judged. As in Argo Rollouts, one
// that could not be taken (an error) does not count towards count: a
// Prometheus that is down for a while delays the verdict, it does not
// make it.
func (s *state) taken() int { return s.successful + s.failed + s.inconclusive }

// succeed ends a metric whose measurements are all taken within its limits.
func (s *state) succeed() {
	if s.phase != Running {
		return
	}
	s.phase = PhaseSuccessful
	s.reason = fmt.Sprintf("%s successful: %d of %s", s.m.Name, s.successful, plural(s.taken(), "measurement"))
	if s.errors > 0 {
		s.reason += fmt.Sprintf(" (and %s)", plural(s.errors, "error"))
	}
}

// timeUp ends a metric measured for a time (count 0) when the time is up:
// Successful within its limits, as Argo ends an analysis that runs until it
// is stopped; but a metric that was never measured, only errors, is in
// Error, since nothing was seen to pass.
func (s *state) timeUp() {
	if s.phase != Running {
		return
	}
	if s.taken() == 0 {
		s.phase = PhaseError
		s.reason = fmt.Sprintf("%s could not be measured: %s and no measurement before the time was up", s.m.Name, plural(s.errors, "error"))
		if l := s.last(); l != nil && l.Err != nil {
			s.reason += fmt.Sprintf("; last: %v", l.Err)
		}
		return
	}
	s.succeed()
}

// last is the latest measurement, for messages.
func (s *state) last() *Measurement {
	if len(s.measurements) == 0 {
		return nil
	}
	return &s.measurements[len(s.measurements)-1]
}

// data is the metric's part of the step's result, JSON-safe.
func (s *state) data() map[string]any {
	ms := make([]any, len(s.measurements))
	for i, m := range s.measurements {
		e := map[string]any{"n": i + 1, "time": m.At.UTC().Format(time.RFC3339Nano), "verdict": string(m.Verdict)}
		if !math.IsNaN(m.Value) {
			e["value"] = jsonFloat(m.Value)
		}
		if !math.IsNaN(m.Baseline) {
			e["baseline"] = jsonFloat(m.Baseline)
		}
		if m.Detail != "" {
			e["detail"] = m.Detail
		}
		if m.Err != nil {
			e["error"] = m.Err.Error()
		}
		ms[i] = e
	}
	return map[string]any{
		"name": s.m.Name, "phase": string(s.phase), "message": s.reason,
		"successful": s.successful, "failed": s.failed, "inconclusive": s.inconclusive, "errors": s.errors,
		"measurements": ms,
	}
}

// jsonFloat keeps a value JSON-safe: JSON has no NaN or infinities.
func jsonFloat(f float64) any {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprint(f)
	}
	return f
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
