package etcdload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"
)

// Journal is what an explanation needs from a runbook run's journal: when
// the run began and ended, and when each step ran on which host.
type Journal struct {
	Started, Ended time.Time // Ended is zero when the journal has no end
	Steps          []JournalStep
}

// JournalStep is one step of a run as its journal tells it.
type JournalStep struct {
	Host, Step, Phase string
	From, To          time.Time // To is zero when the step never ended
}

// journalEvent holds the fields of a journal line (see internal/event) that
// an explanation reads; the others are ignored, so that a journal written
// by another version of runbook still reads.
type journalEvent struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Phase     string    `json:"phase"`
	Host      string    `json:"host"`
	Step      string    `json:"step"`
	StepIndex int       `json:"step_index"`
	Undo      bool      `json:"undo"`
}

// ReadJournal reads a runbook journal (runs/RUN_ID.jsonl in the state
// folder). Lines that are not events are skipped: a run cut short may end
// in half a line.
func ReadJournal(path string) (*Journal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	j := &Journal{}
	open := map[string]int{} // a started step's key → its index in j.Steps
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	events := 0
	for sc.Scan() {
		var e journalEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Time.IsZero() || e.Kind == "" {
			continue
		}
		events++
		key := fmt.Sprintf("%s|%s|%d|%t|%s", e.Phase, e.Host, e.StepIndex, e.Undo, e.Step)
		switch e.Kind {
		case "run_start", "run_resume":
			if j.Started.IsZero() {
				j.Started = e.Time
			}
			j.Ended = time.Time{}
		case "run_end":
			j.Ended = e.Time
		case "step_start", "rollback_step_start":
			open[key] = len(j.Steps)
			phase := e.Phase
			if e.Kind == "rollback_step_start" {
				phase = "rollback"
			}
			j.Steps = append(j.Steps, JournalStep{Host: e.Host, Step: e.Step, Phase: phase, From: e.Time})
		case "step_end", "rollback_step_end":
			if i, ok := open[key]; ok {
				j.Steps[i].To = e.Time
				delete(open, key)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w", path, err)
	}
	if events == 0 {
		return nil, fmt.Errorf("%s holds no runbook journal event; give runs/RUN_ID.jsonl of the run's state folder", path)
	}
	sort.SliceStable(j.Steps, func(a, b int) bool { return j.Steps[a].From.Before(j.Steps[b].From) })
	return j, nil
}

// At is the step that ran at t: the one started last among those running
// then (a block's inner step rather than the block); nil between steps and
// outside the run.
func (j *Journal) At(t time.Time) *JournalStep {
	if j == nil {
		return nil
	}
	var at *JournalStep
	for i := range j.Steps {
		s := &j.Steps[i]
		if s.From.After(t) {
			break
		}
		if s.To.IsZero() || !s.To.Before(t) {
			at = s
		}
	}
	return at
}

// Before is the step that ended last before t, nil when none did.
func (j *Journal) Before(t time.Time) *JournalStep {
	if j == nil {
		return nil
	}
	var last *JournalStep
	for i := range j.Steps {
		s := &j.Steps[i]
		if !s.To.IsZero() && s.To.Before(t) && (last == nil || s.To.After(last.To)) {
			last = s
		}
	}
	return last
}
