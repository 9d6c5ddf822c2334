package journal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the length of a run's key, in bytes.
const KeySize = 32

const keyExt = ".key"

// KeyPath is the file of run runID's key, beside its journal:
//
//	runs/<RUN_ID>.key     mode 0600: the random key of the run's -e digest
//
// The journal records the -e variables only as an HMAC keyed with it, so that
// someone who can read journals cannot confirm a guessed secret by hashing it,
// while `runbook resume` (which reads the key) can still check that it was
// given the same -e again.
func KeyPath(dir, runID string) string {
	return filepath.Join(dir, RunsDir, runID+keyExt)
}

// CreateKey makes run runID's key: new random bytes in a file that must not
// exist yet (a file or link left there by someone else is refused, never
// followed or reused), mode 0600, synced with its name.
func CreateKey(dir, runID string) ([]byte, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	if err := makeRunsDir(dir); err != nil {
		return nil, err
	}
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails: see NewRunID
	return storeKey(dir, runID, key)
}

// storeKey writes key as run runID's key file, as CreateKey describes.
func storeKey(dir, runID string, key []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the run's key has %d bytes, want %d", len(key), KeySize)
	}
	path := KeyPath(dir, runID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, fileMode)
	if err != nil {
		return nil, fmt.Errorf("create the run's key: %w", err)
	}
	err = f.Chmod(fileMode)
	if err == nil {
		_, err = f.Write(key)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write the run's key %s: %w", path, err)
	}
	return key, nil
}

// ErrNoKey means a run has no key file: it was started by a version of runbook
// that did not make one, or the file was removed.
var ErrNoKey = errors.New("the run has no key")

// ReadKey reads run runID's key. A link, a file that is not regular or one of
// the wrong size is refused.
func ReadKey(dir, runID string) ([]byte, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	path := KeyPath(dir, runID)
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("read the run's key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read the run's key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the run's key %s is not a regular file", path)
	}
	key := make([]byte, KeySize+1)
	n, err := io.ReadFull(f, key)
	if err != io.ErrUnexpectedEOF || n != KeySize {
		return nil, fmt.Errorf("the run's key %s is damaged: want %d bytes", path, KeySize)
	}
	return key[:KeySize], nil
}
