package ui

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// Recap collects what each host did and prints the table an operator reads when
// the run is over: per host its status, step counts and time, then the outcome
// of the run with its exit code, and for every host that did not end well what
// went wrong and, when its rollback failed, the state it was left in.
//
// Attach it to the Bus for a live run, or build it from a journal's events with
// RecapOf (feed the earlier parts of a resumed run first, so that hosts that
// finished before the resume are counted). Recap is safe for concurrent use.
type Recap struct {
	mu     sync.Mutex
	runID  string
	check  bool
	totals runTotals
	hosts  map[string]*recapHost
	order  []string

	// problems are the controller's failed steps (preflight, gates, post).
	problems []string
	aborted  string
	ended    bool
	status   event.Status
	end      event.RunEndInfo
	hasCode  bool
}

type recapHost struct {
	name    string
	started time.Time
	ended   time.Time
	took    time.Duration
	status  event.Status // of host_end, or of rollback_end until host_end comes
	err     string       // of host_end, else of the failed step
	rbErr   string       // of a rollback that failed: what a person must act on
	// Step counts, as Ansible's recap: ok counts every step that succeeded,
	// changed the ones among them that changed something.
	ok, changed, skipped, failed, rolledBack, unreachable int
}

// NewRecap returns an empty Recap.
func NewRecap() *Recap { return &Recap{hosts: map[string]*recapHost{}} }

// RecapOf returns the Recap of recorded events, such as journal.State.Events.
func RecapOf(events []event.Event) *Recap {
	r := NewRecap()
	for _, e := range events {
		r.add(e)
	}
	return r
}

// Emit adds e to the counts; it never fails.
func (r *Recap) Emit(e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(e)
	return nil
}

func (r *Recap) host(name string) *recapHost {
	h := r.hosts[name]
	if h == nil {
		h = &recapHost{name: name}
		r.hosts[name] = h
		r.order = append(r.order, name)
	}
	return h
}

func (r *Recap) add(e event.Event) {
	switch e.Kind {
	case event.RunStart, event.RunResume:
		r.runID = e.RunID
		if info, ok := r.totals.learn(e); ok {
			r.check = r.check || info.Check
			for _, h := range info.Hosts {
				r.host(h)
			}
		}
		// A resume starts a new last part: its run_end is the one that counts.
		r.ended, r.status, r.end, r.hasCode, r.aborted = false, "", event.RunEndInfo{}, false, ""
	case event.RunEnd:
		r.ended, r.status = true, e.Status
		r.end, r.hasCode = e.EndInfo()
	case event.Abort:
		r.aborted = e.Error
		if r.aborted == "" {
			r.aborted = "no new batch starts"
		}
	case event.HostStart:
		h := r.host(e.Host)
		if h.started.IsZero() {
			h.started = e.Time
		}
	case event.HostEnd:
		h := r.host(e.Host)
		h.ended, h.status = e.Time, e.Status
		if e.Duration > 0 {
			h.took = e.Duration
		} else if !h.started.IsZero() {
			h.took = e.Time.Sub(h.started)
		}
		switch {
		case succeeded(e.Status):
			h.err = "" // a failure it ignored (ignore_errors) is not the host's
		case e.Error != "":
			h.err = e.Error
		}
	case event.RollbackEnd:
		h := r.host(e.Host)
		h.status = e.Status
		if e.Status != event.RolledBack && e.Status != event.OK && e.Error != "" {
			h.rbErr = e.Error
		}
	case event.StepEnd, event.RollbackStepEnd:
		if !isHostStep(e) || e.Host == "" {
			if e.Status == event.Failed || e.Status == event.Unreachable {
				r.problems = append(r.problems, withError(stepSubject(e, r.totals)+" "+string(e.Status), e))
			}
			return
		}
		r.countStep(r.host(e.Host), e)
	}
}

func (r *Recap) countStep(h *recapHost, e event.Event) {
	rollback := isRollback(e)
	switch e.Status {
	case event.OK, event.Changed:
		if rollback {
			h.rolledBack++
			return
		}
		h.ok++
		if e.Status == event.Changed {
			h.changed++
		}
	case event.Skipped:
		h.skipped++
	case event.Unreachable:
		h.unreachable++
		if !rollback && h.err == "" {
			h.err = stepSubject(e, r.totals) + " unreachable: " + e.Error
		}
	default:
		h.failed++
		if !rollback && h.err == "" {
			h.err = withError(stepSubject(e, r.totals)+" "+statusOr(e.Status, "failed"), e)
		}
	}
}

