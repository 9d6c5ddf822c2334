package ui

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/internal/event"
)

// Plain writes one line per event, for output that is not a terminal (a CI log,
// a file, a pipe): no colour, no cursor movement, and a shape that stays the
// same from release to release so that scripts can grep it:
//
//	12:03:04 batch 1/3 start: m1
//	12:03:05 m1 step 2/6 "stop etcd" changed (1.2s)
//	12:03:07 m1 step 3/6 "swap" failed (0.3s): text file busy
//
// Times are UTC. Text that came from a host is kept on its line: newlines are
// written as \n and control characters escaped. Plain is safe for concurrent use.
type Plain struct {
	mu     sync.Mutex
	w      io.Writer
	totals runTotals
}

// NewPlain returns a Plain writing to w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

// Emit writes the line for e. Each line is one Write, so that lines from
// several writers sharing a file do not interleave mid-line.
func (p *Plain) Emit(e event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := plainLine(e, &p.totals)
	if line == "" {
		return nil // a kind with nothing to show (step_process), or a newer one
	}
	text := clock(e.Time) + " " + line + "\n"
	for _, l := range shownLines(e) {
		text += l + "\n"
	}
	_, err := io.WriteString(p.w, text)
	return err
}

// plainLine describes e without its time. It also learns the run's totals from
// run_start and run_resume.
func plainLine(e event.Event, t *runTotals) string {
	switch e.Kind {
	case event.RunStart, event.RunResume:
		verb := "start"
		if e.Kind == event.RunResume {
			verb = "resume"
		}
		info, ok := t.learn(e)
		if !ok {
			return fmt.Sprintf("run %s %s", e.RunID, verb)
		}
		return fmt.Sprintf("run %s %s: %s", e.RunID, verb, describeRun(info))
	case event.RunEnd:
		s := fmt.Sprintf("run %s end: %s", e.RunID, statusOr(e.Status, "ended"))
		end, ok := e.EndInfo()
		if ok {
			s += ", exit " + strconv.Itoa(end.ExitCode)
		}
		s += paren(e)
		if end.Reason != "" {
			s += ": " + clean(end.Reason)
		}
		return s
	case event.Abort, event.Interrupt:
		return withError(string(e.Kind), e)
	case event.StepProcess:
		return ""
	case event.StepProgress:
		return join(stepSubject(e, *t), progressText(e.Data))
	case event.Leftover:
		return withError(join(stepSubject(e, *t), "leftover "+e.Action), e)

	case event.BatchStart:
		return fmt.Sprintf("%s start: %s", t.batch(e.Batch), strings.Join(batchHosts(e), ", "))
	case event.BatchEnd:
		return withError(fmt.Sprintf("%s end: %s%s", t.batch(e.Batch), statusOr(e.Status, "ended"), paren(e)), e)
	case event.GateStart:
		return fmt.Sprintf("%s gates start", t.batch(e.Batch))
	case event.GateEnd:
		return withError(fmt.Sprintf("%s gates end: %s%s", t.batch(e.Batch), statusOr(e.Status, "ended"), paren(e)), e)

	case event.HostStart:
		return clean(e.Host) + " start"
	case event.HostEnd:
		line := fmt.Sprintf("%s end: %s%s", clean(e.Host), statusOr(e.Status, "ended"), paren(e))
		if step, ok := failedStepOf(e); ok {
			// The step's own line said why, a moment ago: once is enough.
			return line + ": see step " + clean(strconv.Quote(step)) + " above"
		}
		return withError(line, e)
	case event.RollbackStart:
		return clean(e.Host) + " rollback start"
	case event.RollbackEnd:
		return withError(fmt.Sprintf("%s rollback end: %s%s", clean(e.Host), statusOr(e.Status, "ended"), paren(e)), e)

	case event.StepStart, event.RollbackStepStart:
		return stepSubject(e, *t) + " start" + loopItems(e)
	case event.StepRetry:
		return withError(fmt.Sprintf("%s attempt %d failed, retrying", stepSubject(e, *t), max(e.Attempt, 1)), e)
	case event.StepEnd, event.RollbackStepEnd:
		return withError(fmt.Sprintf("%s %s%s", stepSubject(e, *t), statusOr(e.Status, "ended"), paren(e)), e)
	}
	if line, ok := approvalLine(e); ok {
		return line
	}
	// A kind this version does not know, from a newer engine: say what there is.
	s := join(string(e.Kind), clean(e.Host))
	if e.Step != "" {
		s += fmt.Sprintf(" %q", clean(e.Step))
	}
	if e.Status != "" {
		s += " " + string(e.Status)
	}
	return withError(s+paren(e), e)
}

// stepSubject is who runs a step and which step it is:
// `m1 step 2/6 "stop etcd"`, `m1 rollback: undo step 3/6 "swap"`,
// `batch 1/3 gate step 1 "leader is stable"`, `preflight step 1 "healthy"`.
func stepSubject(e event.Event, t runTotals) string {
	who := clean(e.Host)
	if e.Phase == event.BetweenBatches && e.Batch > 0 {
		who = join(t.batch(e.Batch), who)
	}
	if e.Ahead {
		who = join(who, "ahead")
	}
	return join(who, phaseLabel(e), stepName(e, t))
}

// loopItems is " (3 items)" for the start of a step with loop:, which
// runs once per item under one start and one end.
func loopItems(e event.Event) string {
	if e.Items == nil {
		return ""
	}
	n := *e.Items
	if n == 1 {
		return " (1 item)"
	}
	return fmt.Sprintf(" (%d items)", n)
}

func describeRun(info event.RunInfo) string {
	what := clean(info.Runbook)
	if info.Name != "" && info.Name != info.Runbook {
		what = fmt.Sprintf("%s (%s)", clean(info.Name), what)
	}
	if what == "" {
		what = "runbook"
	}
	what += ", " + plural(len(info.Hosts), "host")
	if len(info.Batches) > 0 {
		what += " in " + plural(len(info.Batches), "batch")
	}
	if info.Check {
		what += ", check mode"
	}
	return what
}

func batchHosts(e event.Event) []string {
	out := make([]string, 0, len(e.Hosts))
	for _, h := range e.Hosts {
		out = append(out, clean(h))
	}
	return out
}

// paren is the duration and attempt of an end, in parentheses: " (1.2s, attempt 2)".
func paren(e event.Event) string {
	var parts []string
	if e.Duration > 0 {
		parts = append(parts, duration(e.Duration))
	}
	if e.Attempt > 1 && e.Kind != event.StepRetry {
		parts = append(parts, "attempt "+strconv.Itoa(e.Attempt))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func withError(s string, e event.Event) string {
	if e.Error == "" {
		return s
	}
	return s + ": " + clean(e.Error)
}

func statusOr(st event.Status, def string) string {
	if st == "" {
		return def
	}
	return string(st)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") {
		return strconv.Itoa(n) + " " + noun + "es"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// failedStepOf reports the step a host_end's error is about, when the
// error is that of a step that failed (`HOST: step "NAME": ...`), whose
// own end line carried it already.
func failedStepOf(e event.Event) (string, bool) {
	rest, ok := strings.CutPrefix(e.Error, e.Host+": step ")
	if !ok {
		return "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil || !strings.HasPrefix(rest[len(q):], ": ") {
		return "", false
	}
	name, err := strconv.Unquote(q)
	return name, err == nil
}
