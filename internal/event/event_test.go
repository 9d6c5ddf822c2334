package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/redact"
)

func fixedClock() func() time.Time {
	t0 := time.Date(2026, 11, 24, 2, 39, 55, 0, time.FixedZone("CET", 3600))
	var mu sync.Mutex
	n := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return t0.Add(time.Duration(n) * time.Millisecond)
	}
}

func TestBusConcurrentOrder(t *testing.T) {
	bus := NewBus("r1", Options{Seq: 10, Now: fixedClock()})
	var a, b Recorder
	bus.Require(&a)
	bus.Attach(&b)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := bus.Emit(Event{Kind: StepEnd, Host: string(rune('a' + w)), StepIndex: i}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	ea, eb := a.Events(), b.Events()
	if len(ea) != workers*each || !reflect.DeepEqual(ea, eb) {
		t.Fatalf("sinks disagree or lost events: %d vs %d", len(ea), len(eb))
	}
	perHost := map[string]int{}
	for i, e := range ea {
		if e.Seq != int64(11+i) {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, 11+i)
		}
		if e.RunID != "r1" || e.Time.Location() != time.UTC {
			t.Fatalf("event %d not stamped: %+v", i, e)
		}
		if i > 0 && !e.Time.After(ea[i-1].Time) {
			t.Fatalf("time does not follow seq at %d", i)
		}
		// Events of one goroutine keep their order.
		if e.StepIndex != perHost[e.Host] {
			t.Fatalf("host %s: step %d after %d", e.Host, e.StepIndex, perHost[e.Host]-1)
		}
		perHost[e.Host]++
	}
	if got := bus.seq; got != 10+workers*each {
		t.Errorf("last seq = %d", got)
	}
}

