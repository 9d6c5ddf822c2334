package runner_test

import (
	"bytes"
	"slices"
	"testing"
)

// TestRunResumed checks that run.resumed is false in a run and true in its
// resume, in preflight (which runs again) and in the hosts' steps: a runbook
// such as upgrade-etcd accepts on resume the half-done state it refuses to
// start from.
func TestRunResumed(t *testing.T) {
	t.Parallel()
	const rb = `
runbook: resumed
hosts: h1:h2
serial: 1
preflight:
  - { name: pre, mark: { path: '{{ dir }}/log', text: 'pre {{ run.resumed }}' } }
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: 'a {{ run.resumed }}' } }
`
	full := newEnv(t, rb, "")
	whole := full.run(runOpts{})
	checkExit(t, whole, 0)
	if got, want := full.lines("log"), []string{"controller pre false", "h1 a false", "h2 a false"}; !slices.Equal(got, want) {
		t.Fatalf("the run wrote %q, want %q", got, want)
	}

	// Cut the journal after h1's host_end, as a crash there would.
	lines := bytes.SplitAfter(whole.raw, []byte("\n"))
	cut := -1
	for i, l := range lines {
		if kindOf(t, l) == "host_end h1" {
			cut = i + 1
			break
		}
	}
	if cut < 0 {
		t.Fatalf("no host_end of h1 in the journal:\n%s", whole.raw)
	}
	e, r, _ := resumeCut(t, rb, full.runID, lines[:cut])
	checkExit(t, r, 0)
	if got, want := e.lines("log"), []string{"controller pre true", "h2 a true"}; !slices.Equal(got, want) {
		t.Errorf("the resume wrote %q, want %q\n%s", got, want, r.story())
	}
}
