package journal

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// crashedRun writes firstPart under dir as run id and returns the journal path;
// the journal is closed, as after a crash.
func crashedRun(t *testing.T, dir, id string) string {
	t.Helper()
	j, bus := newRun(t, dir, id, t0, nil)
	emitAll(t, bus, firstPart()...)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return j.Path()
}

func TestReplayCrashedRun(t *testing.T) {
	dir := t.TempDir()
	crashedRun(t, dir, "r1")
	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st.RunID != "r1" || st.Info.Runbook != "upgrade-etcd.yml" || st.Info.RunbookDigest != "sha256:1111" ||
		!reflect.DeepEqual(st.Info.Batches, [][]string{{"etcd-1"}, {"etcd-2", "etcd-3"}}) || !st.Started.Equal(t0) {
		t.Errorf("run metadata: %+v", st.Info)
	}
	if st.Finished || st.Live || st.Torn != nil || st.LastSeq != int64(len(firstPart())) {
		t.Errorf("finished %v live %v torn %v last seq %d", st.Finished, st.Live, st.Torn, st.LastSeq)
	}
	if len(st.Preflight.Done) != 1 || st.Preflight.Done[0].Status != event.OK {
		t.Errorf("preflight: %+v", st.Preflight)
	}

	var order []string
	for _, h := range st.HostList() {
		order = append(order, h.Name)
	}
	if !reflect.DeepEqual(order, []string{"etcd-1", "etcd-2", "etcd-3"}) {
		t.Errorf("host order %v", order)
	}

	e1 := st.Hosts["etcd-1"]
	if e1.Status != HostDone || e1.Batch != 1 || len(e1.Steps.Done) != 4 || e1.Steps.InFlight != nil {
		t.Errorf("etcd-1: %+v", e1)
	}
	swap, ok := last(e1.Steps, 2)
	if !ok || swap.Attempts != 2 || swap.Status != event.Changed || swap.Result["backup"] != "/usr/local/bin/etcd.runbook-bak" ||
		swap.Duration != 2100*time.Millisecond {
		t.Errorf("etcd-1 swap: %+v", swap)
	}
	if tok, _ := last(e1.Steps, 1); !tok.NoLog || !reflect.DeepEqual(tok.Result, redact.Censored()) {
		t.Errorf("no_log step replayed as %+v", tok)
	}

	e2 := st.Hosts["etcd-2"]
	if e2.Status != HostRunning || e2.Steps.InFlight == nil || e2.Steps.InFlight.Index != 2 || e2.Steps.InFlight.Name != "swap" {
		t.Errorf("etcd-2 must be running with swap in flight: %+v", e2)
	}
	if snap, ok := last(e2.Steps, 0); !ok || snap.Result["path"] != "backups/etcd-2.db" {
		t.Errorf("etcd-2 snapshot result: %+v", snap)
	}
	if _, ok := last(e2.Steps, 2); ok {
		t.Error("etcd-2 swap never ended but Last found it")
	}

	e3 := st.Hosts["etcd-3"]
	if e3.Status != HostRolledBack || e3.RollingBack || e3.Error != "swap failed" ||
		len(e3.Rollback.Done) != 1 || !e3.Rollback.Done[0].Undo || e3.Rollback.Done[0].Index != 0 {
		t.Errorf("etcd-3: %+v", e3)
	}
	if got := succeeded(e3.Steps); len(got) != 1 || got[0].Name != "snapshot" {
		t.Errorf("etcd-3 succeeded steps: %+v", got)
	}

	if len(st.Batches) != 2 {
		t.Fatalf("batches: %+v", st.Batches)
	}
	b1, b2 := st.Batches[0], st.Batches[1]
	if b1.Status != BatchDone || b1.GateStatus != event.OK || len(b1.Gates.Done) != 1 || b1.Gates.Done[0].Name != "leader is stable" {
		t.Errorf("batch 1: %+v", b1)
	}
	if b2.Status != BatchRunning || !reflect.DeepEqual(b2.Hosts, []string{"etcd-2", "etcd-3"}) {
		t.Errorf("batch 2: %+v", b2)
	}
}

