package journal

import (
	"os"
	"sync/atomic"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
)

func TestProcessRecordsOfThisBootWaitForTheNextSync(t *testing.T) {
	if thisBoot() == "" {
		t.Skip("no boot id on this system")
	}
	dir := t.TempDir()
	j, err := Open(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var syncs atomic.Int64
	j.sync = func(f *os.File) error {
		syncs.Add(1)
		return f.Sync()
	}
	bus := event.NewBus("r1", event.Options{})
	bus.Require(j)
	proc := func(boot string) event.Event {
		e := step(event.StepProcess, "h1", 1, 0, "s")
		e.Engine = event.Engine{PGID: 4242, Start: 17, Boot: boot, On: "h1"}
		return e
	}
	steps := []struct {
		name string
		e    event.Event
		sync bool
	}{
		{"run_start", runStart([]string{"h1"}, nil), true},
		{"step_start", step(event.StepStart, "h1", 1, 0, "s"), true},
		{"a process of this machine", proc(thisBoot()), false},
		{"a process of another machine", proc("6b3c0a52-0000-4000-8000-000000000000"), true},
		{"a process of a host that gave no boot id", proc(""), true},
		{"another process of this machine", proc(thisBoot()), false},
		{"step_end, which makes the record before it durable", ended(step(event.StepEnd, "h1", 1, 0, "s"), event.OK, 0, nil, ""), true},
	}
	for _, s := range steps {
		before := syncs.Load()
		if err := bus.Emit(s.e); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := syncs.Load() - before; got != map[bool]int64{false: 0, true: 1}[s.sync] {
			t.Errorf("%s: %d fsyncs, want sync %v", s.name, got, s.sync)
		}
	}
	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != int64(len(steps)) {
		t.Errorf("the journal replays up to seq %d, want %d", st.LastSeq, len(steps))
	}
}
