package plan

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

func phases(rb *spec.Runbook, reg *modules.Registry) []Phase {
	rt := newRunTimeNames(rb, reg)
	var out []Phase
	if len(rb.Preflight) > 0 {
		out = append(out, Phase{Name: string(spec.PhasePreflight), Runs: "once", Steps: steps(rb.Preflight, rt), Compiled: rb.Preflight})
	}
	out = append(out, Phase{Name: string(spec.PhaseSteps), Runs: "per host", Steps: steps(rb.Steps, rt), Compiled: rb.Steps})
	out = append(out, rollbackPhase(rb.Rollback, rb.Steps, rt))
	if len(rb.BetweenBatches) > 0 {
		out = append(out, Phase{Name: string(spec.PhaseBetweenBatches), Runs: "after each batch", Steps: steps(rb.BetweenBatches, rt), Compiled: rb.BetweenBatches})
	}
	if len(rb.Post) > 0 {
		out = append(out, Phase{Name: string(spec.PhasePost), Runs: "once", Steps: steps(rb.Post, rt), Compiled: rb.Post})
	}
	return out
}

func rollbackPhase(r spec.Rollback, covered []*spec.Step, rt *runTimeNames) Phase {
	ph := Phase{Name: string(spec.PhaseRollback), Runs: "per failed host"}
	switch {
	case r.None:
		ph.Mode = RollbackNone
	case len(r.Steps) > 0:
		ph.Mode = RollbackExplicit
		ph.Steps = steps(r.Steps, rt)
		ph.Compiled = r.Steps
	default:
		ph.Mode = RollbackAutomatic
	}
	return ph
}

func steps(ss []*spec.Step, rt *runTimeNames) []Step {
	out := make([]Step, 0, len(ss))
	for _, s := range ss {
		ps := Step{
			ID:           s.ID,
			Name:         s.Name,
			Module:       s.Module,
			Line:         s.Pos.Line,
			Retries:      s.Retries,
			Delay:        dur(s.Delay),
			Timeout:      dur(s.Timeout),
			Register:     s.Register,
			IgnoreErrors: s.IgnoreErrors,
			RunOnce:      s.RunOnce,
			Ahead:        s.Ahead,
			AheadFrom:    s.AheadFrom,
			DelegateTo:   s.DelegateTo,
			Become:       s.Become,
			NoLog:        s.NoLog,
			Tags:         s.Tags,
			RunTime:      rt.runTimeChecks(s),
		}
		if s.Pos.File != rt.file && s.Pos.File != "" {
			ps.File = s.Pos.File
		}
		if s.Loop != nil {
			ps.Loop = s.Loop.Src
		}
		for _, w := range s.When {
			if s.Handler != nil && w.Name == spec.NotifiedProgram {
				continue // said by NotifiedBy
			}
			ps.When = append(ps.When, w.Src)
		}
		if spec.IsHiddenRegister(ps.Register) {
			ps.Register = ""
		}
		ps.Notify = s.Notify
		if s.Handler != nil {
			ps.Handler = true
			for _, n := range s.Handler.NotifiedBy {
				ps.NotifiedBy = append(ps.NotifiedBy, n.Name)
			}
		}
		if s.Until != nil {
			ps.Until = s.Until.Src
		}
		if s.FailedWhen != nil {
			ps.FailedWhen = s.FailedWhen.Src
		}
		if s.ChangedWhen != nil {
			ps.ChangedWhen = s.ChangedWhen.Src
		}
		if s.IsBlock() {
			ps.Block = steps(s.Block, rt)
			if s.Rollback != nil {
				rb := rollbackPhase(*s.Rollback, s.Block, rt)
				rb.Runs = "when a step of the block fails"
				ps.Rollback = &rb
			}
			if s.Import != nil {
				ps.Import = s.Import.File
				ps.Params = importParams(s.Import)
				inFile(ps.Block, s.Import.File)
				if ps.Rollback != nil {
					inFile(ps.Rollback.Steps, s.Import.File)
				}
			}
		} else if info, ok := rt.reg.Lookup(s.Module); ok {
			ps.Undo = firstSentence(info.Doc.Undo)
			if ps.Undo == "" {
				ps.Undo = "irreversible"
			}
		}
		out = append(out, ps)
	}
	return out
}

// importParams shows what an import binds: a value as JSON, a template as written.
func importParams(imp *spec.Import) map[string]string {
	if len(imp.Params) == 0 {
		return nil
	}
	out := make(map[string]string, len(imp.Params))
	for k, p := range imp.Params {
		if p.Template != nil {
			out[k] = p.Template.Src
			continue
		}
		b, err := json.Marshal(p.Value)
		if err != nil {
			b = []byte(fmt.Sprint(p.Value))
		}
		out[k] = string(b)
	}
	return out
}

// inFile records file on steps read from it; a nested import has set its own.
func inFile(ss []Step, file string) {
	for i := range ss {
		if ss[i].File == "" {
			ss[i].File = file
		}
		inFile(ss[i].Block, file)
		if ss[i].Rollback != nil {
			inFile(ss[i].Rollback.Steps, file)
		}
	}
}

func dur(d arg.Duration) string {
	if d == 0 {
		return ""
	}
	return time.Duration(d).String()
}

// firstSentence keeps a module's undo documentation to one line for the plan:
// the first sentence, with line breaks folded.
func firstSentence(doc string) string {
	s := strings.Join(strings.Fields(doc), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}
