package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Store is a place the journals of runs are kept, listed and read from: the
// state folder (Dir, the files of this package) or a cluster that every
// controller reaches (package etcdjournal). A run is always written to its
// state folder; a Shared store gets a copy of every event as well.
type Store interface {
	// List returns a summary of every run the store keeps, newest first.
	List(ctx context.Context) ([]Summary, error)
	// Load replays the journal of run runID. A run the store does not keep
	// is an error wrapping fs.ErrNotExist.
	Load(ctx context.Context, runID string) (*State, error)
	// Read returns the journal of run runID as the state folder keeps it
	// (one JSON line per event, complete lines only) and the run's key (nil
	// when it has none). A run the store does not keep is an error wrapping
	// fs.ErrNotExist.
	Read(ctx context.Context, runID string) (data, key []byte, err error)
	// String names the store in messages.
	String() string
}

// Shared is a Store that gets every event of a run as the run writes it, so
// that another controller can show it and resume it.
type Shared interface {
	Store
	// Create starts the record of the new run runID with its key; ErrExists
	// when the store has one.
	Create(ctx context.Context, runID string, key []byte) (Log, error)
	// Continue opens run runID's record to append after event lastSeq, the
	// last one the resuming process read.
	Continue(ctx context.Context, runID string, lastSeq int64) (Log, error)
}

// Log is where one run's events go besides its file. Append returns once
// line (event seq, encoded as the file has it, newline included) is durable
// there; it refuses a line that would not follow the last one it holds.
type Log interface {
	Append(seq int64, line []byte) error
	Close() error
}

// Dir is the state folder as a Store: today's files.
type Dir string

var _ Store = Dir("")

// List implements Store.
func (d Dir) List(context.Context) ([]Summary, error) { return List(string(d)) }

// Load implements Store.
func (d Dir) Load(_ context.Context, runID string) (*State, error) { return Load(string(d), runID) }

// Read implements Store.
func (d Dir) Read(_ context.Context, runID string) ([]byte, []byte, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(Path(string(d), runID))
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", runID, err)
	}
	data = completeLines(data)
	key, err := ReadKey(string(d), runID)
	if errors.Is(err, ErrNoKey) {
		return data, nil, nil
	}
	return data, key, err
}

func (d Dir) String() string { return "state folder " + string(d) }

func completeLines(b []byte) []byte {
	return b[:bytes.LastIndexByte(b, '\n')+1]
}

// Share makes the journal copy every event to l before it writes it to its
// file: the shared copy is then never behind the file, and an event the
// shared store refused is in neither. Call it before the first Emit. Close
// closes l.
func (j *Journal) Share(l Log) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.shared = l
}

// ErrDiverged means the local copy of a run's journal holds events its
// shared store does not: they are not the same run's record.
var ErrDiverged = errors.New("the local journal and the shared one differ")

// Import makes the journal (data, complete JSON lines) and key of run runID,
// read from a shared store, the local copy under the state folder dir, so
// that a resume on this controller reads it as its own. A local copy that is
// a beginning of data (the run went on elsewhere) is replaced; one that
// holds anything else is refused with ErrDiverged. The new file is written
// beside the old one and renamed over it, under the run's lock.
func Import(dir, runID string, data, key []byte) error {
	if err := ValidRunID(runID); err != nil {
		return err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return fmt.Errorf("run %s: the shared journal ends without a newline", runID)
	}
	if err := makeRunsDir(dir); err != nil {
		return err
	}
	lock, err := acquire(lockPath(dir, runID), runID)
	if err != nil {
		return err
	}
	defer release(lock)
	path := Path(dir, runID)
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("run %s: %w", runID, err)
	case !bytes.HasPrefix(data, completeLines(old)):
		return fmt.Errorf("run %s: %s holds events the shared journal does not: %w", runID, path, ErrDiverged)
	}
	if err == nil && bytes.Equal(old, data) {
		return importKey(dir, runID, key)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+runID+".import-*")
	if err != nil {
		return fmt.Errorf("run %s: copy the shared journal: %w", runID, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(fileMode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("run %s: copy the shared journal to %s: %w", runID, path, err)
	}
	return importKey(dir, runID, key)
}

// importKey writes the run's key when the state folder has none; one it has
// must be the same.
func importKey(dir, runID string, key []byte) error {
	if key == nil {
		return nil
	}
	have, err := ReadKey(dir, runID)
	if err == nil {
		if !bytes.Equal(have, key) {
			return fmt.Errorf("run %s: the key %s differs from the shared store's: %w", runID, KeyPath(dir, runID), ErrDiverged)
		}
		return nil
	}
	if !errors.Is(err, ErrNoKey) {
		return err
	}
	_, err = storeKey(dir, runID, key)
	return err
}

// Export copies the journal and key of run runID from the state folder dir
// to the shared store to, which must not have the run yet, under the run's
// lock: a run started without a shared store becomes shared when it is
// resumed with one.
func Export(ctx context.Context, dir, runID string, to Shared) error {
	if err := ValidRunID(runID); err != nil {
		return err
	}
	if _, err := os.Stat(Path(dir, runID)); err != nil {
		return fmt.Errorf("run %s: %w", runID, err)
	}
	lock, err := acquire(lockPath(dir, runID), runID)
	if err != nil {
		return err
	}
	defer release(lock)
	data, key, err := Dir(dir).Read(ctx, runID)
	if err != nil {
		return err
	}
	if _, err := Replay(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("run %s: %w", runID, err)
	}
	l, err := to.Create(ctx, runID, key)
	if err != nil {
		return err
	}
	defer l.Close()
	for seq := int64(1); len(data) > 0; seq++ {
		n := bytes.IndexByte(data, '\n') + 1
		if err := l.Append(seq, data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
