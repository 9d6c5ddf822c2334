package journal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

func TestListNoStateDir(t *testing.T) {
	runs, err := List(filepath.Join(t.TempDir(), "missing"))
	if err != nil || runs != nil {
		t.Errorf("List of a missing folder = %v, %v", runs, err)
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	hour := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

	// "ended": the full story, resumed once, failed with exit code 1.
	j, bus := newRun(t, dir, "20261124T023955Z-aaaaaa", hour(0), nil)
	emitAll(t, bus, firstPart()...)
	j.Close()
	j, st, err := OpenAppend(dir, "20261124T023955Z-aaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	bus = event.NewBus("20261124T023955Z-aaaaaa", event.Options{Seq: st.LastSeq, Now: tick(hour(0).Add(10 * time.Minute))})
	bus.Require(j)
	emitAll(t, bus, secondPart()...)
	j.Close()

	// "crashed": stopped with etcd-2 in flight.
	crashed, bus := newRun(t, dir, "20261124T033955Z-bbbbbb", hour(1), nil)
	emitAll(t, bus, firstPart()...)
	crashed.Close()

	// "running": still held by this process.
	_, bus = newRun(t, dir, "20261124T043955Z-cccccc", hour(2), nil)
	emitAll(t, bus, firstPart()[:5]...)

	// "ok": a clean run of one host.
	j, bus = newRun(t, dir, "20261124T030955Z-dddddd", hour(0).Add(30*time.Minute), nil)
	emitAll(t, bus, runStart([]string{"h"}, [][]string{{"h"}}),
		event.Event{Kind: event.HostStart, Batch: 1, Host: "h"},
		event.Event{Kind: event.HostEnd, Batch: 1, Host: "h", Status: event.OK},
		event.Event{Kind: event.RunEnd, Status: event.OK, Data: event.RunEndInfo{ExitCode: 0}.Data()})
	j.Close()

	// "damaged": newest by its id, and unreadable.
	damagedID := "20261124T050000Z-eeeeee"
	if err := os.WriteFile(Path(dir, damagedID), []byte("{\"seq\":1,\n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not journals: ignored.
	for _, name := range []string{"notes.txt", ".hidden.jsonl", "x y.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, RunsDir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, RunsDir, "dir.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}

	runs, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	wantIDs := []string{damagedID, "20261124T043955Z-cccccc", "20261124T033955Z-bbbbbb", "20261124T030955Z-dddddd", "20261124T023955Z-aaaaaa"}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Fatalf("List order:\n got %v\nwant %v", ids, wantIDs)
	}

	damaged, running, crashedSum, ok, ended := runs[0], runs[1], runs[2], runs[3], runs[4]
	var ce *CorruptError
	if damaged.Status != RunDamaged || !errors.As(damaged.Err, &ce) || ce.Line != 1 || !damaged.Started.Equal(time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("damaged: %+v", damaged)
	}
	if running.Status != RunRunning || running.PID != os.Getpid() || !running.Ended.IsZero() {
		t.Errorf("running: %+v", running)
	}
	if crashedSum.Status != RunCrashed || crashedSum.HostsDone != 1 || crashedSum.HostsFailed != 1 || crashedSum.Hosts != 3 {
		t.Errorf("crashed: %+v", crashedSum)
	}
	if ok.Status != RunEnded || ok.ExitCode != 0 || ok.Outcome != event.OK || ok.HostsDone != 1 || ok.Runbook != "upgrade-etcd.yml" {
		t.Errorf("ok: %+v", ok)
	}
	if ended.Status != RunEnded || ended.ExitCode != 1 || ended.Outcome != event.Failed || ended.Resumes != 1 ||
		ended.HostsDone != 2 || ended.HostsFailed != 1 || ended.Ended.IsZero() || ended.Name != "upgrade-etcd" || !ended.Started.Equal(t0) {
		t.Errorf("ended: %+v", ended)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(t.TempDir(), "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing run: %v", err)
	}
}
