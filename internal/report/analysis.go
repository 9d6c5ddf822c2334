package report

import (
	"sort"
	"time"
)

// Analysis is what an analysis step measured: the analysis' verdict and
// every measurement of each of its metrics, as its result keeps them.
type Analysis struct {
	Time  time.Time `json:"time"`
	Phase string    `json:"phase"` // the run's phase the step ran in: steps, between_batches ...
	Host  string    `json:"host,omitempty"`
	Step  string    `json:"step"`
	// Status is the step's (ok, failed ...), Verdict the analysis' own:
	// Successful, Failed, Inconclusive or Error.
	Status  string           `json:"status"`
	Verdict string           `json:"verdict"`
	Metrics []AnalysisMetric `json:"metrics"`
}

// AnalysisMetric is one metric of an analysis.
type AnalysisMetric struct {
	Name         string        `json:"name"`
	Verdict      string        `json:"verdict"`
	Message      string        `json:"message,omitempty"`
	Measurements []Measurement `json:"measurements"`
}

// Measurement is one measurement of a metric. Value and Baseline are
// numbers, or the strings "+Inf", "-Inf" and "NaN" JSON has no number for;
// absent when there is none (an error, a scrape without a single value).
type Measurement struct {
	N        int       `json:"n"`
	Time     time.Time `json:"time"`
	Value    any       `json:"value,omitempty"`
	Baseline any       `json:"baseline,omitempty"`
	Verdict  string    `json:"verdict"`
	// Detail is what a scrape read, or the error.
	Detail string `json:"detail,omitempty"`
}

// collectAnalyses gathers the measurements of every analysis step that
// ended, from its result (metrics[].measurements).
func (r *Report) collectAnalyses() {
	add := func(s Step) {
		metrics, ok := s.result["metrics"].([]any)
		if !ok || s.Module != "" && s.Module != "analysis" {
			return
		}
		a := Analysis{Phase: s.Phase, Host: s.Host, Step: s.Name, Status: s.Status, Metrics: []AnalysisMetric{}}
		a.Verdict, _ = s.result["phase"].(string)
		if s.Ended != nil {
			a.Time = *s.Ended
		}
		for _, x := range metrics {
			mm, ok := x.(map[string]any)
			if !ok {
				continue
			}
			m := AnalysisMetric{Measurements: []Measurement{}}
			m.Name, _ = mm["name"].(string)
			m.Verdict, _ = mm["phase"].(string)
			m.Message, _ = mm["message"].(string)
			ms, _ := mm["measurements"].([]any)
			for _, y := range ms {
				e, ok := y.(map[string]any)
				if !ok {
					continue
				}
				var o Measurement
				if n, ok := e["n"].(float64); ok {
					o.N = int(n)
				}
				if ts, _ := e["time"].(string); ts != "" {
					if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
						o.Time = t.UTC()
					}
				}
				o.Value, o.Baseline = e["value"], e["baseline"]
				o.Verdict, _ = e["verdict"].(string)
				o.Detail, _ = e["error"].(string)
				if o.Detail == "" {
					o.Detail, _ = e["detail"].(string)
				}
				m.Measurements = append(m.Measurements, o)
			}
			a.Metrics = append(a.Metrics, m)
		}
		r.Analyses = append(r.Analyses, a)
	}
	for _, s := range r.Controller {
		add(s)
	}
	for _, h := range r.Hosts {
		for _, s := range h.Steps {
			add(s)
		}
	}
	sort.SliceStable(r.Analyses, func(i, j int) bool { return r.Analyses[i].Time.Before(r.Analyses[j].Time) })
}