// Print writes the recap to w.
func (r *Recap) Print(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATUS\tOK\tCHANGED\tSKIPPED\tFAILED\tROLLED BACK\tUNREACHABLE\tTIME")
	for _, name := range r.order {
		h := r.hosts[name]
		took := "-"
		if !h.started.IsZero() && !h.ended.IsZero() || h.took > 0 {
			took = duration(h.took)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", clean(name), hostState(h),
			h.ok, h.changed, h.skipped, h.failed, h.rolledBack, h.unreachable, took)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	out.WriteString("\n" + r.outcome() + "\n")
	if r.ended && r.end.Reason != "" && !succeeded(r.status) {
		fmt.Fprintf(&out, "%s: %s\n", hostWord(r.status), clean(r.end.Reason))
	}
	if r.aborted != "" && r.aborted != r.end.Reason {
		fmt.Fprintf(&out, "aborted: %s\n", clean(r.aborted))
	}
	for _, p := range r.problems {
		out.WriteString(p + "\n")
	}
	for _, name := range r.order {
		h := r.hosts[name]
		switch h.status {
		case event.OK, event.Changed, event.Skipped:
			continue
		case event.RollbackFailed:
			// A person must look at this host: say so first and plainly,
			// with what the rollback said (such as the downgrade path after
			// the point of no return), then what it was rolling back from.
			fmt.Fprintf(&out, "%s: ROLLBACK FAILED: %s\n", clean(name), orUnknown(h.rbErr))
			if h.err != "" {
				fmt.Fprintf(&out, "%s: its rollback followed: %s\n", clean(name), clean(strings.TrimPrefix(h.err, name+": ")))
			}
		case "":
			if !h.started.IsZero() {
				fmt.Fprintf(&out, "%s: did not end; its state is unknown\n", clean(name))
			}
		default:
			if h.err != "" {
				fmt.Fprintf(&out, "%s: %s: %s\n", clean(name), hostWord(h.status), clean(strings.TrimPrefix(h.err, name+": ")))
			}
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

func hostState(h *recapHost) string {
	switch {
	case h.status != "":
		return strings.ReplaceAll(hostWord(h.status), " ", "_")
	case h.started.IsZero():
		return "not_started"
	}
	return "did_not_end"
}

// outcome is the line that says how the run went:
// `run 20261124T023955Z-3f9a01: 2 hosts ok, 1 failed (1 rolled back) — exit 1`.
func (r *Recap) outcome() string {
	var ok, failed int
	var detail, other []string
	counts := map[string]int{}
	var notStarted, unended int
	for _, name := range r.order {
		h := r.hosts[name]
		switch {
		case succeeded(h.status):
			ok++
		case h.status == event.Failed:
			failed++
		case h.status == event.RolledBack, h.status == event.RollbackFailed, h.status == event.Unreachable:
			failed++
			counts[hostWord(h.status)]++
		case h.status != "":
			counts[hostWord(h.status)]++
		case h.started.IsZero():
			notStarted++
		default:
			unended++
		}
	}
	for _, k := range []string{"rolled back", "rollback failed", "unreachable"} {
		if counts[k] > 0 {
			detail = append(detail, fmt.Sprintf("%d %s", counts[k], k))
			delete(counts, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		other = append(other, fmt.Sprintf("%d %s", counts[k], k))
	}
	if notStarted > 0 {
		other = append(other, fmt.Sprintf("%d not started", notStarted))
	}
	if unended > 0 {
		other = append(other, fmt.Sprintf("%d did not end", unended))
	}

	s := "run " + r.runID
	if r.check {
		s += " (check mode)"
	}
	s += ": " + plural(ok, "host") + " ok, " + strconv.Itoa(failed) + " failed"
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, ", ") + ")"
	}
	for _, o := range other {
		s += ", " + o
	}
	switch {
	case !r.ended:
		s += " — the run did not end"
	case r.hasCode && succeeded(r.status):
		s += " — exit " + strconv.Itoa(r.end.ExitCode)
	case r.hasCode:
		s += fmt.Sprintf(" — %s, exit %d", r.status, r.end.ExitCode)
	default:
		s += " — " + statusOr(r.status, "ended")
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown (the engine did not say)"
	}
	return clean(s)
}
