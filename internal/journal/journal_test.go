package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
)

// The test binary doubles as a process that holds a run, for the lock tests:
// with JOURNAL_TEST_HOLD_DIR and _ID set it opens the run, says "held" and keeps
// it until its stdin closes.
func TestMain(m *testing.M) {
	if dir := os.Getenv("JOURNAL_TEST_HOLD_DIR"); dir != "" {
		os.Exit(holdRun(dir, os.Getenv("JOURNAL_TEST_HOLD_ID")))
	}
	os.Exit(m.Run())
}

func holdRun(dir, id string) int {
	// A bound in case the parent test dies without closing our stdin.
	time.AfterFunc(time.Minute, func() { os.Exit(3) })
	j, err := Open(dir, id)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer j.Close()
	fmt.Println("held")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func TestOpenModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	j, err := Open(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, c := range []struct {
		path string
		want fs.FileMode
	}{
		{filepath.Join(dir, RunsDir), 0o700 | fs.ModeDir},
		{Path(dir, "r1"), 0o600},
		{filepath.Join(dir, RunsDir, "r1.lock"), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(c.path), fi.Mode(), c.want)
		}
	}
	if j.Path() != Path(dir, "r1") || j.RunID() != "r1" {
		t.Errorf("Path %q RunID %q", j.Path(), j.RunID())
	}
}

func TestOpenTightensLooseRunsDir(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, RunsDir)
	if err := os.Mkdir(runs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(runs, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	j, err := Open(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	fi, err := os.Stat(runs)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("runs folder left at %v", fi.Mode().Perm())
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	// Another open file description conflicts with the flock even in this process.
	_, err = Open(dir, "r1")
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second Open while held: %v", err)
	}
	if _, _, err := OpenAppend(dir, "r1"); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenAppend while held: %v", err)
	}
	j.Close()
	if _, err := Open(dir, "r1"); !errors.Is(err, ErrExists) {
		t.Fatalf("Open of an existing run: %v", err)
	}
	if _, _, err := OpenAppend(dir, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenAppend of a missing run: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "r 1", strings.Repeat("x", 129)} {
		if _, err := Open(dir, bad); err == nil {
			t.Errorf("Open accepted run id %q", bad)
		}
		if _, err := Load(dir, bad); err == nil {
			t.Errorf("Load accepted run id %q", bad)
		}
	}
}

