package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// WriteJSON writes the plan as JSON. The top-level "batches" key is a list of
// lists of host names, in run order.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// WriteText writes the plan for a person reviewing it before a run.
func (p *Plan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("runbook %s (%s)\n", p.Runbook, p.File)
	if p.Description != "" {
		ew.printf("  %s\n", p.Description)
	}
	target := p.Pattern
	if p.Limit != "" {
		target += " limited to " + p.Limit
	}
	ew.printf("\nhosts: %s → %d %s, order %s", target, len(p.Hosts), plural(len(p.Hosts), "host", "hosts"), p.Order)
	if p.Seed != 0 {
		ew.printf(" (seed %d)", p.Seed)
	}
	ew.printf(", serial %s, max_fail %d, on_abort %s\n", strings.Join(p.Serial, ","), p.MaxFail, p.OnAbort)
	if p.OrderAtStart {
		ew.printf("batches (in inventory order until the run starts and orders them):\n")
	} else {
		ew.printf("batches:\n")
	}
	for i, b := range p.Batches {
		ew.printf("  %d. %s\n", i+1, strings.Join(b, ", "))
	}
	for _, ph := range p.Phases {
		ew.printf("\n%s (%s)", ph.Name, ph.Runs)
		switch ph.Mode {
		case "none":
			ew.printf(": none — a failed host is left as it is\n")
			continue
		case "automatic":
			ew.printf(": automatic — undo what the host completed, newest first\n")
			writeUndo(ew, p.stepsPhase(), "  ")
			continue
		}
		ew.printf(":\n")
		writeSteps(ew, ph.Steps, "  ")
	}
	return ew.err
}

func (p *Plan) stepsPhase() []Step {
	for _, ph := range p.Phases {
		if ph.Name == "steps" {
			return ph.Steps
		}
	}
	return nil
}

func writeSteps(ew *errWriter, ss []Step, indent string) {
	for i, s := range ss {
		mod := s.Module
		if len(s.Block) > 0 || mod == "" {
			mod = "block"
		}
		if s.Import != "" {
			mod = "import " + s.Import
		}
		if s.Handler {
			mod = "handler, " + mod
		}
		where := fmt.Sprintf("line %d", s.Line)
		if s.File != "" {
			where = fmt.Sprintf("%s:%d", s.File, s.Line)
		}
		ew.printf("%s%d. %s [%s] %s\n", indent, i+1, s.Name, mod, where)
		sub := indent + "   "
		if s.Loop != "" {
			ew.printf("%sloop: %s\n", sub, s.Loop)
		}
		if len(s.Params) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(s.Params)) {
				kv = append(kv, k+"="+s.Params[k])
			}
			ew.printf("%swith: %s\n", sub, strings.Join(kv, ", "))
		}
		if s.Handler {
			ew.printf("%swhen notified by: %s\n", sub, strings.Join(s.NotifiedBy, "; "))
		}
		for _, w := range s.When {
			ew.printf("%swhen: %s\n", sub, w)
		}
		var opts []string
		if s.Retries > 0 {
			o := fmt.Sprintf("retries %d", s.Retries)
			if s.Delay != "" {
				o += " every " + s.Delay
			}
			if s.Until != "" {
				o += " until " + s.Until
			}
			opts = append(opts, o)
		}
		if s.Timeout != "" {
			opts = append(opts, "timeout "+s.Timeout)
		}
		if s.Register != "" {
			opts = append(opts, "register "+s.Register)
		}
		if len(s.Notify) > 0 {
			opts = append(opts, "notify "+strings.Join(s.Notify, ", "))
		}
		if s.FailedWhen != "" {
			opts = append(opts, "failed_when "+s.FailedWhen)
		}
		if s.ChangedWhen != "" {
			opts = append(opts, "changed_when "+s.ChangedWhen)
		}
		if s.IgnoreErrors {
			opts = append(opts, "ignore_errors")
		}
		if s.RunOnce {
			opts = append(opts, "run_once")
		}
		switch {
		case s.AheadFrom != "":
			opts = append(opts, fmt.Sprintf("ahead: on the next batch once this one is at %q", s.AheadFrom))
		case s.Ahead:
			opts = append(opts, "ahead: on the next batch while this one is at its last step")
		}
		if s.DelegateTo != "" {
			opts = append(opts, "delegate_to "+s.DelegateTo)
		}
		if s.Become {
			opts = append(opts, "become")
		}
		if s.NoLog {
			opts = append(opts, "no_log")
		}
		if len(s.Tags) > 0 {
			opts = append(opts, "tags "+strings.Join(s.Tags, ","))
		}
		if len(opts) > 0 {
			ew.printf("%s%s\n", sub, strings.Join(opts, "; "))
		}
		if len(s.RunTime) > 0 {
			ew.printf("%schecked at run time: %s\n", sub, strings.Join(s.RunTime, "; "))
		}
		if len(s.Block) > 0 {
			writeSteps(ew, s.Block, sub)
			if s.Rollback != nil {
				ew.printf("%srollback of the block (%s)", sub, s.Rollback.Mode)
				if s.Rollback.Mode == "explicit" {
					ew.printf(":\n")
					writeSteps(ew, s.Rollback.Steps, sub+"   ")
				} else {
					ew.printf("\n")
				}
			}
		}
	}
}

// writeUndo lists what the automatic rollback does, newest step first, as it runs.
func writeUndo(ew *errWriter, ss []Step, indent string) {
	flat := flatten(ss)
	for i := len(flat) - 1; i >= 0; i-- {
		ew.printf("%s%s: %s\n", indent, flat[i].Name, undoText(flat[i]))
	}
}

// undoText is what the automatic rollback does for s; a looped step's undo
// is per item.
func undoText(s Step) string {
	if s.Loop != "" && s.Undo != "irreversible" {
		return "per item, newest first: " + s.Undo
	}
	return s.Undo
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