func TestReplayRoundTripEvents(t *testing.T) {
	dir := t.TempDir()
	path := crashedRun(t, dir, "r1")
	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	onDisk := readLines(t, path)
	if !reflect.DeepEqual(st.Events, onDisk) {
		t.Error("replayed events differ from the lines on disk")
	}
	// What the Bus was given comes back, apart from the stamps and redaction.
	for i, want := range firstPart() {
		got := st.Events[i]
		if got.Kind != want.Kind || got.Host != want.Host || got.StepIndex != want.StepIndex ||
			got.Duration != want.Duration || got.Attempt != want.Attempt || got.Error != want.Error {
			t.Errorf("event %d: got %+v, want %+v", i+1, got, want)
		}
	}
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	crashedRun(t, dir, "r1")
	j, st, err := OpenAppend(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if st.Hosts["etcd-2"].Steps.InFlight == nil {
		t.Fatal("OpenAppend's state lost the step in flight")
	}
	bus := event.NewBus("r1", event.Options{Seq: st.LastSeq, Now: tick(t0.Add(time.Hour))})
	bus.Require(j)
	if err := bus.Emit(step(event.StepStart, "etcd-2", 2, 2, "swap")); err == nil || !strings.Contains(err.Error(), "must be run_resume") {
		t.Fatalf("a resumed journal accepted %v first", err)
	}
	// The refused event used a seq number; a resumed run starts a new Bus.
	bus = event.NewBus("r1", event.Options{Seq: st.LastSeq, Now: tick(t0.Add(time.Hour))})
	bus.Require(j)
	emitAll(t, bus, secondPart()...)
	j.Close()

	st, err = Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Finished || st.ExitCode != 1 || st.Status != event.Failed || st.Reason != "etcd-3 failed and was rolled back" ||
		!st.Aborted || len(st.Resumes) != 1 || st.Resumes[0].Info.PID != 4343 {
		t.Errorf("ended run: finished %v exit %d status %s reason %q aborted %v resumes %+v",
			st.Finished, st.ExitCode, st.Status, st.Reason, st.Aborted, st.Resumes)
	}
	e2 := st.Hosts["etcd-2"]
	if e2.Status != HostDone || e2.Steps.InFlight != nil || len(succeeded(e2.Steps)) != 3 {
		t.Errorf("etcd-2 after resume: %+v", e2)
	}
	if st.Batches[1].Status != BatchFailed {
		t.Errorf("batch 2: %s", st.Batches[1].Status)
	}

	// After run_end only a resume may follow; a resume reopens the run.
	j, _, err = OpenAppend(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bus = event.NewBus("r1", event.Options{Seq: st.LastSeq})
	bus.Require(j)
	emitAll(t, bus, event.Event{Kind: event.RunResume, Data: event.RunInfo{Runbook: "upgrade-etcd.yml"}.Data()})
	st, err = Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Finished || st.Aborted || st.ExitCode != 0 || len(st.Resumes) != 2 || !st.Live {
		t.Errorf("a resumed run must read as running again: %+v", st.Summary())
	}
}

func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	path := crashedRun(t, dir, "r1")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(raw, []byte("\n"))
	lastStart := bytes.LastIndexByte(raw[:len(raw)-1], '\n') + 1
	// Cut the last line in its middle, as a crash during the write would.
	cut := lastStart + (len(raw)-lastStart)/2
	if err := os.Truncate(path, int64(cut)); err != nil {
		t.Fatal(err)
	}

	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatalf("a torn last line must be accepted: %v", err)
	}
	want := &Torn{Line: lines, Offset: int64(lastStart), Bytes: cut - lastStart}
	if !reflect.DeepEqual(st.Torn, want) {
		t.Errorf("Torn = %+v, want %+v", st.Torn, want)
	}
	if st.LastSeq != int64(lines-1) {
		t.Errorf("last seq %d, want %d", st.LastSeq, lines-1)
	}
	// The torn event was etcd-2's second step_start: its snapshot is the last end.
	if e2 := st.Hosts["etcd-2"]; e2.Steps.InFlight != nil {
		t.Errorf("etcd-2 in flight %+v, but its start was torn", e2.Steps.InFlight)
	}
	if s := st.Summary(); !s.Torn || s.Status != RunCrashed {
		t.Errorf("summary %+v", s)
	}

	// Resuming cuts the torn piece off, so the next event starts its own line.
	j, st2, err := OpenAppend(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st2.Torn == nil {
		t.Error("OpenAppend must report the torn line it cut")
	}
	bus := event.NewBus("r1", event.Options{Seq: st2.LastSeq})
	bus.Require(j)
	emitAll(t, bus, secondPart()[0])
	j.Close()
	st3, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st3.Torn != nil || st3.LastSeq != int64(lines) || len(readLines(t, path)) != lines {
		t.Errorf("after resume: torn %+v, last seq %d", st3.Torn, st3.LastSeq)
	}
}

func TestReplayDamage(t *testing.T) {
	dir := t.TempDir()
	path := crashedRun(t, dir, "r1")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	lines = lines[:len(lines)-1] // SplitAfter leaves an empty tail

	edit := func(n int, f func(string) string) string { // n is 1-based
		out := append([]string(nil), lines...)
		out[n-1] = f(out[n-1])
		return strings.Join(out, "")
	}
	drop := func(n int) string {
		out := append(append([]string(nil), lines[:n-1]...), lines[n:]...)
		return strings.Join(out, "")
	}
	swap := func(a, b int) string {
		out := append([]string(nil), lines...)
		out[a-1], out[b-1] = out[b-1], out[a-1]
		return strings.Join(out, "")
	}
	last := len(lines)
	tests := []struct {
		name     string
		data     string
		wantLine int
		wantMsg  string
	}{
		{"bad JSON in the middle", edit(5, func(s string) string { return s[:10] + "\n" }), 5, "bad JSON"},
		{"garbage in the middle", edit(7, func(string) string { return "\x00\x00\x00\n" }), 7, "bad JSON"},
		{"empty line", edit(4, func(string) string { return "\n" }), 4, "empty line"},
		{"bad JSON on the last complete line", edit(last, func(s string) string { return s[:len(s)/2] + "\n" }), last, "bad JSON"},
		{"seq gap", drop(6), 6, "seq 7 follows seq 5: event 6 is missing"},
		{"seq goes back", swap(8, 9), 8, "seq 9 follows seq 7: event 8 is missing"},
		{"seq repeated", edit(10, func(string) string { return lines[8] }), 10, "seq 9 does not follow seq 9"},
		{"other run", edit(3, func(s string) string { return strings.Replace(s, `"run_id":"r1"`, `"run_id":"r2"`, 1) }), 3,
			`belongs to run "r2", not "r1"`},
		{"no run_start", drop(1), 1, "the first event has seq 2"},
		{"bad run_start data", edit(1, func(s string) string { return strings.Replace(s, `"hosts":[`, `"hosts":[1,`, 1) }), 1,
			"run_start: event data"},
		{"bad duration", edit(3, func(s string) string { return strings.Replace(s, `"duration":"200ms"`, `"duration":"long"`, 1) }), 3,
			"bad JSON: duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Replay(strings.NewReader(tt.data))
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CorruptError", err)
			}
			if ce.Line != tt.wantLine || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("got line %d %q, want line %d with %q", ce.Line, ce.Msg, tt.wantLine, tt.wantMsg)
			}
		})
	}

	t.Run("file name in the error", func(t *testing.T) {
		if err := os.WriteFile(path, []byte(drop(6)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, "r1")
		want := path + ":6: seq 7 follows seq 5"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load: %v, want %q", err, want)
		}
		if _, _, err := OpenAppend(dir, "r1"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenAppend of a damaged journal: %v", err)
		}
	})
	t.Run("file of another run", func(t *testing.T) {
		if err := os.WriteFile(Path(dir, "r9"), good, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, "r9"); err == nil || !strings.Contains(err.Error(), "does not match the file name") {
			t.Errorf("Load: %v", err)
		}
	})
}

