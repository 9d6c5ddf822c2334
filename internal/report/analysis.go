package report

import (
	"sort"
	"time"

	"github.com/runbookhq/runbook/internal/journal"
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

// AnalysisMetric and Measurement are the journal's: one decoding of an
// analysis' result for the story and the reports.
type (
	AnalysisMetric = journal.AnalysisMetric
	Measurement    = journal.Measurement
)

// collectAnalyses gathers the measurements of every analysis step that
// ended, from its result (metrics[].measurements).
func (r *Report) collectAnalyses() {
	add := func(s Step) {
		metrics, ok := journal.AnalysisMetrics(s.result)
		if !ok || s.Module != "" && s.Module != "analysis" {
			return
		}
		a := Analysis{Phase: s.Phase, Host: s.Host, Step: s.Name, Status: s.Status, Metrics: []AnalysisMetric{}}
		a.Verdict, _ = s.result["phase"].(string)
		if s.Ended != nil {
			a.Time = *s.Ended
		}
		a.Metrics = append(a.Metrics, metrics...)
		r.Analyses = append(r.Analyses, a)
	}
	r.eachStep(add)
	sort.SliceStable(r.Analyses, func(i, j int) bool { return r.Analyses[i].Time.Before(r.Analyses[j].Time) })
}
