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

// WriteStory writes the story of the run for `runbook show`: a header saying what
// ran and how it ended, then a table with a row per thing that ended (step,
// rollback step, gate, host, batch, run) and per step that never did. Times are
// UTC, so that two operators in different places read the same story.
func (s *State) WriteStory(w io.Writer) error {
	ew := &errWriter{w: w}
	s.writeHeader(ew)
	fmt.Fprintln(ew)

	longDates := s.spansDays()
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tBATCH\tHOST\tSTEP\tSTATUS\tDURATION\tERROR")
	unended := s.unendedStarts()
	for _, e := range s.Events {
		r, ok := storyRow(e, unended[e.Seq])
		if !ok {
			continue
		}
		when := e.Time.UTC().Format("15:04:05")
		if longDates {
			when = e.Time.UTC().Format("2006-01-02 15:04:05")
		}
		batch, host := "-", "-"
		if e.Batch > 0 {
			batch = strconv.Itoa(e.Batch)
		}
		if e.Host != "" {
			host = e.Host
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", when, batch, host, r.step, orDash(r.status), orDash(r.duration), r.err)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads an empty last column; trailing blanks only make diffs noisy.
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(ew, strings.TrimRight(line, " \n"))
		}
	}
	s.writeMeasurements(ew)
	if t := s.Torn; t != nil {
		fmt.Fprintf(ew, "\nnote: line %d was cut short by a crash while it was written; its %d bytes were left out\n", t.Line, t.Bytes)
	}
	return ew.err
}

func (s *State) writeHeader(w io.Writer) {
	what := s.Info.Runbook
	if s.Info.Name != "" && s.Info.Name != what {
		what = fmt.Sprintf("%s (%s)", s.Info.Name, s.Info.Runbook)
	}
	if s.Info.Check {
		what += ", check mode"
	}
	fmt.Fprintf(w, "run %s: %s\n", s.RunID, what)
	fmt.Fprintf(w, "started %s", stamp(s.Started))
	for _, r := range s.Resumes {
		fmt.Fprintf(w, "; resumed %s", stamp(r.Time))
	}
	fmt.Fprintln(w)
	if l := s.Info.Lock; l != nil {
		fmt.Fprintf(w, "run lock: %s (%s)\n", strings.Join(l.Keys, ", "), l.Store)
	}
	switch {
	case s.Live:
		holder := "a process"
		if s.PID > 0 {
			holder = "process " + strconv.Itoa(s.PID)
		}
		fmt.Fprintf(w, "running: %s holds it\n", holder)
	case s.Finished:
		fmt.Fprintf(w, "ended %s: %s, exit code %d", stamp(s.Ended), orDash(string(s.Status)), s.ExitCode)
		if s.Reason != "" {
			fmt.Fprintf(w, ": %s", oneLine(s.Reason))
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "did not end: the process stopped without recording it (crashed or killed); `runbook resume %s` continues it\n", s.RunID)
	}
	if s.Aborted && s.AbortReason != "" {
		fmt.Fprintf(w, "aborted: %s\n", oneLine(s.AbortReason))
	}
}

type row struct{ step, status, duration, err string }

func storyRow(e event.Event, unended bool) (row, bool) {
	r := row{err: oneLineAll(e.Error)}
	if e.Duration > 0 {
		r.duration = formatDuration(e.Duration)
	}
	status := string(e.Status)
	if e.Attempt > 1 {
		status = fmt.Sprintf("%s, attempt %d", status, e.Attempt)
	}
	switch e.Kind {
	case event.RunStart:
		r.step = "run started"
	case event.RunResume:
		r.step = "run resumed"
	case event.RunEnd:
		r.step, r.status = "run ended", status
	case event.Abort:
		r.step, r.status = "run aborted", string(event.Aborted)
	case event.Interrupt:
		r.step, r.status = "interrupt received", string(event.Interrupted)
	case event.BatchEnd:
		r.step, r.status = "batch ended", status
	case event.GateEnd:
		r.step, r.status = "gates after batch "+strconv.Itoa(e.Batch), status
	case event.HostEnd:
		r.step, r.status = "host ended", status
	case event.RollbackStart:
		r.step = "rollback started"
	case event.RollbackEnd:
		r.step, r.status = "rollback ended", status
	case event.StepRetry:
		r.step, r.status = stepLabel(e), fmt.Sprintf("retry after attempt %d", max(e.Attempt, 1))
	case event.StepEnd, event.RollbackStepEnd:
		r.step, r.status = stepLabel(e), status
	case event.Leftover:
		r.step, r.status = stepLabel(e), "leftover "+e.Action
	case event.StepStart, event.RollbackStepStart:
		if !unended {
			return row{}, false
		}
		r.step, r.status = stepLabel(e), "never ended"
	case event.ApprovalWait, event.Approval, event.Window:
		return approvalRow(e, r)
	default:
		return row{}, false
	}
	return r, true
}

