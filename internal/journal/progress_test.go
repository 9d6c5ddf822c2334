package journal

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
)

// replayEvents numbers evs as a Bus would and replays them.
func replayEvents(t *testing.T, evs ...event.Event) *State {
	t.Helper()
	var buf bytes.Buffer
	for i, e := range evs {
		e.Seq, e.RunID, e.Time = int64(i+1), "r1", t0
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	st, err := Replay(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestProgressCrashedRun(t *testing.T) {
	st := replayEvents(t, firstPart()...)
	e1, e2, e3 := st.Hosts["etcd-1"], st.Hosts["etcd-2"], st.Hosts["etcd-3"]
	if !e1.Finished() || e2.Finished() || !e3.Finished() {
		t.Errorf("finished: etcd-1 %v etcd-2 %v etcd-3 %v, want true false true", e1.Finished(), e2.Finished(), e3.Finished())
	}
	if got := completedIndexes(e1.Progress); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("etcd-1 completed %v", got)
	}
	p2 := e2.Progress
	if got := completedIndexes(p2); !slices.Equal(got, []int{0}) || p2.Rerun == nil || p2.Rerun.Index != 2 || !p2.Open {
		t.Errorf("etcd-2: completed %v, rerun %+v, open %v; want [0], swap, open", got, p2.Rerun, p2.Open)
	}
	if p3 := e3.Progress; p3.Rollback() != nil || p3.Open || p3.EndSeq == 0 {
		t.Errorf("etcd-3: rollback %+v open %v end seq %d: its rollback ended, and so did it", p3.Rollback(), p3.Open, p3.EndSeq)
	}
}

func TestProgress(t *testing.T) {
	hosts := []string{"h1"}
	start := func(i int, name string) event.Event { return step(event.StepStart, "h1", 1, i, name) }
	end := func(i int, name string, st event.Status) event.Event {
		return ended(step(event.StepEnd, "h1", 1, i, name), st, 0, map[string]any{"n": float64(i)}, "")
	}
	head := []event.Event{runStart(hosts, [][]string{hosts}), {Kind: event.HostStart, Batch: 1, Host: "h1"}}
	rbStart := func(reason string, idx int) event.Event {
		return event.Event{Kind: event.RollbackStart, Batch: 1, Host: "h1", Error: "boom",
			Engine: event.Engine{Reason: reason, FailedStep: "b", FailedIndex: event.IntPtr(idx)}}
	}
	proc := event.Event{Kind: event.StepProcess, Phase: event.Steps, Batch: 1, Host: "h1", StepIndex: 1, Step: "b",
		Engine: event.Engine{PGID: 4242, On: "h1", Start: 7, Boot: "boot-1"}}
	ignored := end(1, "b", event.Failed)
	ignored.Ignored = true

	tests := []struct {
		name      string
		evs       []event.Event
		completed []int
		rerun     int // -1: none
		rollback  string
		failedAt  int
		rbDone    []RollbackKey
		leftovers int
		over      bool
		finished  bool
	}{
		{name: "a step in flight runs again", evs: []event.Event{start(0, "a"), end(0, "a", event.OK), start(1, "b"), proc},
			completed: []int{0}, rerun: 1, leftovers: 1},
		{name: "a step stopped mid-way runs again, its command may run on",
			evs:       []event.Event{start(0, "a"), end(0, "a", event.OK), start(1, "b"), proc, end(1, "b", event.Interrupted)},
			completed: []int{0}, rerun: 1, leftovers: 1},
		{name: "a step that ended leaves no command",
			evs:       []event.Event{start(1, "b"), proc, end(1, "b", event.Changed)},
			completed: []int{1}, rerun: -1},
		{name: "a failure ignored is completed", evs: []event.Event{start(1, "b"), ignored},
			completed: []int{1}, rerun: -1},
		{name: "a failure decided before its rollback began", evs: []event.Event{start(0, "a"), end(0, "a", event.OK), start(1, "b"), end(1, "b", event.Failed)},
			completed: []int{0}, rerun: -1, rollback: "failed", failedAt: 1},
		{name: "a rollback in flight keeps what it undid",
			evs: []event.Event{start(0, "a"), end(0, "a", event.Changed), start(1, "b"), end(1, "b", event.Failed), rbStart("failed", 1),
				ended(undo(event.RollbackStepEnd, "h1", 0, "a"), event.OK, 0, nil, "")},
			completed: []int{0}, rerun: -1, rollback: "failed", failedAt: 1,
			rbDone: []RollbackKey{{Phase: event.Rollback, Index: 0, Undo: true}}},
		{name: "rolled back after an interrupt, the host starts over",
			evs: []event.Event{start(0, "a"), end(0, "a", event.Changed), rbStart("interrupted", 1),
				ended(event.Event{Kind: event.RollbackEnd, Batch: 1, Host: "h1"}, event.RolledBack, 0, nil, "")},
			rerun: -1, over: true, finished: true},
		{name: "a host stopped by the operator after that rollback is not finished",
			evs: []event.Event{start(0, "a"), end(0, "a", event.Changed), rbStart("interrupted", 1),
				ended(event.Event{Kind: event.RollbackEnd, Batch: 1, Host: "h1"}, event.RolledBack, 0, nil, ""),
				ended(event.Event{Kind: event.HostEnd, Batch: 1, Host: "h1"}, event.Interrupted, 0, nil, "")},
			rerun: -1, over: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := replayEvents(t, append(slices.Clone(head), tt.evs...)...)
			p := st.Hosts["h1"].Progress
			if got := completedIndexes(p); !slices.Equal(got, tt.completed) {
				t.Errorf("completed %v, want %v", got, tt.completed)
			}
			switch {
			case tt.rerun < 0 && p.Rerun != nil:
				t.Errorf("rerun %+v, want none", p.Rerun)
			case tt.rerun >= 0 && (p.Rerun == nil || p.Rerun.Index != tt.rerun):
				t.Errorf("rerun %+v, want step %d", p.Rerun, tt.rerun)
			}
			rb := p.Rollback()
			switch {
			case tt.rollback == "" && rb != nil:
				t.Errorf("rollback %+v, want none", rb)
			case tt.rollback != "" && (rb == nil || rb.Reason != tt.rollback || rb.FailedIndex != tt.failedAt || rb.FailedStep != "b"):
				t.Errorf("rollback %+v, want %s at step %d", rb, tt.rollback, tt.failedAt)
			case rb != nil && len(rb.Done) != len(tt.rbDone):
				t.Errorf("rollback done %v, want %v", rb.Done, tt.rbDone)
			}
			for _, k := range tt.rbDone {
				if _, ok := rb.Done[k]; !ok {
					t.Errorf("rollback done %v lacks %+v", rb.Done, k)
				}
			}
			if len(p.Leftovers) != tt.leftovers || tt.leftovers > 0 && (p.Leftovers[0].PGID != 4242 || p.Leftovers[0].On != "h1") {
				t.Errorf("leftovers %+v, want %d", p.Leftovers, tt.leftovers)
			}
			if p.StartedOver != tt.over {
				t.Errorf("started over %v, want %v", p.StartedOver, tt.over)
			}
			// Rolled back, only its host_end missing: it ended, and a resume
			// closes its story.
			if got := st.Hosts["h1"].Finished(); got != tt.finished {
				t.Errorf("finished %v, want %v", got, tt.finished)
			}
		})
	}
}

func completedIndexes(p Progress) []int {
	var out []int
	for i := range p.Completed {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}
