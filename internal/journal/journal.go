// Package journal records a run as an append-only file of JSON lines, fsynced event
// by event, and replays it for `runbook resume`, `runbook runs` and `runbook show`.
package journal

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// RunsDir is the folder, inside the state folder, that holds the journals:
//
//	runs/                 mode 0700
//	runs/<RUN_ID>.jsonl   the journal: one event.Event per line, mode 0600
//	runs/<RUN_ID>.lock    flock'ed by the process writing the run; holds its pid
//	runs/<RUN_ID>.key     mode 0600: the key of the run's -e digest (see KeyPath)
//
// A run id is a UTC time and a random suffix (20261124T023955Z-3f9a01), so that
// ids sort by start time and two runs started in the same second differ.
const RunsDir = "runs"

const (
	journalExt = ".jsonl"
	lockExt    = ".lock"
	dirMode    = 0o700
	fileMode   = 0o600
)

var (
	// ErrLocked means another process holds the run; the error is a *LockedError.
	ErrLocked = errors.New("run is in use by another process")
	// ErrExists means Open found a journal for the run id already.
	ErrExists = errors.New("run already exists")
	// ErrEmpty means a journal holds no complete event: the run never started.
	ErrEmpty = errors.New("journal holds no event: the run never started")
)

// LockedError says which process holds a run.
type LockedError struct {
	RunID string
	PID   int    // 0 when the holder has not written it yet
	Lock  string // the lock file
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("run %s is in use by %s (lock %s)", e.RunID, holder, e.Lock)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// NewRunID returns a new run id: the current UTC time to the second and 24
// random bits, which sort by time and do not collide in practice (Open refuses
// an id that exists, so a collision is an error, never a shared journal).
func NewRunID() string { return newRunID(time.Now()) }

func newRunID(t time.Time) string {
	var b [3]byte
	// crypto/rand.Read never fails (it crashes the program if the kernel
	// cannot give randomness).
	_, _ = rand.Read(b[:])
	return t.UTC().Format(idTimeLayout) + "-" + hex.EncodeToString(b[:])
}

const idTimeLayout = "20060102T150405Z"

// timeFromID reads the time a run id was made, for journals too damaged to say.
func timeFromID(id string) (time.Time, bool) {
	if len(id) < len(idTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(idTimeLayout, id[:len(idTimeLayout)])
	return t, err == nil
}

// ValidRunID checks that id can name files: letters, digits, '.', '_' and '-',
// not starting with '.', at most 128 bytes. Ids come from the command line, so
// this is what keeps `runbook show ../../x` inside the state folder.
func ValidRunID(id string) error {
	if id == "" {
		return errors.New("empty run id")
	}
	if len(id) > 128 {
		return fmt.Errorf("run id %.20q… is longer than 128 bytes", id)
	}
	if id[0] == '.' {
		return fmt.Errorf("run id %q starts with a dot", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("run id %q has %q; a run id has letters, digits, '.', '_' and '-' only", id, r)
		}
	}
	return nil
}

// Path is the journal file of run runID under the state folder dir.
func Path(dir, runID string) string {
	return filepath.Join(dir, RunsDir, runID+journalExt)
}

func lockPath(dir, runID string) string {
	return filepath.Join(dir, RunsDir, runID+lockExt)
}

// Journal is the journal of one run, open for appending. It is an event.Sink:
// Emit writes the event as one line and fsyncs before it returns, so an event
// the engine was told is recorded survives a crash (a process of this machine
// is recorded durably by the next event's fsync: see syncNeeded). A Journal is safe for
// concurrent use, though the event.Bus already serialises its calls.
type Journal struct {
	mu    sync.Mutex
	runID string
	path  string
	f     *os.File
	lock  *os.File
	size  int64 // bytes up to the end of the last complete line
	check checker
	// resuming is set by OpenAppend: the first event written must be run_resume,
	// so the story shows where each process took over.
	resuming bool
	// err is the first write or sync failure. After it nothing more is written:
	// once fsync has failed the kernel may have dropped the dirty pages, and
	// writing on could leave a hole in the middle of the file.
	err error
	// sync is f.Sync; tests replace it to see that every event is synced and
	// what happens when syncing fails.
	sync func(*os.File) error
	// shared, when set (Share), gets every event before the file does.
	shared Log
}

var _ event.Sink = (*Journal)(nil)

// Open creates the journal of a new run under the state folder dir and locks
// it. It refuses a run id that already has a journal (ErrExists) or that
// another process holds (ErrLocked).
func Open(dir, runID string) (*Journal, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	if err := makeRunsDir(dir); err != nil {
		return nil, err
	}
	lock, err := acquire(lockPath(dir, runID), runID)
	if err != nil {
		return nil, err
	}
	path := Path(dir, runID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, fileMode)
	if err != nil {
		release(lock)
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("journal %s: %w", path, ErrExists)
		}
		return nil, fmt.Errorf("create journal: %w", err)
	}
	// The umask can only take bits away from 0600, but a umask that takes the
	// owner's write bit would make the journal unwritable to its own resume.
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		release(lock)
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	// The new file's name must survive a crash as well as its content.
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		release(lock)
		return nil, err
	}
	return &Journal{runID: runID, path: path, f: f, lock: lock, sync: (*os.File).Sync}, nil
}

