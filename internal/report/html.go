package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/runbookhq/runbook/internal/journal"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp":  stamp,
	"clock":  clock,
	"dur":    dur,
	"values": values,
	"number": journal.Measured,
	"inc":    func(i int) int { return i + 1 },
}).Parse(htmlSource))

// timeline is the Gantt chart: one row per host (and one for the
// controller's steps), each step a bar placed on the run's time axis.
type timeline struct {
	Rows  []timelineRow
	Ticks []tick
}

type timelineRow struct {
	Label  string
	Status string
	Bars   []bar
}

type bar struct {
	Left, Width float64 // percent of the axis
	Class       string
	Title       string
}

type tick struct {
	Left  float64
	Label string
}

// htmlData is what the template reads.
type htmlData struct {
	*Report
	Timeline timeline
}

// WriteHTML writes the report as one HTML page that needs nothing else (no
// script, font, style sheet or image from anywhere): the summary, a timeline
// of hosts and steps, the approvals, the failures, the metric gate values,
// the step tables, the recap and the plan's flow as Mermaid text.
// html/template escapes every value from the journal.
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, htmlData{Report: r, Timeline: r.timeline()})
}

func (r *Report) timeline() timeline {
	t0, t1 := r.span[0], r.span[1]
	total := t1.Sub(t0)
	if total <= 0 {
		total = time.Millisecond
	}
	pos := func(t time.Time) float64 {
		p := float64(t.Sub(t0)) / float64(total) * 100
		return min(max(p, 0), 100)
	}
	bars := func(steps []Step, rollback bool) []bar {
		var out []bar
		for _, s := range steps {
			if s.Started == nil {
				continue // a step skipped without starting has no time to show
			}
			end := t1
			if s.Ended != nil {
				end = *s.Ended
			}
			left := pos(*s.Started)
			width := max(pos(end)-left, 0.4) // visible however short
			if left+width > 100 {
				left = 100 - width
			}
			class := "s-" + s.Status
			if rollback {
				class += " rb"
			}
			title := fmt.Sprintf("%s: %s, %s", s.Name, s.Status, dur(s.DurationMS))
			if rollback {
				title = "rollback: " + title
			}
			out = append(out, bar{Left: left, Width: width, Class: class, Title: title})
		}
		return out
	}
	var tl timeline
	if len(r.Controller) > 0 {
		tl.Rows = append(tl.Rows, timelineRow{Label: "controller", Status: "", Bars: bars(r.Controller, false)})
	}
	for _, h := range r.Hosts {
		row := timelineRow{Label: h.Name, Status: h.Status, Bars: bars(h.Steps, false)}
		row.Bars = append(row.Bars, bars(h.Rollback, true)...)
		tl.Rows = append(tl.Rows, row)
	}
	for i := 0; i <= 4; i++ {
		at := t0.Add(total * time.Duration(i) / 4)
		tl.Ticks = append(tl.Ticks, tick{Left: float64(i) * 25, Label: "+" + dur(at.Sub(t0).Milliseconds())})
	}
	return tl
}
