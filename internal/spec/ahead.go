package spec

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// Ahead steps are the first steps of `steps:` that a runbook marks
// `ahead: true`: steps that prepare a host without touching what it serves
// (staging a binary beside the one that runs), which the runner may run on
// the hosts of the next batch while the current batch is at its last step.
// The rules here keep that safe to reason about: they come first, so what
// runs early is what the file shows first; they run on their own host only;
// and they wait for no one.

// aheadArgs is the mapping form of ahead:, which names the step of the
// batch before from which the next batch may start: `ahead: { from: soak }`.
type aheadArgs struct {
	From string `yaml:"from"`
}

// pauseModule waits for people; an ahead step runs while another batch is
// at work, when no one expects a question about this host.
const pauseModule = "pause"

// readAhead reads a step's `ahead:` and refuses it where it cannot apply:
// off the top level of steps:, on a block or an import, with delegate_to or
// run_once, on a pause. Where ahead steps stand among the others is
// checkAhead's.
func (l *loader) readAhead(s *Step, fields map[string]arg.Pair, phase Phase, id string, group bool) {
	p, ok := fields["ahead"]
	if !ok {
		return
	}
	s.AheadPos = l.pos(p.Key)
	if n := arg.Resolve(p.Value); n != nil && n.Kind == yaml.MappingNode {
		var a aheadArgs
		l.decodeKey(n, &a, "ahead")
		s.Ahead, s.AheadFrom, s.AheadFromPos = true, strings.TrimSpace(a.From), l.pos(n)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "from" {
				s.AheadFromPos = l.pos(n.Content[i+1])
			}
		}
		if s.AheadFrom == "" {
			l.ds.Add(s.AheadFromPos, "\"ahead\" needs from: the name of the step from which the next batch may start",
				"write ahead: { from: STEP NAME } with a step of steps: below it, or ahead: true for the last step")
			s.Ahead = false
			return
		}
	} else {
		l.decodeKey(n, &s.Ahead, "ahead")
	}
	if !s.Ahead {
		return
	}
	bad := func(summary, detail string) {
		l.ds.Add(s.AheadPos, summary, detail)
		s.Ahead = false
	}
	switch {
	case phase != PhaseSteps || l.inHandlers || strings.Contains(id, ".") || len(l.stack) > 1:
		bad(fmt.Sprintf("\"ahead\" is only for the top-level steps of steps:, not in %s", aheadWhere(phase, id, l.inHandlers, len(l.stack) > 1)),
			"mark a step of the runbook's own steps: list, at its top")
	case group:
		bad("\"ahead\" cannot be on a block or an import",
			"put ahead: true on each step that may run ahead, at the top of steps:")
	case s.DelegateTo != "" || s.DelegateTemplate != nil:
		bad("\"ahead\" cannot go with \"delegate_to\"",
			"a step run ahead runs on its own host only, so that it never meets a step of the batch at work there")
	case s.RunOnce:
		bad("\"ahead\" cannot go with \"run_once\"",
			"each host of the next batch runs its ahead steps itself")
	case s.Module == pauseModule:
		bad("\"ahead\" cannot be on a pause",
			"a step run ahead runs while another batch is at work, with no one to ask; keep the pause where it is")
	}
}

func aheadWhere(phase Phase, id string, handler, imported bool) string {
	switch {
	case handler:
		return "a handler"
	case imported:
		return "an imported file"
	case phase != PhaseSteps:
		return string(phase)
	case strings.Contains(id, ".rollback"):
		return "a block's rollback"
	}
	return "a block"
}

// checkAhead refuses an ahead step after a step that is not: ahead steps
// run before the host's other steps, so they must be written first. And
// they start at one point: every ahead step names the same from: step, a
// top-level step of steps: after them, or none (the last step).
func (l *loader) checkAhead(steps []*Step) {
	var first *Step // the first step that is not ahead
	var lead *Step  // the first ahead step, whose from: the others must share
	for _, s := range steps {
		switch {
		case !s.Ahead:
			if first == nil {
				first = s
			}
		case first != nil:
			l.ds.Add(s.AheadPos, fmt.Sprintf("step %q runs ahead, so it must come before every step that does not; %q (line %d) is before it",
				s.Name, first.Name, first.Pos.Line),
				"move it above "+fmt.Sprintf("%q", first.Name)+", or drop ahead: true")
		case lead == nil:
			lead = s
		case s.AheadFrom != lead.AheadFrom:
			l.ds.Add(s.AheadPos, fmt.Sprintf("ahead steps start together: %q starts %s, %q (line %d) %s",
				s.Name, aheadStart(s.AheadFrom), lead.Name, lead.Pos.Line, aheadStart(lead.AheadFrom)),
				"give every ahead step the same from:")
		}
	}
	if lead == nil || lead.AheadFrom == "" {
		return
	}
	var names []string
	for _, s := range steps {
		if s.Ahead {
			continue
		}
		if s.Name == lead.AheadFrom {
			return
		}
		names = append(names, s.Name)
	}
	detail := diag.Suggest(lead.AheadFrom, names)
	if detail == "" {
		detail = "name a top-level step of steps: below the ahead steps, as its name: is written"
	}
	l.ds.Add(lead.AheadFromPos, fmt.Sprintf("ahead: from: %q names no step of steps: after the ahead steps", lead.AheadFrom), detail)
}

func aheadStart(from string) string {
	if from == "" {
		return "at the last step (ahead: true)"
	}
	return fmt.Sprintf("from %q", from)
}

// AheadSteps is how many steps at the top of steps run ahead (checkAhead
// made sure none comes later).
func (rb *Runbook) AheadSteps() int {
	n := 0
	for _, s := range rb.Steps {
		if !s.Ahead {
			break
		}
		n++
	}
	return n
}
