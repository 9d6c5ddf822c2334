package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// Load replays the journal of run runID under the state folder dir, without
// locking it: `runbook show` may look at a live run. It sets Live and PID when
// a process holds the run. A run that does not exist is an error wrapping
// fs.ErrNotExist.
func Load(dir, runID string) (*State, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	path := Path(dir, runID)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("run %s: no journal %s: %w", runID, path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	defer f.Close()
	st, _, err := replay(f, path)
	if err != nil {
		return nil, err
	}
	if st.RunID != runID {
		return nil, &CorruptError{File: path, Line: 1, Msg: fmt.Sprintf("run_id %q does not match the file name", st.RunID)}
	}
	st.Live, st.PID = holder(lockPath(dir, runID))
	return st, nil
}

// RunStatus is how a run stands, as `runbook runs` shows it.
type RunStatus string

const (
	RunRunning RunStatus = "running" // a process holds it
	RunEnded   RunStatus = "ended"   // run_end recorded; ExitCode says how
	RunCrashed RunStatus = "crashed" // no run_end and no process: resume it
	RunDamaged RunStatus = "damaged" // the journal cannot be replayed; Err says why
)

// Summary is one line of `runbook runs`.
type Summary struct {
	ID          string
	Runbook     string // path as given to exec
	Name        string // the runbook's name
	Started     time.Time
	Ended       time.Time // zero unless Status is RunEnded
	Status      RunStatus
	Outcome     event.Status // of run_end
	ExitCode    int          // of run_end
	PID         int          // of the holder, when running
	Hosts       int
	HostsDone   int
	HostsFailed int  // failed, rolled back, rollback failed or unreachable
	Resumes     int  // times the run was resumed
	Torn        bool // the journal ended with a torn line
	Err         error
}

// Summary sums up the state for `runbook runs`.
func (s *State) Summary() Summary {
	sum := Summary{
		ID: s.RunID, Runbook: s.Info.Runbook, Name: s.Info.Name, Started: s.Started,
		Hosts: len(s.Hosts), Resumes: len(s.Resumes), Torn: s.Torn != nil, PID: s.PID,
	}
	for _, h := range s.Hosts {
		switch h.Status {
		case HostDone:
			sum.HostsDone++
		case HostFailed, HostRolledBack, HostRollbackFailed, HostUnreachable:
			sum.HostsFailed++
		}
	}
	switch {
	case s.Live:
		sum.Status = RunRunning
	case s.Finished:
		sum.Status, sum.Ended, sum.Outcome, sum.ExitCode = RunEnded, s.Ended, s.Status, s.ExitCode
	default:
		sum.Status = RunCrashed
	}
	return sum
}

// List returns a summary of every run under the state folder dir, newest first.
// A journal that cannot be replayed is listed as damaged, with the reason, rather
// than hiding the others. No state folder yet means no runs.
func List(dir string) ([]Summary, error) {
	entries, err := os.ReadDir(filepath.Join(dir, RunsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []Summary
	for _, ent := range entries {
		id, ok := isJournalName(ent.Name())
		if !ok || !ent.Type().IsRegular() {
			continue
		}
		st, err := Load(dir, id)
		if err != nil {
			sum := Summary{ID: id, Status: RunDamaged, Err: err}
			sum.Started, _ = timeFromID(id)
			if live, pid := holder(lockPath(dir, id)); live {
				sum.Status, sum.PID = RunRunning, pid
			}
			out = append(out, sum)
			continue
		}
		out = append(out, st.Summary())
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}
