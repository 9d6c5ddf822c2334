package runner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
)

// TestJournalStory replays the journal of a small run and checks the whole
// story, in order: every step is recorded before it acts and after.
func TestJournalStory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: story
hosts: h1:h2
serial: 1
preflight:
  - { name: ready, command: { cmd: 'true' } }
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: skip, mark: { path: '{{ dir }}/log', text: s }, when: 'host.name == "h9"' }
between_batches:
  - { name: gate, command: { cmd: 'true' } }
post:
  - { name: done, command: { cmd: 'true' } }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 0)
	got := kinds(r.events, nil)
	want := []string{
		"run_start",
		"step_start controller ready", "step_end controller ready changed",
		"batch_start",
		"host_start h1", "step_start h1 a", "step_end h1 a changed", "step_end h1 skip skipped", "host_end h1 ok",
		"batch_end ok",
		"gate_start", "step_start controller gate", "step_end controller gate changed", "gate_end ok",
		"batch_start",
		"host_start h2", "step_start h2 a", "step_end h2 a changed", "step_end h2 skip skipped", "host_end h2 ok",
		"batch_end ok",
		"gate_start", "step_start controller gate", "step_end controller gate changed", "gate_end ok",
		"step_start controller done", "step_end controller done changed",
		"run_end ok",
	}
	if !slices.Equal(got, want) {
		t.Errorf("story:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	info := r.st.Info
	if info.RunbookDigest != e.p.RunbookDigest || info.InventoryDigest != e.p.InventoryDigest || info.Name != "story" ||
		!slices.Equal(info.Hosts, []string{"h1", "h2"}) || len(info.Batches) != 2 || !slices.Equal(info.Args, []string{"exec", "runbook.yml"}) {
		t.Errorf("run_start info %+v", info)
	}
	for _, h := range []string{"h1", "h2"} {
		hs := r.st.Hosts[h]
		if hs.Status != journal.HostDone || len(hs.Steps.Done) != 2 || hs.Steps.InFlight != nil {
			t.Errorf("%s in the journal: %+v", h, hs)
		}
	}
	for i, b := range r.st.Batches {
		if b.Status != journal.BatchDone || b.GateStatus != event.OK {
			t.Errorf("batch %d: %+v", i+1, b)
		}
	}
	if r.st.ExitCode != 0 || r.st.Status != event.OK {
		t.Errorf("run_end %d %s", r.st.ExitCode, r.st.Status)
	}
	ev := endOf(t, r, "h1", "a")
	if ev.Result["line"] != "h1 a" || ev.Duration <= 0 || ev.Batch != 1 {
		t.Errorf("step_end %+v", ev)
	}
}
