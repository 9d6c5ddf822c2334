package runner

import (
	"fmt"
)

// deselected reports whether --tags or --skip-tags leave the step out. They
// never apply to a rollback.
func (st *stepRun) deselected() bool {
	return !st.m.rollback && !selected(st.inh.tags, st.h.r.opts.Tags, st.h.r.opts.SkipTags)
}

// guards evaluates the step's whens (its blocks' too) in its scope: a false
// one skips the step, one that cannot be evaluated fails it. done says the
// step goes no further.
func (st *stepRun) guards(o stepOutcome) (_ stepOutcome, done bool) {
	for _, w := range st.inh.when {
		ok, err := w.Bool(st.scope)
		if err != nil {
			return st.failed(o, fmt.Errorf("when: %w", err)), true
		}
		if !ok {
			return skipped(o, fmt.Sprintf("skipped: when `%s` is false", w.Src)), true
		}
	}
	return o, false
}
