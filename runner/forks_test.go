package runner_test

import (
	"fmt"
	"testing"

	"github.com/runbookhq/runbook/runner"
)

// TestForks proves parallelism with a barrier: hosts wait in groups of
// `forks`, so the run only gets through when that many run at once, and the
// barrier counts how many were ever inside together.
func TestForks(t *testing.T) {
	t.Parallel()
	for _, forks := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("forks ", forks), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, fmt.Sprintf(`
runbook: forks
hosts: all
steps:
  - name: meet
    barrier: { key: '{{ key }}', n: %d, total: 4 }
    timeout: 20s
`, forks), "")
			r := e.run(runOpts{opts: func(o *runner.Options) { o.Forks = forks }})
			checkExit(t, r, 0)
			b := barrierFor(e.gates)
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.maxIn != forks {
				t.Errorf("at most %d hosts ran at once, want %d", b.maxIn, forks)
			}
		})
	}
}