// TestLockedByAnotherProcess holds a run in a child process (this test binary,
// re-executed) and checks that this process is refused with the child's pid, sees
// the run as running, and gets the run once the child lets go.
func TestLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "JOURNAL_TEST_HOLD_DIR="+dir, "JOURNAL_TEST_HOLD_ID=held-run")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("child said %q, %v", line, err)
	}

	_, err = Open(dir, "held-run")
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Open of a run held by another process: %v", err)
	}
	if le.PID != cmd.Process.Pid {
		t.Errorf("LockedError.PID = %d, want the child's %d", le.PID, cmd.Process.Pid)
	}
	if want := fmt.Sprintf("run held-run is in use by process %d", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
	if _, _, err := OpenAppend(dir, "held-run"); !errors.Is(err, ErrLocked) {
		t.Errorf("OpenAppend of a held run: %v", err)
	}
	runs, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The child wrote nothing yet: the journal is empty, but the run is live.
	if len(runs) != 1 || runs[0].Status != RunRunning || runs[0].PID != cmd.Process.Pid {
		t.Errorf("List while held: %+v", runs)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// Released: the run is ours now (it is empty, so there is nothing to resume).
	if _, _, err := OpenAppend(dir, "held-run"); !errors.Is(err, ErrEmpty) {
		t.Errorf("OpenAppend after release: %v, want ErrEmpty", err)
	}
}

func TestConcurrentEmit(t *testing.T) {
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
	if err := bus.Emit(runStart([]string{"h"}, nil)); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := fmt.Sprintf("h%d", w)
			for i := range each {
				if err := bus.Emit(step(event.StepStart, host, 1, i, "s")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs := readLines(t, j.Path())
	if len(evs) != 1+workers*each {
		t.Fatalf("%d lines, want %d", len(evs), 1+workers*each)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("line %d has seq %d", i+1, e.Seq)
		}
	}
	if got := syncs.Load(); got != int64(len(evs)) {
		t.Errorf("%d fsyncs for %d events: every event must be synced before Emit returns", got, len(evs))
	}
	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != int64(len(evs)) || len(st.Hosts) != 1+workers {
		t.Errorf("replay: last seq %d, %d hosts", st.LastSeq, len(st.Hosts))
	}
}

func TestSyncFailureStopsJournal(t *testing.T) {
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	emitAll(t, bus, runStart([]string{"h"}, nil))
	j.sync = func(*os.File) error { return errors.New("input/output error") }
	err := bus.Emit(event.Event{Kind: event.HostStart, Host: "h"})
	if err == nil || !strings.Contains(err.Error(), "sync event 2: input/output error") {
		t.Fatalf("sync failure: %v", err)
	}
	j.sync = (*os.File).Sync
	err = bus.Emit(event.Event{Kind: event.HostEnd, Host: "h", Status: event.OK})
	if err == nil || !strings.Contains(err.Error(), "stopped after an earlier failure") {
		t.Fatalf("write after a failed sync: %v", err)
	}
	// What was written still replays: the line whose sync failed reached the
	// file, so the event is there or the tail is torn; nothing after it is.
	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != 2 {
		t.Errorf("last seq %d, want 2", st.LastSeq)
	}
}

func TestWriteFailureStopsJournal(t *testing.T) {
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	emitAll(t, bus, runStart([]string{"h"}, nil))
	j.f.Close() // the next write fails as a full disk would
	if err := bus.Emit(event.Event{Kind: event.HostStart, Host: "h"}); err == nil || !strings.Contains(err.Error(), "write event 2") {
		t.Fatalf("write failure: %v", err)
	}
	if err := bus.Emit(event.Event{Kind: event.HostStart, Host: "h"}); err == nil {
		t.Fatal("a journal that failed to write accepted another event")
	}
	st, err := Load(dir, "r1")
	if err != nil || st.LastSeq != 1 {
		t.Fatalf("after a failed write: %v, last seq %v", err, st)
	}
}

// A disk that is full (/dev/full answers every write with ENOSPC) fails the
// event and every one after it, and the file keeps what was recorded.
func TestFullDiskStopsJournal(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	emitAll(t, bus, runStart([]string{"h"}, nil))
	good := j.f
	j.f = full
	err = bus.Emit(event.Event{Kind: event.HostStart, Host: "h"})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), j.Path()) {
		t.Fatalf("write to a full disk: %v, want ENOSPC naming %s", err, j.Path())
	}
	j.f = good
	if err := bus.Emit(event.Event{Kind: event.HostStart, Host: "h"}); err == nil {
		t.Fatal("a journal that failed to write accepted another event")
	}
	full.Close()
	st, err := Load(dir, "r1")
	if err != nil || st.LastSeq != 1 {
		t.Fatalf("after a failed write: %v, last seq %v", err, st)
	}
}

