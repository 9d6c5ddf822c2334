package journal

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// AnalysisMetric is one metric of an analysis step's result
// (metrics[]), decoded: its verdict and every measurement taken.
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

// AnalysisMetrics decodes the metrics of an analysis step's result, as the
// journal gives the result back (JSON numbers are float64); ok is false
// for a result without metrics.
func AnalysisMetrics(result map[string]any) (metrics []AnalysisMetric, ok bool) {
	raw, ok := result["metrics"].([]any)
	if !ok {
		return nil, false
	}
	for _, x := range raw {
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
		metrics = append(metrics, m)
	}
	return metrics, true
}

// writeMeasurements writes, after the story's table, every measurement of
// the run's analysis steps, read from their results (metrics[].measurements):
// what each metric read, against what baseline, and how it was judged.
// Nothing is written for a run without one.
func (s *State) writeMeasurements(w io.Writer) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	rows := 0
	for _, e := range s.Events {
		if e.Kind != event.StepEnd && e.Kind != event.GateEnd {
			continue
		}
		metrics, _ := AnalysisMetrics(e.Result)
		for _, m := range metrics {
			for _, r := range m.Measurements {
				if rows == 0 {
					fmt.Fprintln(tw, "TIME\tHOST\tSTEP\tMETRIC\tN\tVALUE\tBASELINE\tVERDICT\tDETAIL")
				}
				rows++
				when := "-"
				if !r.Time.IsZero() {
					when = r.Time.Format("15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", when, orDash(e.Host), orDash(e.Step), m.Name,
					r.N, Measured(r.Value), Measured(r.Baseline), orDash(r.Verdict), shortDetail(r.Detail))
			}
		}
	}
	if rows == 0 || tw.Flush() != nil {
		return
	}
	fmt.Fprintln(w, "\nmeasurements:")
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}
}

// Measured shows a number of a measurement as JSON gave it back; "-" for none.
func Measured(v any) string {
	switch n := v.(type) {
	case nil:
		return "-"
	case float64:
		return strconv.FormatFloat(n, 'g', 6, 64)
	case int:
		return strconv.Itoa(n)
	}
	return fmt.Sprint(v)
}

// shortDetail keeps a detail short enough for a table.
func shortDetail(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
