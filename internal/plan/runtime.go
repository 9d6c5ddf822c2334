package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

// runTimeNames says which names only a run can give a value: module facts,
// what steps register, the names a step sets for itself (result, item,
// failed...) and the clock. Everything else an expression reads (vars, host,
// run, functions, the inventory) is known once the plan is built.
type runTimeNames struct {
	registered map[string]bool
	reg        *modules.Registry
	// items: item and loop_index are known, in a step whose loop's inputs
	// are; it is then checked once per item.
	items bool
	// file is the runbook's: a step read from another file names it.
	file string
}

// withItems is rt for the fields of a step whose loop items are known.
func (rt *runTimeNames) withItems() *runTimeNames {
	c := *rt
	c.items = true
	return &c
}

// forStep is rt for the fields of s other than its loop.
func (rt *runTimeNames) forStep(s *spec.Step) *runTimeNames {
	if s.Loop != nil && len(rt.of(s.Loop.Names())) == 0 {
		return rt.withItems()
	}
	return rt
}

// ownNames are set by the run for one step: its result, its loop item, and
// in rollback steps what failed and what completed.
var ownNames = []string{"result", "item", "loop_index", "failed", "completed"}

// clockNames read the time the step runs at: a guard like in_window(...)
// decided now says nothing about the run, so it is not used to skip a step.
var clockNames = []string{"now", "in_window"}

func newRunTimeNames(rb *spec.Runbook, reg *modules.Registry) *runTimeNames {
	rt := &runTimeNames{registered: map[string]bool{}, reg: reg, file: rb.File}
	for _, s := range rb.AllSteps() {
		if s.Register != "" {
			rt.registered[s.Register] = true
		}
		for _, v := range s.SetsVars {
			rt.registered[v] = true // set by set_fact when the run gets there
		}
	}
	return rt
}

// of returns the names among names that only the run knows.
func (rt *runTimeNames) of(names []string) []string {
	var out []string
	for _, n := range names {
		if rt.items && (n == "item" || n == "loop_index") {
			continue
		}
		_, fact := rt.reg.LookupFacts(n)
		if fact || rt.registered[n] || slices.Contains(ownNames, n) || slices.Contains(clockNames, n) {
			out = append(out, n)
		}
	}
	return out
}

func (rt *runTimeNames) waits(t *eval.Template) bool { return len(rt.of(t.Names())) > 0 }

// runTimeChecks lists, for the plan, the fields of step s that can only be
// checked when it runs, and the run-time names each reads.
func (rt *runTimeNames) runTimeChecks(s *spec.Step) []string {
	var out []string
	srt := rt.forStep(s)
	add := func(field string, names []string) {
		if w := srt.of(names); len(w) > 0 {
			out = append(out, field+" reads "+strings.Join(w, ", "))
		}
	}
	for i, w := range s.When {
		if w.Name == spec.NotifiedProgram {
			continue // the plan says "when notified by"
		}
		field := "when"
		if len(s.When) > 1 {
			field = fmt.Sprintf("when[%d]", i)
		}
		add(field, w.Names())
	}
	if s.Loop != nil {
		if w := rt.of(s.Loop.Names()); len(w) > 0 {
			out = append(out, "loop reads "+strings.Join(w, ", "))
		}
	}
	if s.DelegateTemplate != nil {
		add("delegate_to", s.DelegateTemplate.Names())
	}
	for _, t := range sortedTemplates(s) {
		field := t.Name
		if field == "" {
			field = s.Module
		}
		add(field, t.Names())
	}
	for _, g := range []struct {
		field string
		p     *eval.Program
	}{{"until", s.Until}, {"failed_when", s.FailedWhen}, {"changed_when", s.ChangedWhen}} {
		if g.p != nil {
			add(g.field, g.p.Names())
		}
	}
	return out
}

// sortedTemplates are the argument templates of s in document order.
func sortedTemplates(s *spec.Step) []*eval.Template {
	out := make([]*eval.Template, 0, len(s.Templates))
	for _, t := range s.Templates {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos.Before(out[j].Pos) })
	return out
}