func TestEmitRefusesUnreadableEvents(t *testing.T) {
	ev := func(seq int64, kind event.Kind, mod ...func(*event.Event)) event.Event {
		e := event.Event{Seq: seq, Time: t0, RunID: "r1", Kind: kind}
		if kind == event.RunStart {
			e.Data = runStart(nil, nil).Data
		}
		for _, m := range mod {
			m(&e)
		}
		return e
	}
	tests := []struct {
		name    string
		before  []event.Event
		ev      event.Event
		wantErr string
	}{
		{"first is not run_start", nil, ev(1, event.HostStart, func(e *event.Event) { e.Host = "h" }), "a journal begins with run_start"},
		{"seq does not start at 1", nil, ev(2, event.RunStart), "the first event has seq 2; a journal begins at seq 1"},
		{"gap", []event.Event{ev(1, event.RunStart)}, ev(3, event.Interrupt), "seq 3 follows seq 1: event 2 is missing"},
		{"repeat", []event.Event{ev(1, event.RunStart)}, ev(1, event.Interrupt), "the sequence goes back"},
		{"other run", []event.Event{ev(1, event.RunStart)}, ev(2, event.Interrupt, func(e *event.Event) { e.RunID = "r2" }), `event of run "r2"`},
		{"second run_start", []event.Event{ev(1, event.RunStart)}, ev(2, event.RunStart), "second run_start"},
		{"after run_end", []event.Event{ev(1, event.RunStart), ev(2, event.RunEnd)}, ev(3, event.Interrupt), "only run_resume may"},
		{"host event without host", []event.Event{ev(1, event.RunStart)}, ev(2, event.StepStart), "names no host"},
		{"gate without batch", []event.Event{ev(1, event.RunStart)}, ev(2, event.GateStart), "names no batch"},
		{"no kind", []event.Event{ev(1, event.RunStart)}, ev(2, ""), "has no kind"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			id := "r1"
			j, err := Open(dir, id)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			for _, e := range tt.before {
				if err := j.Emit(e); err != nil {
					t.Fatal(err)
				}
			}
			err = j.Emit(tt.ev)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("case %d: got %v, want an error with %q", i, err, tt.wantErr)
			}
			if got := len(readLines(t, j.Path())); got != len(tt.before) {
				t.Errorf("a refused event was written: %d lines", got)
			}
			// A refused event is not a failure of the file: good events go on.
			if len(tt.before) > 0 {
				next := ev(int64(len(tt.before)+1), event.RunResume, func(e *event.Event) { e.Data = event.RunInfo{}.Data() })
				if err := j.Emit(next); err != nil {
					t.Errorf("a good event after a refused one: %v", err)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	emitAll(t, bus, runStart(nil, nil))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := bus.Emit(event.Event{Kind: event.Interrupt}); err == nil || !strings.Contains(err.Error(), "is closed") {
		t.Errorf("Emit after Close: %v", err)
	}
	// The lock went with Close.
	j2, _, err := OpenAppend(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	j2.Close()
}

func TestRedactedOnDisk(t *testing.T) {
	dir := t.TempDir()
	secrets := &redact.Set{}
	secrets.Add("hunter2")
	j, bus := newRun(t, dir, "r1", t0, secrets)
	emitAll(t, bus, runStart([]string{"h"}, nil),
		noLog(ended(step(event.StepEnd, "h", 1, 0, "fetch token"), event.Failed, 0,
			map[string]any{"stdout": "tok-abcdef"}, "curl -H 'Authorization: tok-abcdef' failed")),
		ended(step(event.StepEnd, "h", 1, 1, "use it"), event.Failed, 0,
			map[string]any{"argv": []any{"login", "--password", "hunter2"}, "nested": map[string]any{"env": []any{"PW=hunter2"}}},
			"login --password hunter2: exit status 1"),
	)
	raw, err := os.ReadFile(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"hunter2", "tok-abcdef", "Authorization"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("%q reached the journal:\n%s", leak, raw)
		}
	}
	for _, want := range []string{`"<redacted>"`, `"PW=<redacted>"`, redact.CensoredMessage, redact.CensoredError} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("journal lacks %s:\n%s", want, raw)
		}
	}
}

func TestNewRunID(t *testing.T) {
	re := regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{6}$`)
	seen := map[string]bool{}
	var ids []string
	for i := range 200 {
		id := newRunID(t0.Add(time.Duration(i/50) * time.Second))
		if !re.MatchString(id) {
			t.Fatalf("run id %q has the wrong form", id)
		}
		if err := ValidRunID(id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("duplicate run id %q", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	// Ids made in later seconds sort after earlier ones.
	if !sort.SliceIsSorted(ids, func(a, b int) bool { return ids[a][:16] < ids[b][:16] }) {
		t.Error("run ids do not sort by time")
	}
	if got, ok := timeFromID(ids[0]); !ok || !got.Equal(t0) {
		t.Errorf("timeFromID = %v, %v", got, ok)
	}
	if id := NewRunID(); !re.MatchString(id) || !strings.HasPrefix(id, time.Now().UTC().Format("20060102")) {
		t.Errorf("NewRunID() = %q", id)
	}
}
