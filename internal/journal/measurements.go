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
		metrics, _ := e.Result["metrics"].([]any)
		for _, m := range metrics {
			mm, _ := m.(map[string]any)
			name, _ := mm["name"].(string)
			ms, _ := mm["measurements"].([]any)
			for _, x := range ms {
				r, ok := x.(map[string]any)
				if !ok {
					continue
				}
				if rows == 0 {
					fmt.Fprintln(tw, "TIME\tHOST\tSTEP\tMETRIC\tN\tVALUE\tBASELINE\tVERDICT\tDETAIL")
				}
				rows++
				when := "-"
				if ts, _ := r["time"].(string); ts != "" {
					if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
						when = t.UTC().Format("15:04:05")
					}
				}
				detail, _ := r["error"].(string)
				if detail == "" {
					detail, _ = r["detail"].(string)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", when, orDash(e.Host), orDash(e.Step), name,
					measured(r["n"]), measured(r["value"]), measured(r["baseline"]), orDash(fmt.Sprint(r["verdict"])), shortDetail(detail))
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

// measured prints a number of a measurement as JSON gave it back; "-" for none.
func measured(v any) string {
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