// approvalRow is a row for who was asked, who decided and a change window.
func approvalRow(e event.Event, r row) (row, bool) {
	str := func(k string) string { s, _ := e.Data[k].(string); return s }
	switch e.Kind {
	case event.ApprovalWait:
		r.step, r.status = "approval of "+stepLabel(e), "waiting"
	case event.Approval:
		r.step = "approval of " + stepLabel(e)
		switch d := str("decision"); d {
		case "approved", "rejected":
			r.status = d + " by " + oneLine(str("user"))
			if c := str("controller"); c != "" {
				r.status += " on " + oneLine(c)
			}
			if counted, _ := e.Data["counted"].(bool); !counted && d == "approved" {
				r.status += ", not counted"
			}
			if why := e.Reason; why != "" && r.err == "" {
				r.err = "reason: " + oneLineAll(why)
			}
		default:
			r.status = orDash(d)
		}
	case event.Window:
		r.step, r.status = "change window", string(e.Status)
		if e.Ignored {
			r.status, r.err = "ignored", "reason: "+oneLineAll(e.Reason)
		}
	}
	return r, true
}

func stepLabel(e event.Event) string {
	name := e.Step
	if name == "" {
		name = fmt.Sprintf("step %d", e.StepIndex+1)
	}
	switch {
	case e.Undo:
		return "undo: " + name
	case e.Kind == event.RollbackStepStart || e.Kind == event.RollbackStepEnd || e.Phase == event.Rollback:
		return "rollback: " + name
	case e.Phase == event.Preflight:
		return "preflight: " + name
	case e.Phase == event.Post:
		return "post: " + name
	case e.Phase == event.BetweenBatches:
		return "gate: " + name
	case e.Ahead:
		return "ahead: " + name
	}
	return name
}

// unendedStarts finds the step starts that no end followed: the steps in flight
// when a process stopped. A start is closed by the next end of the same step, and
// left open by a later start of the same sequence or by the end of the journal.
func (s *State) unendedStarts() map[int64]bool {
	type key struct {
		host     string
		phase    event.Phase
		batch    int
		rollback bool
	}
	keyOf := func(e event.Event) key {
		k := key{phase: phaseOf(e), rollback: e.Kind == event.RollbackStepStart || e.Kind == event.RollbackStepEnd}
		switch k.phase {
		case event.Steps, event.Rollback:
			k.host = e.Host
		case event.BetweenBatches:
			k.batch = e.Batch
		}
		return k
	}
	open := map[key]event.Event{}
	out := map[int64]bool{}
	for _, e := range s.Events {
		switch e.Kind {
		case event.StepStart, event.RollbackStepStart:
			k := keyOf(e)
			if prev, ok := open[k]; ok {
				out[prev.Seq] = true
			}
			open[k] = e
		case event.StepEnd, event.RollbackStepEnd:
			k := keyOf(e)
			if prev, ok := open[k]; ok && prev.StepIndex == e.StepIndex && prev.Undo == e.Undo {
				delete(open, k)
			}
		}
	}
	for _, e := range open {
		out[e.Seq] = true
	}
	return out
}

func (s *State) spansDays() bool {
	if len(s.Events) == 0 {
		return false
	}
	first := s.Events[0].Time.UTC().Format(time.DateOnly)
	last := s.Events[len(s.Events)-1].Time.UTC().Format(time.DateOnly)
	return first != last
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// formatDuration keeps milliseconds under a minute and seconds above: a story
// is read by people, and 1m2.345678s says nothing 1m2s does not.
func formatDuration(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// oneLineAll puts an error on one line whole, its lines joined with " | ".
// The error is the last column, so its length misaligns nothing; cut, it
// lost what an operator acts on, which often comes last (a process's own
// last words, the downgrade path after the point of no return).
func oneLineAll(s string) string {
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}

// errWriter keeps the first write error, so the printing code above stays
// readable and the error still reaches the caller.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