func TestBusRedaction(t *testing.T) {
	secrets := &redact.Set{}
	secrets.Add("hunter2", "2222")
	bus := NewBus("r1", Options{Secrets: secrets})
	var rec Recorder
	bus.Require(&rec)

	res := map[string]any{"stdout": "pw=hunter2", "nested": []any{map[string]any{"k": "hunter2"}}}
	tests := []struct {
		name string
		in   Event
		want Event
	}{
		{
			name: "nested result, error, step and data",
			in: Event{Kind: StepEnd, Host: "h1", Step: "login hunter2", Status: Failed,
				Error: "exit 1: bad password hunter2", Result: res, Data: map[string]any{"args": []any{"-p", "hunter2"}}},
			want: Event{Kind: StepEnd, Host: "h1", Step: "login <redacted>", Status: Failed,
				Error:  "exit 1: bad password <redacted>",
				Result: map[string]any{"stdout": "pw=<redacted>", "nested": []any{map[string]any{"k": "<redacted>"}}},
				Data:   map[string]any{"args": []any{"-p", "<redacted>"}}},
		},
		{
			name: "no_log end censored",
			in: Event{Kind: StepEnd, Host: "h1", Step: "get token", NoLog: true, Status: Failed,
				Error: "curl: token abc", Result: map[string]any{"stdout": "abc"}, Data: map[string]any{"x": "abc"}},
			want: Event{Kind: StepEnd, Host: "h1", Step: "get token", NoLog: true, Status: Failed,
				Error: redact.CensoredError, Result: map[string]any{"censored": redact.CensoredMessage}},
		},
		{
			// A loop's items are read back by resume to undo them.
			name: "a loop item's keys are kept",
			in: Event{Kind: StepEnd, Host: "h1", Result: map[string]any{"results": []any{
				map[string]any{"hunter2": true, "item": "hunter2", "loop_index": 0, "n": map[string]any{"hunter2": 1}}}}},
			want: Event{Kind: StepEnd, Host: "h1", Result: map[string]any{"results": []any{
				map[string]any{"hunter2": true, "item": "<redacted>", "loop_index": 0, "n": map[string]any{"<redacted>": 1}}}}},
		},
		{
			name: "no_log end keeps the engine's fields",
			in: Event{Kind: StepEnd, Host: "h1", NoLog: true, Status: Failed, Error: "abc",
				Data: map[string]any{"ignored": true, "ran_on": "h2", "id": "steps[0]", "msg": "abc"}},
			want: Event{Kind: StepEnd, Host: "h1", NoLog: true, Status: Failed, Error: redact.CensoredError,
				Result: map[string]any{"censored": redact.CensoredMessage},
				Data:   map[string]any{"ignored": true, "ran_on": "h2", "id": "steps[0]"}},
		},
		{
			name: "no_log end without result still censored",
			in:   Event{Kind: RollbackStepEnd, Host: "h1", NoLog: true, Status: OK},
			want: Event{Kind: RollbackStepEnd, Host: "h1", NoLog: true, Status: OK,
				Result: map[string]any{"censored": redact.CensoredMessage}},
		},
		{
			name: "no_log start has nothing to hide",
			in:   Event{Kind: StepStart, Host: "h1", NoLog: true},
			want: Event{Kind: StepStart, Host: "h1", NoLog: true},
		},
		{
			// A run's record keeps what identifies it and the types of its
			// numbers, so that resume and `runs` can read it back: a -e
			// value that is also a word of the inventory's path (-e
			// env=stage -i stage) must not make the run impossible to resume.
			name: "run record keeps what resume reads",
			in: Event{Kind: RunStart, Data: RunInfo{Runbook: "hunter2.yml", Inventory: "inv/hunter2", Limit: "hunter2",
				Hosts: []string{"hunter2"}, Batches: [][]string{{"hunter2"}}, PID: 2222, Tags: []string{"hunter2"},
				RunbookDigest: "sha256:2222", VarsDigest: "hmac-sha256:2222", Args: []string{"-e", "pw=hunter2"}}.Data()},
			want: Event{Kind: RunStart, Data: map[string]any{"runbook": "hunter2.yml", "inventory": "inv/hunter2",
				"limit": "hunter2", "hosts": []any{"hunter2"}, "batches": []any{[]any{"hunter2"}}, "pid": float64(2222),
				"tags": []any{"hunter2"}, "runbook_digest": "sha256:2222", "vars_digest": "hmac-sha256:2222",
				"args": []any{"-e", "pw=<redacted>"}}},
		},
		{
			// Where a command runs and what identifies its process group are
			// read back by resume to find a command the run left behind.
			name: "a command's process record is kept",
			in: Event{Kind: StepProcess, Host: "h1", Step: "x hunter2", Data: map[string]any{"pgid": 2222, "start": 2222,
				"boot": "b-2222-x", "on": "hunter2", "become_user": "hunter2", "id": "steps[0]", "module": "command"}},
			want: Event{Kind: StepProcess, Host: "h1", Step: "x <redacted>", Data: map[string]any{"pgid": 2222,
				"start": 2222, "boot": "b-2222-x", "on": "hunter2", "become_user": "hunter2", "id": "steps[0]",
				"module": "command"}},
		},
		{
			// The keys of data and of a result are the engine's and the
			// modules' names (stdout, reason), which a -e value equal to
			// one must not hide; their values are redacted.
			name: "keys and engine fields are kept",
			in: Event{Kind: RollbackStart, Host: "h1", Data: map[string]any{"reason": "hunter2", "failed_index": 2222,
				"failed_step": "hunter2", "hunter2": "hunter2", "ran_on": "hunter2"},
				Result: map[string]any{"hunter2": "hunter2", "json": map[string]any{"hunter2": 1}}},
			want: Event{Kind: RollbackStart, Host: "h1", Data: map[string]any{"reason": "hunter2", "failed_index": 2222,
				"failed_step": "<redacted>", "hunter2": "<redacted>", "ran_on": "hunter2"},
				Result: map[string]any{"hunter2": "<redacted>", "json": map[string]any{"<redacted>": 1}}},
		},
		{
			name: "run end keeps its numbers",
			in:   Event{Kind: RunEnd, Data: RunEndInfo{ExitCode: 1, Hosts: map[string]int{"ok": 2222}, Reason: "hunter2"}.Data()},
			want: Event{Kind: RunEnd, Data: map[string]any{"exit_code": float64(1), "hosts": map[string]any{"ok": float64(2222)}, "reason": "<redacted>"}},
		},
		{
			name: "a step's number equal to a secret is hidden",
			in:   Event{Kind: StepEnd, Host: "h1", Result: map[string]any{"pin": 2222, "n": 22220}},
			want: Event{Kind: StepEnd, Host: "h1", Result: map[string]any{"pin": "<redacted>", "n": 22220}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := bus.Emit(tt.in); err != nil {
				t.Fatal(err)
			}
			evs := rec.Events()
			got := evs[len(evs)-1]
			tt.want.Seq, tt.want.Time, tt.want.RunID = got.Seq, got.Time, "r1"
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if res["stdout"] != "pw=hunter2" {
		t.Error("the Bus changed the caller's result map")
	}
}

type failSink struct {
	err   error
	calls int
}

func (f *failSink) Emit(Event) error { f.calls++; return f.err }

func TestBusSinkFailures(t *testing.T) {
	var logBuf bytes.Buffer
	bus := NewBus("r1", Options{Log: zerolog.New(&logBuf)})
	journal := &failSink{}
	ui := &failSink{err: errors.New("broken pipe")}
	var after Recorder
	bus.Require(journal)
	bus.Attach(ui)
	bus.Attach(&after)

	for range 3 {
		if err := bus.Emit(Event{Kind: HostStart}); err != nil {
			t.Fatalf("an optional sink's failure was returned: %v", err)
		}
	}
	if n := strings.Count(logBuf.String(), "broken pipe"); n != 1 {
		t.Errorf("optional failure logged %d times, want once:\n%s", n, logBuf.String())
	}
	if ui.calls != 3 {
		t.Errorf("a failed optional sink stopped receiving events: %d calls", ui.calls)
	}

	journal.err = errors.New("disk full")
	err := bus.Emit(Event{Kind: StepStart})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "event 4 (step_start)") {
		t.Fatalf("required failure: got %v", err)
	}
	if !errors.Is(err, journal.err) {
		t.Error("required failure does not wrap the sink's error")
	}
	if evs := after.Events(); len(evs) != 4 || evs[3].Seq != 4 {
		t.Errorf("optional sinks must still see every event: %+v", evs)
	}
}

func TestBusSinksGetOwnCopies(t *testing.T) {
	bus := NewBus("r1", Options{})
	mutator := SinkFunc(func(e Event) error {
		e.Result["k"] = "changed by sink"
		return nil
	})
	var rec Recorder
	bus.Require(mutator)
	bus.Attach(&rec)
	if err := bus.Emit(Event{Kind: StepEnd, Result: map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if got := rec.Events()[0].Result["k"]; got != "v" {
		t.Errorf("one sink's change reached another: %v", got)
	}
}

func TestEventJSON(t *testing.T) {
	e := Event{
		Seq: 3, Time: time.Date(2026, 11, 24, 2, 39, 55, 123000000, time.UTC), RunID: "r1",
		Kind: StepEnd, Phase: Steps, Batch: 1, Host: "etcd-1", Step: "swap", StepIndex: 0,
		Status: Changed, Changed: true, Duration: 1500 * time.Millisecond,
		Result: map[string]any{"backup": "/usr/local/bin/etcd.bak"},
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":3,"time":"2026-11-24T02:39:55.123Z","run_id":"r1","kind":"step_end","phase":"steps","batch":1,` +
		`"host":"etcd-1","step":"swap","status":"changed","changed":true,"result":{"backup":"/usr/local/bin/etcd.bak"},"duration":"1.5s"}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, e)
	}
	// json.Marshal escapes < and > whatever MarshalJSON returns; an Encoder
	// without HTML escaping, as the journal uses, keeps "<redacted>" greppable.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Event{Error: "<redacted> & more"}); err != nil || !strings.Contains(buf.String(), `"error":"<redacted> & more"`) {
		t.Errorf("HTML escaping hides placeholders from grep: %s, %v", buf.String(), err)
	}
	if err := json.Unmarshal([]byte(`{"seq":1,"duration":"soon"}`), &back); err == nil {
		t.Error("a bad duration was accepted")
	}
}

func TestData(t *testing.T) {
	info := RunInfo{Runbook: "upgrade-etcd.yml", RunbookDigest: "sha256:ab", Hosts: []string{"a", "b"},
		Batches: [][]string{{"a"}, {"b"}}, Args: []string{"exec", "upgrade-etcd.yml"}, PID: 42}
	d := info.Data()
	if _, ok := d["hosts"].([]any); !ok {
		t.Errorf("Data must hold JSON shapes, hosts is %T", d["hosts"])
	}
	var back RunInfo
	if err := DecodeData(d, &back); err != nil || !reflect.DeepEqual(back, info) {
		t.Errorf("RunInfo round trip: %+v, %v", back, err)
	}
	end := RunEndInfo{ExitCode: 1, Hosts: map[string]int{"ok": 2, "failed": 1}, Reason: "etcd-2 failed"}
	var endBack RunEndInfo
	if err := DecodeData(end.Data(), &endBack); err != nil || !reflect.DeepEqual(endBack, end) {
		t.Errorf("RunEndInfo round trip: %+v, %v", endBack, err)
	}
	if err := DecodeData(map[string]any{"exit_code": "one"}, &endBack); err == nil {
		t.Error("a wrong type in Data was accepted")
	}
	if got, ok := (Event{Kind: RunEnd, Data: end.Data()}).EndInfo(); !ok || !reflect.DeepEqual(got, end) {
		t.Errorf("EndInfo: %+v, %v", got, ok)
	}
	for _, data := range []map[string]any{nil, {"reason": "x"}, {"exit_code": "one"}} {
		if _, ok := (Event{Kind: RunEnd, Data: data}).EndInfo(); ok {
			t.Errorf("EndInfo of %v claims an exit code", data)
		}
	}
}

// TestEngineFieldsJournal reads lines as journals have always held them: the
// engine's fields decode into Engine, leave Data, and are written back as the
// same bytes, so old journals replay and new ones read in older versions.
func TestEngineFieldsJournal(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "engine-fields.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	tests := []struct {
		name string
		kind Kind
		eng  Engine
		data map[string]any // what is left in Data
	}{
		{"loop start", StepStart, Engine{Items: IntPtr(3), ID: "steps[1]", Module: "command",
			Rerun: "it was in flight when the run stopped, so whether it acted is unknown: it runs again"}, nil},
		{"ignored failure", StepEnd, Engine{Ignored: true}, nil},
		{"run_once elsewhere", StepEnd, Engine{RanOn: "etcd-1"}, nil},
		{"skipped by tags", StepEnd, Engine{Reason: "tags"}, nil},
		{"rollback of the first step", RollbackStart, Engine{Reason: "failed", FailedStep: "swap", FailedIndex: IntPtr(0),
			RollbackError: new("exit status 1")}, nil},
		{"rollback after abort", RollbackStart, Engine{Reason: "abort", RollbackError: new("run aborted")}, nil},
		{"undo of no items", RollbackStepStart, Engine{Items: IntPtr(0), ID: "steps[1]", Module: "command"}, nil},
		{"leftover", Leftover, Engine{Action: "killed", PGID: 4242, On: "etcd-1"}, nil},
		// A value of the wrong type is not the engine's: it stays in Data,
		// as the readers that asserted its type ignored it.
		{"edited by hand", StepEnd, Engine{}, map[string]any{"ignored": "yes"}},
		// RunEnd's reason is RunEndInfo's, redacted as text: it stays in Data.
		{"run end", RunEnd, Engine{}, map[string]any{"exit_code": float64(1), "hosts": map[string]any{"failed": float64(1)},
			"reason": "etcd-1 failed"}},
		{"batch", BatchStart, Engine{Hosts: []string{"etcd-2", "etcd-3"}, Resumed: Resumed{Yes: true}}, nil},
		{"process", StepProcess, Engine{PGID: 4242, Start: 123456789, Boot: "5d1c", Become: true,
			BecomeUser: "etcd", On: "etcd-1", ID: "steps[1]", Module: "command"}, nil},
		{"delegated start", StepStart, Engine{ID: "steps[0]", Module: "command", DelegateTo: "controller"}, nil},
		{"retry of the first item", StepRetry, Engine{LoopIndex: IntPtr(0)}, nil},
		{"host end", HostEnd, Engine{Counts: &Counts{OK: 3, Changed: 2, Skipped: 0, Failed: 1},
			State: new("failed at \"swap\"")}, nil},
		// Counts come whole or stay in Data.
		{"host end edited by hand", HostEnd, Engine{State: new("x")}, map[string]any{"ok": float64(3)}},
	}
	if len(lines) != len(tests) {
		t.Fatalf("%d lines for %d cases", len(lines), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			if err := json.Unmarshal([]byte(lines[i]), &e); err != nil {
				t.Fatal(err)
			}
			if e.Kind != tt.kind || !reflect.DeepEqual(e.Engine, tt.eng) || !reflect.DeepEqual(e.Data, tt.data) {
				t.Errorf("decoded %s %+v data %v\nwant    %s %+v data %v", e.Kind, e.Engine, e.Data, tt.kind, tt.eng, tt.data)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(e); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(buf.String()); got != lines[i] {
				t.Errorf("written back differently:\n got %s\nwant %s", got, lines[i])
			}
		})
	}
}

// TestEngineFieldsRedacted: the typed fields are the engine's, kept as they
// are, but for the name of a failed step, which is redacted as Step is, and
// dropped from a no_log event as it was from its Data.
func TestEngineFieldsRedacted(t *testing.T) {
	s := &redact.Set{}
	s.Add("hunter2", "2222")
	in := Event{Kind: RollbackStart, Host: "h1", Engine: Engine{Reason: "hunter2", FailedStep: "x hunter2",
		FailedIndex: IntPtr(2222), RanOn: "hunter2", Action: "hunter2", Items: IntPtr(2222), Ignored: true}}
	want := in
	want.FailedStep = "x <redacted>"
	if got := in.Redacted(s); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got.Engine, want.Engine)
	}
	in.Kind, in.NoLog, in.Status = StepEnd, true, Failed
	got := in.Redacted(s)
	want = in
	want.FailedStep = ""
	if !reflect.DeepEqual(got.Engine, want.Engine) {
		t.Errorf("no_log: got %+v\nwant %+v", got.Engine, want.Engine)
	}
}

func TestBusSinksGetOwnEngineFields(t *testing.T) {
	bus := NewBus("r1", Options{})
	mutator := SinkFunc(func(e Event) error {
		*e.Items = 99
		return nil
	})
	var rec Recorder
	bus.Require(mutator)
	bus.Attach(&rec)
	n := 3
	if err := bus.Emit(Event{Kind: StepStart, Engine: Engine{Items: &n}}); err != nil {
		t.Fatal(err)
	}
	if got := *rec.Events()[0].Items; got != 3 || n != 3 {
		t.Errorf("one sink's change reached another or the caller: %d, %d", got, n)
	}
}

// TestEngineWords: the engine's fields in words keep their keys and shapes
// in "data" ("resumed" is true or a text, an empty state is still written),
// and a key is the engine's only on the kinds that write it: a module's
// "error" in a step_progress stays its own.
func TestEngineWords(t *testing.T) {
	tests := []struct {
		name string
		in   string
		eng  Engine
		data map[string]any
	}{
		{"resumed host", `{"kind":"host_start","data":{"in_flight":"swap","restart":"rolled back","resumed":true}}`,
			Engine{Resumed: Resumed{Yes: true}, InFlight: "swap", Restart: "rolled back"}, nil},
		{"resumed rollback", `{"kind":"rollback_start","error":"x","data":{"error":"x","resumed":"it goes on"}}`,
			Engine{Resumed: Resumed{Yes: true, Why: "it goes on"}, RollbackError: new("x")}, nil},
		{"empty state", `{"kind":"host_end","data":{"state":""}}`, Engine{State: new("")}, nil},
		{"check", `{"kind":"step_end","status":"skipped","data":{"block_rollback":"steps[2]","check":true}}`,
			Engine{Check: true, BlockRollback: "steps[2]"}, nil},
		{"drain", `{"kind":"interrupt","status":"interrupted","data":{"mode":"drain"}}`, Engine{Mode: "drain"}, nil},
		{"abort", `{"kind":"abort","status":"aborted","data":{"on_abort":"stop"}}`, Engine{OnAbort: "stop"}, nil},
		{"progress", `{"kind":"step_progress","data":{"error":"timeout","mode":"m","state":"s"}}`, Engine{},
			map[string]any{"error": "timeout", "mode": "m", "state": "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			if err := json.Unmarshal([]byte(tt.in), &e); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e.Engine, tt.eng) || !reflect.DeepEqual(e.Data, tt.data) {
				t.Errorf("decoded %+v data %v\nwant    %+v data %v", e.Engine, e.Data, tt.eng, tt.data)
			}
			out, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var got, want map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.in), &want); err != nil {
				t.Fatal(err)
			}
			delete(got, "seq")
			delete(got, "time")
			delete(got, "run_id")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("written back differently:\n got %s\nwant %s", out, tt.in)
			}
		})
	}
}

// TestEngineWordsRedacted: the fields in words are redacted as the rest of
// data was, and dropped from a no_log event.
func TestEngineWordsRedacted(t *testing.T) {
	s := &redact.Set{}
	s.Add("hunter2")
	in := Event{Kind: HostEnd, Host: "h1", Engine: Engine{State: new("failed: hunter2"), InFlight: "x hunter2",
		Restart: "hunter2", Rerun: "hunter2", Resumed: Resumed{Yes: true, Why: "hunter2"}, RollbackError: new("hunter2"),
		Mode: "drain", BlockRollback: "steps[1]"}}
	got := in.Redacted(s).Engine
	want := Engine{State: new("failed: <redacted>"), InFlight: "x <redacted>", Restart: "<redacted>", Rerun: "<redacted>",
		Resumed: Resumed{Yes: true, Why: "<redacted>"}, RollbackError: new("<redacted>"), Mode: "drain", BlockRollback: "steps[1]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	in.Kind, in.NoLog, in.Engine.Check = StepEnd, true, true
	got = in.Redacted(s).Engine
	want = Engine{Mode: "drain", BlockRollback: "steps[1]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("no_log: got %+v\nwant %+v", got, want)
	}
}