func TestReplayEmpty(t *testing.T) {
	for _, data := range []string{"", `{"seq":1,"ti`} {
		if _, err := Replay(strings.NewReader(data)); !errors.Is(err, ErrEmpty) {
			t.Errorf("Replay(%q) = %v, want ErrEmpty", data, err)
		}
	}
}

func TestStory(t *testing.T) {
	tests := []struct {
		name   string
		resume bool
	}{
		{"crashed", false},
		{"ended", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			id := "20261124T023955Z-3f9a01"
			crashedRun(t, dir, id)
			if tt.resume {
				j, st, err := OpenAppend(dir, id)
				if err != nil {
					t.Fatal(err)
				}
				bus := event.NewBus(id, event.Options{Seq: st.LastSeq, Now: tick(t0.Add(time.Hour))})
				bus.Require(j)
				emitAll(t, bus, secondPart()...)
				j.Close()
			}
			st, err := Load(dir, id)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := st.WriteStory(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "story-"+tt.name+".golden"), b.Bytes())
		})
	}
}

func TestStoryTornAndLive(t *testing.T) {
	dir := t.TempDir()
	j, bus := newRun(t, dir, "r1", t0, nil)
	emitAll(t, bus, firstPart()[:3]...)
	st, err := Load(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	st.Torn = &Torn{Line: 4, Offset: 100, Bytes: 37}
	var b bytes.Buffer
	if err := st.WriteStory(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"running: process " + strconv.Itoa(os.Getpid()) + " holds it",
		"preflight: cluster is healthy",
		"note: line 4 was cut short by a crash while it was written; its 37 bytes were left out",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("story lacks %q:\n%s", want, b.String())
		}
	}
	j.Close()
	if err := st.WriteStory(failWriter{}); err == nil {
		t.Error("a write error was not returned")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed pipe") }

// golden compares got with the file at path, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestStoryErrorWhole: show keeps an error whole, on one line: what an
// operator acts on (the downgrade path after the point of no return, a
// process's last words) often comes at its end.
func TestStoryErrorWhole(t *testing.T) {
	msg := "the cluster version moved to 3.7: etcd 3.6.16 no longer starts on this data, so m3 keeps etcd 3.7.3. Fix forward, or downgrade:\netcdctl downgrade validate 3.6, etcdctl downgrade enable 3.6"
	r, ok := storyRow(event.Event{Kind: event.RollbackStepEnd, Host: "m3", Step: "refuse to swap back", Status: event.Failed, Error: msg}, false)
	want := "the cluster version moved to 3.7: etcd 3.6.16 no longer starts on this data, so m3 keeps etcd 3.7.3. Fix forward, or downgrade: | etcdctl downgrade validate 3.6, etcdctl downgrade enable 3.6"
	if !ok || r.err != want {
		t.Errorf("error column %q\nwant %q", r.err, want)
	}
}
