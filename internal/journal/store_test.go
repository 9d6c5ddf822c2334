package journal

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// recLog is a Log that keeps the lines it is given, or refuses from the
// event refuseAt on; fileSize says how much of the file there was when each line
// came, to show the shared copy is written first.
type recLog struct {
	lines    [][]byte
	fileSize []int64
	refuseAt int64
	path     string
	closed   bool
}

func (l *recLog) Append(seq int64, line []byte) error {
	if l.refuseAt > 0 && seq >= l.refuseAt {
		return errors.New("the store is gone")
	}
	fi, _ := os.Stat(l.path)
	l.lines = append(l.lines, bytes.Clone(line))
	l.fileSize = append(l.fileSize, fi.Size())
	return nil
}

func (l *recLog) Close() error { l.closed = true; return nil }

func TestShareCopiesEveryEventFirst(t *testing.T) {
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	l := &recLog{refuseAt: 6, path: j.Path()}
	j.Share(l)
	evs := firstPart()
	emitAll(t, bus, evs[:5]...)
	file, err := os.ReadFile(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(l.lines, nil); !bytes.Equal(got, file) {
		t.Fatalf("the shared copy\n%s\ndiffers from the file\n%s", got, file)
	}
	var size int64
	for i, line := range l.lines {
		if l.fileSize[i] != size {
			t.Errorf("event %d reached the file before the shared copy", i+1)
		}
		size += int64(len(line))
	}
	// Refused by the store: in neither, and the journal stops.
	if err := bus.Emit(evs[5]); err == nil {
		t.Fatal("an event the store refused was accepted")
	}
	l.refuseAt = 0
	if err := bus.Emit(evs[6]); err == nil {
		t.Error("the journal went on after the store refused an event")
	}
	if after, _ := os.ReadFile(j.Path()); !bytes.Equal(after, file) {
		t.Errorf("the file got events the store did not: %s", after[len(file):])
	}
	j.Close()
	if !l.closed {
		t.Error("Close did not close the shared log")
	}
}

func TestDirStoreReadsCompleteLines(t *testing.T) {
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	emitAll(t, bus, firstPart()[:3]...)
	j.Close()
	whole, _ := os.ReadFile(Path(dir, "r1"))
	f, err := os.OpenFile(Path(dir, "r1"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"ki`) // torn by a crash
	f.Close()
	ctx := context.Background()
	data, key, err := Dir(dir).Read(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, whole) || key != nil {
		t.Errorf("Read = %q, key %x; want the complete lines and no key", data, key)
	}
	if _, _, err := Dir(dir).Read(ctx, "r2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of an unknown run: %v", err)
	}
	st, err := Dir(dir).Load(ctx, "r1")
	if err != nil || st.LastSeq != 3 {
		t.Errorf("Load: %v, last seq %v", err, st)
	}
}
