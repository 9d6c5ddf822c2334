// Package ui shows a run to the operator: a live terminal view, plain lines for logs,
// JSON lines for machines and a recap table, all as sinks of the run's event stream.
package ui

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/runbookhq/runbook/internal/event"
)

// noColorEnv reports whether the environment asks for no colour: NO_COLOR set
// to anything but the empty string, as no-color.org defines it.
func noColorEnv() bool { return os.Getenv("NO_COLOR") != "" }

// IsTerminal reports whether w is a terminal: where a Live view belongs, and
// where colour may be used (NewLive and Logger still honour NO_COLOR).
func IsTerminal(w io.Writer) bool {
	_, ok := terminalFd(w)
	return ok
}

// terminalFd returns the descriptor of w when w is a terminal.
func terminalFd(w io.Writer) (int, bool) {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// clock is an event's time as every view prints it: UTC, so that operators in
// different places and the journal agree.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

// duration keeps a tenth of a second under a minute and whole seconds above:
// a view is read by people, and 1m2.345678s says nothing 1m2s does not.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	// Round first, so that 59.96s reads 1m0s rather than 60s.
	if d = d.Round(100 * time.Millisecond); d >= time.Minute {
		return d.Round(time.Second).String()
	}
	s := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + "s"
}

// clean makes text that came from a host (an error, a step name rendered from
// vars) safe to print on one line: newlines become a visible \n, and other
// control characters are escaped so that a command's output cannot move the
// cursor, recolour the terminal or break the one-line-per-event promise.
func clean(s string) string {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	if s == "" {
		return s
	}
	if utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// A stray byte, perhaps half of an 8-bit control sequence.
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			// A CRLF is one line break.
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// runTotals is what run_start says about the size of the run, for "batch 1/3"
// and "step 2/6".
type runTotals struct {
	batches int
	steps   int
}

func (t *runTotals) learn(e event.Event) (event.RunInfo, bool) {
	var info event.RunInfo
	if err := event.DecodeData(e.Data, &info); err != nil {
		return info, false
	}
	if n := len(info.Batches); n > 0 {
		t.batches = n
	}
	if info.Steps > 0 {
		t.steps = info.Steps
	}
	return info, true
}

func (t runTotals) batch(i int) string {
	if t.batches >= i && i > 0 {
		return fmt.Sprintf("batch %d/%d", i, t.batches)
	}
	return fmt.Sprintf("batch %d", i)
}

// stepNo numbers a step from 1, out of the steps phase's total when the index
// is a position in that phase (a steps-phase step, or the undo of one).
func (t runTotals) stepNo(e event.Event) string {
	n := strconv.Itoa(e.StepIndex + 1)
	if t.steps > e.StepIndex && (e.Undo || !isRollback(e) && (e.Phase == "" || e.Phase == event.Steps)) {
		n += "/" + strconv.Itoa(t.steps)
	}
	return n
}

func isRollback(e event.Event) bool {
	return e.Kind == event.RollbackStepStart || e.Kind == event.RollbackStepEnd || e.Phase == event.Rollback
}

// isHostStep reports whether a step event belongs to a host's own steps or
// rollback, as opposed to the controller's preflight, gates and post.
func isHostStep(e event.Event) bool {
	switch e.Phase {
	case "", event.Steps, event.Rollback:
		return true
	}
	return false
}

// stepName is the step as the operator wrote it, or its number when it has no name.
func stepName(e event.Event, t runTotals) string {
	if e.Step == "" {
		return "step " + t.stepNo(e)
	}
	return fmt.Sprintf("step %s %q", t.stepNo(e), clean(e.Step))
}

// phaseLabel names the part of the run a step belongs to, empty for a host's steps.
func phaseLabel(e event.Event) string {
	switch {
	case e.Undo:
		return "rollback: undo"
	case isRollback(e):
		return "rollback:"
	case e.Phase == event.Preflight:
		return "preflight"
	case e.Phase == event.Post:
		return "post"
	case e.Phase == event.BetweenBatches:
		return "gate"
	}
	return ""
}

// hostWord says how a host ended, in words.
func hostWord(st event.Status) string {
	switch st {
	case event.RolledBack:
		return "rolled back"
	case event.RollbackFailed:
		return "rollback failed"
	case "":
		return "ended"
	}
	return string(st)
}

// succeeded reports whether a status is a success (of a step, host, batch or gate).
func succeeded(st event.Status) bool {
	return st == event.OK || st == event.Changed || st == event.Skipped
}

func join(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}
