package etcdjournal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/runlock"
)

const etcdVersion = "3.6.16"

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: etcdVersion, Members: 1}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// open returns a store on cluster c under a prefix of the test's own.
func open(t *testing.T, c *etcdlab.Cluster, wait time.Duration, onWait func(error, time.Duration)) *Store {
	t.Helper()
	cli, err := runlock.Dial(runlock.EtcdConfig{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: cli, Prefix: etcdlab.KeyPrefix(t, "/t/"), Wait: wait, OnWait: onWait})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// line is event seq of run id as the journal writes it.
func line(id string, seq int64, kind event.Kind) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"time":"2026-12-07T12:00:%02dZ","run_id":%q,"kind":%q}`+"\n", seq, seq%60, id, kind)
}

func TestAppendInOrderAndReadBack(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, lab.Get(t), 0, nil)
	const id = "20261207T120000Z-aaaaaa"
	key := bytes.Repeat([]byte{7}, journal.KeySize)
	l, err := s.Create(ctx, id, key)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for seq, k := range []event.Kind{event.RunStart, event.BatchStart, event.HostStart} {
		ln := line(id, int64(seq+1), k)
		if err := l.Append(int64(seq+1), ln); err != nil {
			t.Fatalf("append %d: %v", seq+1, err)
		}
		want = append(want, ln...)
	}
	data, gotKey, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) || !bytes.Equal(gotKey, key) {
		t.Errorf("Read = %q, key %x\nwant %q, key %x", data, gotKey, want, key)
	}
	if _, err := s.Create(ctx, id, key); !errors.Is(err, journal.ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}
	if _, _, err := s.Read(ctx, "20261207T120000Z-bbbbbb"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of an unknown run: %v, want fs.ErrNotExist", err)
	}
}

// A line larger than etcd takes in one request (a step's big output) is
// kept in pieces and read back whole, in its place.
func TestLargeEventInPieces(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, lab.Get(t), 0, nil)
	const id = "20261207T120000Z-abcdef"
	l, err := s.Create(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(`{"seq":2,"run_id":"` + id + `","kind":"step_end","result":{"stdout":"` + strings.Repeat("x0123456789", 300_000) + `"}}` + "\n")
	lines := [][]byte{line(id, 1, event.RunStart), big, line(id, 3, event.HostEnd)}
	for i, ln := range lines {
		if err := l.Append(int64(i+1), ln); err != nil {
			t.Fatalf("append %d (%d bytes): %v", i+1, len(ln), err)
		}
	}
	if _, err := s.Continue(ctx, id, 3); err != nil {
		t.Errorf("continue after the large event: %v", err)
	}
	data, _, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(lines, nil); !bytes.Equal(data, want) {
		t.Errorf("read back %d bytes, want %d, the same", len(data), len(want))
	}
}

// Two processes continuing one run: the second one's events are refused,
// so the record never interleaves them; a gap is refused too.
func TestAppendRefusesConflictsAndGaps(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, lab.Get(t), 0, nil)
	const id = "20261207T120000Z-cccccc"
	a, err := s.Create(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 2; seq++ {
		if err := a.Append(seq, line(id, seq, event.RunStart)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Continue(ctx, id, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(3, line(id, 3, event.RunResume)); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(3, line(id, 3, event.StepStart)); !errors.Is(err, ErrConflict) {
		t.Errorf("a's event 3 after b's: %v, want ErrConflict", err)
	}
	// The same line again is a retry whose answer was lost: accepted.
	if err := b.Append(3, line(id, 3, event.RunResume)); err != nil {
		t.Errorf("retry of the same event: %v", err)
	}
	if err := b.Append(5, line(id, 5, event.StepStart)); !errors.Is(err, ErrConflict) {
		t.Errorf("event 5 after 3: %v, want ErrConflict", err)
	}
	if _, err := s.Continue(ctx, id, 2); err == nil || !strings.Contains(err.Error(), "another process continued it") {
		t.Errorf("Continue after a stale read: %v", err)
	}
	if _, err := s.Continue(ctx, "20261207T120000Z-dddddd", 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Continue of an unknown run: %v", err)
	}
	data, _, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := string(line(id, 1, event.RunStart)) + string(line(id, 2, event.RunStart)) + string(line(id, 3, event.RunResume))
	if string(data) != want {
		t.Errorf("Read = %q\nwant %q", data, want)
	}
}

// A journal that shares its events: the file and the store hold the same
// lines, the shared copy is written first, and an event the store refuses
// is in neither; List and Load read the run back from the store alone.
func TestJournalSharesEveryEvent(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, lab.Get(t), 0, nil)
	dir := t.TempDir()
	id := journal.NewRunID()
	j, err := journal.Open(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	key, err := journal.CreateKey(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Create(ctx, id, key)
	if err != nil {
		t.Fatal(err)
	}
	j.Share(l)
	bus := event.NewBus(id, event.Options{})
	bus.Require(j)
	for _, e := range []event.Event{
		{Kind: event.RunStart, Data: event.RunInfo{Runbook: "rb.yml", Name: "shared", Hosts: []string{"h1"}, Batches: [][]string{{"h1"}}}.Data()},
		{Kind: event.BatchStart, Batch: 1},
		{Kind: event.HostStart, Batch: 1, Host: "h1"},
	} {
		if err := bus.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	shared, sharedKey, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, shared) || !bytes.Equal(key, sharedKey) {
		t.Fatalf("the store holds\n%s\nthe file\n%s", shared, file)
	}
	// Another process takes the run over in the store: this one's next event
	// is refused and not written to its file, and nothing is written after.
	other, err := s.Continue(ctx, id, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Append(4, line(id, 4, event.RunResume)); err != nil {
		t.Fatal(err)
	}
	err = bus.Emit(event.Event{Kind: event.StepStart, Batch: 1, Host: "h1", Step: "s"})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("emit after a takeover: %v, want ErrConflict", err)
	}
	if after, _ := os.ReadFile(j.Path()); !bytes.Equal(after, file) {
		t.Errorf("the refused event reached the file:\n%s", after[len(file):])
	}
	sums, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].ID != id || sums[0].Name != "shared" || sums[0].Hosts != 1 || sums[0].Resumes != 1 {
		t.Errorf("List = %+v", sums)
	}
	st, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != 4 {
		t.Errorf("Load: last seq %d, want 4", st.LastSeq)
	}
}

// Import makes the store's copy the local one: into an empty state folder,
// over a copy that is behind, never over one that differs.
func TestImportIntoStateFolder(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, lab.Get(t), 0, nil)
	const id = "20261207T120000Z-eeeeee"
	key := bytes.Repeat([]byte{9}, journal.KeySize)
	l, err := s.Create(ctx, id, key)
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus(id, event.Options{})
	var lines [][]byte
	bus.Require(event.SinkFunc(func(e event.Event) error {
		j := fmt.Sprintf(`{"seq":%d,"time":"2026-12-07T12:00:00Z","run_id":%q,"kind":%q`, e.Seq, id, e.Kind)
		if e.Kind == event.RunStart {
			j += `,"data":{"runbook":"rb.yml","hosts":["h1"],"batches":[["h1"]]}`
		}
		lines = append(lines, []byte(j+"}\n"))
		return l.Append(e.Seq, lines[len(lines)-1])
	}))
	for _, k := range []event.Kind{event.RunStart, event.Kind("note")} {
		if err := bus.Emit(event.Event{Kind: k}); err != nil {
			t.Fatal(err)
		}
	}
	data, gotKey, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if err := journal.Import(empty, id, data, gotKey); err != nil {
		t.Fatal(err)
	}
	j, st, err := journal.OpenAppend(empty, id)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if st.LastSeq != 2 {
		t.Errorf("imported journal: last seq %d, want 2", st.LastSeq)
	}
	if k, err := journal.ReadKey(empty, id); err != nil || !bytes.Equal(k, key) {
		t.Errorf("imported key %x, %v", k, err)
	}
	// A copy that is behind is brought up to date.
	behind := t.TempDir()
	if err := journal.Import(behind, id, lines[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := journal.Import(behind, id, data, key); err != nil {
		t.Fatalf("import over a copy that is behind: %v", err)
	}
	if got, _ := os.ReadFile(journal.Path(behind, id)); !bytes.Equal(got, data) {
		t.Errorf("local copy %q, want %q", got, data)
	}
	// A copy with other events is refused and left as it is.
	other := t.TempDir()
	mine := bytes.Replace(data, []byte(`"note"`), []byte(`"other"`), 1)
	if err := journal.Import(other, id, mine, nil); err != nil {
		t.Fatal(err)
	}
	if err := journal.Import(other, id, data, nil); !errors.Is(err, journal.ErrDiverged) {
		t.Errorf("import over a copy that differs: %v, want ErrDiverged", err)
	}
	if got, _ := os.ReadFile(filepath.Join(other, journal.RunsDir, id+".jsonl")); !bytes.Equal(got, mine) {
		t.Errorf("the differing copy was changed")
	}
}

// An acknowledged event survives the cluster stopping and starting again.
// While it is down an event waits, bounded, says so once, then fails; once
// it is back the run's record goes on where it stopped.
func TestDurableAndUnreachable(t *testing.T) {
	ctx := testCtx(t)
	c := etcdlab.New(t, etcdlab.Options{Version: etcdVersion, Members: 1})
	var told atomic.Int32
	var toldErr atomic.Value
	s := open(t, c, 2*time.Second, func(err error, wait time.Duration) {
		told.Add(1)
		toldErr.Store(fmt.Sprintf("%v (wait %s)", err, wait))
	})
	const id = "20261207T120000Z-ffffff"
	l, err := s.Create(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 2; seq++ {
		if err := l.Append(seq, line(id, seq, event.RunStart)); err != nil {
			t.Fatal(err)
		}
	}
	name := c.Members[0].Name
	if err := c.Stop(name); err != nil {
		t.Fatal(err)
	}
	err = l.Append(3, line(id, 3, event.StepStart))
	if err == nil || !strings.Contains(err.Error(), "did not answer for 2s") {
		t.Fatalf("append to a stopped cluster: %v, want a bounded wait's failure", err)
	}
	if n := told.Load(); n != 1 {
		t.Errorf("OnWait told %d times, want once", n)
	}
	if v, _ := toldErr.Load().(string); !strings.Contains(v, "wait 2s") {
		t.Errorf("OnWait got %q", v)
	}
	if err := c.Restart(ctx, name); err != nil {
		t.Fatal(err)
	}
	data, _, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(line(id, 1, event.RunStart)) + string(line(id, 2, event.RunStart)); string(data) != want {
		t.Errorf("after a restart the store holds %q\nwant %q", data, want)
	}
	if err := l.Append(3, line(id, 3, event.StepStart)); err != nil {
		t.Errorf("append once the cluster is back: %v", err)
	}
}

// A run started without the store is copied to it whole, key included,
// once; the copy then goes on like any shared run.
func TestExportLocalRun(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, lab.Get(t), 0, nil)
	dir := t.TempDir()
	id := journal.NewRunID()
	j, err := journal.Open(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := journal.CreateKey(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus(id, event.Options{})
	bus.Require(j)
	for _, e := range []event.Event{
		{Kind: event.RunStart, Data: event.RunInfo{Runbook: "rb.yml", Hosts: []string{"h1"}, Batches: [][]string{{"h1"}}}.Data()},
		{Kind: event.BatchStart, Batch: 1},
	} {
		if err := bus.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	if err := journal.Export(ctx, dir, id, s); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(journal.Path(dir, id))
	data, gotKey, err := s.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, file) || !bytes.Equal(gotKey, key) {
		t.Errorf("exported %q key %x, want %q key %x", data, gotKey, file, key)
	}
	if err := journal.Export(ctx, dir, id, s); !errors.Is(err, journal.ErrExists) {
		t.Errorf("second export: %v, want ErrExists", err)
	}
	if _, err := s.Continue(ctx, id, 2); err != nil {
		t.Errorf("continue the exported run: %v", err)
	}
}