// OpenAppend reopens the journal of an interrupted or crashed run to continue it,
// after replaying it. A torn last line (a crash in the middle of a write) is cut
// off the file and reported in State.Torn; any other damage refuses the resume
// with a *CorruptError. The first event written must be a run_resume.
func OpenAppend(dir, runID string) (*Journal, *State, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, nil, err
	}
	path := Path(dir, runID)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", runID, err)
	}
	lock, err := acquire(lockPath(dir, runID), runID)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		release(lock)
		return nil, nil, fmt.Errorf("open journal: %w", err)
	}
	fail := func(err error) (*Journal, *State, error) {
		f.Close()
		release(lock)
		return nil, nil, err
	}
	st, chk, err := replay(f, path)
	if err != nil {
		return fail(err)
	}
	if st.RunID != runID {
		return fail(&CorruptError{File: path, Line: 1, Msg: fmt.Sprintf("run_id %q does not match the file name", st.RunID)})
	}
	if st.Torn != nil {
		if err := f.Truncate(st.Torn.Offset); err != nil {
			return fail(fmt.Errorf("journal %s: cut torn line: %w", path, err))
		}
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("journal %s: %w", path, err))
		}
	}
	j := &Journal{runID: runID, path: path, f: f, lock: lock, size: st.size, check: chk,
		resuming: true, sync: (*os.File).Sync}
	return j, st, nil
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// RunID is the run the journal records.
func (j *Journal) RunID() string { return j.runID }

// Emit appends e as one line and fsyncs the file (but for the record of a
// process of this machine, see syncNeeded). It refuses an event that would
// make the journal unreadable (a Seq that does not follow, another run's id, an
// event after run_end other than run_resume) without writing it. After a write or
// sync failure every later Emit fails too.
func (j *Journal) Emit(e event.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("journal %s is closed", j.path)
	}
	if j.err != nil {
		return fmt.Errorf("journal %s stopped after an earlier failure: %w", j.path, j.err)
	}
	if e.RunID != j.runID {
		return fmt.Errorf("journal %s: event of run %q", j.path, e.RunID)
	}
	if j.resuming && e.Kind != event.RunResume {
		return fmt.Errorf("journal %s: the first event of a resumed run must be %s, not %s", j.path, event.RunResume, e.Kind)
	}
	if err := j.check.check(e); err != nil {
		return fmt.Errorf("journal %s: refusing event: %w", j.path, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// "<redacted>" is more useful to someone grepping the journal than "\u003credacted\u003e".
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("journal %s: encode event %d: %w", j.path, e.Seq, err)
	}
	if j.shared != nil {
		if err := j.shared.Append(e.Seq, buf.Bytes()); err != nil {
			j.err = err
			return fmt.Errorf("journal %s: event %d not recorded: %w", j.path, e.Seq, err)
		}
	}
	n, err := j.f.Write(buf.Bytes())
	if err != nil {
		// Take a partial line back off, so the file still replays up to the last
		// good event; if that fails too the partial line is at the tail, where
		// Replay treats it as torn.
		if n > 0 {
			_ = j.f.Truncate(j.size)
		}
		j.err = err
		return fmt.Errorf("journal %s: write event %d: %w", j.path, e.Seq, err)
	}
	if syncNeeded(e) {
		if err := j.sync(j.f); err != nil {
			j.err = err
			return fmt.Errorf("journal %s: sync event %d: %w", j.path, e.Seq, err)
		}
	}
	j.size += int64(n)
	j.check.accept(e)
	j.resuming = false
	return nil
}

// Close closes the file and releases the lock. Closing twice is harmless.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	release(j.lock)
	if j.shared != nil {
		_ = j.shared.Close()
	}
	j.f, j.lock, j.shared = nil, nil, nil
	if err != nil {
		return fmt.Errorf("close journal %s: %w", j.path, err)
	}
	return nil
}

// makeRunsDir creates dir/runs with mode 0700, and tightens it if an older
// version or a hand-made folder left it readable by others: journals hold
// results and arguments of production changes.
func makeRunsDir(dir string) error {
	runs := filepath.Join(dir, RunsDir)
	if err := os.MkdirAll(runs, dirMode); err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	fi, err := os.Stat(runs)
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(runs, dirMode); err != nil {
			return fmt.Errorf("state folder: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// isJournalName reports whether name is a journal file and returns its run id.
func isJournalName(name string) (string, bool) {
	id, ok := strings.CutSuffix(name, journalExt)
	if !ok || ValidRunID(id) != nil {
		return "", false
	}
	return id, true
}
