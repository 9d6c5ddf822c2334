package ui

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
)

// TestGolden feeds each recorded run to every sink and compares what they write
// with testdata/<scenario>.{plain,jsonl,recap,screen}.
func TestGolden(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			evs := stamp(t, sc.events)

			var plain, js bytes.Buffer
			p, j := NewPlain(&plain), NewJSON(&js)
			for _, e := range evs {
				if err := p.Emit(e); err != nil {
					t.Fatal(err)
				}
				if err := j.Emit(e); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, sc.name+".plain", plain.Bytes())
			golden(t, sc.name+".jsonl", js.Bytes())

			var recap bytes.Buffer
			if err := RecapOf(evs).Print(&recap); err != nil {
				t.Fatal(err)
			}
			golden(t, sc.name+".recap", recap.Bytes())

			golden(t, sc.name+".screen", []byte(liveScreen(t, evs, LiveOptions{Width: 100, Height: 20})))
		})
	}
}

// liveScreen plays events into a Live view with a frame after each, and
// returns what is left on the screen after Close.
func liveScreen(t *testing.T, evs []event.Event, opts LiveOptions) string {
	t.Helper()
	var out syncBuffer
	ticks := make(chan time.Time)
	drew := make(chan struct{})
	clock := &fakeClock{now: t0}
	opts.Tick, opts.Now = ticks, clock.Now
	l := newLive(&out, opts, func() { drew <- struct{}{} })
	for _, e := range evs {
		if err := l.Emit(e); err != nil {
			t.Fatal(err)
		}
		clock.Set(e.Time.Add(500 * time.Millisecond))
		ticks <- clock.Now()
		<-drew
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var s screen
	s.write(t, out.String())
	return s.String()
}

// TestPlainOneLinePerEvent checks the promise scripts rely on: one line per
// event, each starting with the UTC time, whatever a host wrote into an error.
func TestPlainOneLinePerEvent(t *testing.T) {
	for _, sc := range scenarios() {
		evs := stamp(t, sc.events)
		var buf bytes.Buffer
		p := NewPlain(&buf)
		for _, e := range evs {
			if err := p.Emit(e); err != nil {
				t.Fatal(err)
			}
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != len(evs) {
			t.Fatalf("%s: %d lines for %d events", sc.name, len(lines), len(evs))
		}
		for i, line := range lines {
			if want := evs[i].Time.Format("15:04:05") + " "; !strings.HasPrefix(line, want) {
				t.Errorf("%s: line %d does not start with %q: %q", sc.name, i+1, want, line)
			}
			if strings.ContainsAny(line, "\x1b\r\t") {
				t.Errorf("%s: line %d holds a control character: %q", sc.name, i+1, line)
			}
		}
	}
}

func TestPlainUTC(t *testing.T) {
	var buf bytes.Buffer
	cet := time.FixedZone("CET", 3600)
	e := event.Event{Time: time.Date(2026, 1, 2, 0, 30, 0, 0, cet), Kind: event.Interrupt, Error: "stop"}
	if err := NewPlain(&buf).Emit(e); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "23:30:00 interrupt: stop\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestJSONMatchesJournal checks that each line decodes back to the event, with
// its run_id, and that placeholders stay greppable.
func TestJSONMatchesJournal(t *testing.T) {
	evs := stamp(t, scenarios()[1].events)
	evs[5].Error = "<redacted> & more"
	var buf bytes.Buffer
	j := NewJSON(&buf)
	for _, e := range evs {
		if err := j.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(buf.String(), `"error":"<redacted> & more"`) {
		t.Error("HTML escaping hides <redacted> from grep")
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines for %d events", len(lines), len(evs))
	}
	for i, line := range lines {
		var back event.Event
		if err := json.Unmarshal([]byte(line), &back); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if back.RunID != runID || back.Seq != evs[i].Seq || back.Kind != evs[i].Kind || back.Duration != evs[i].Duration {
			t.Errorf("line %d does not round-trip: %s", i+1, line)
		}
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriteErrors(t *testing.T) {
	broken := failWriter{err: errBroken}
	e := stamp(t, one(hostStart(1, "etcd-1")))[0]
	if err := NewPlain(broken).Emit(e); err != errBroken {
		t.Errorf("Plain: %v", err)
	}
	if err := NewJSON(broken).Emit(e); err != errBroken {
		t.Errorf("JSON: %v", err)
	}
	r := RecapOf([]event.Event{e})
	if err := r.Print(broken); err != errBroken {
		t.Errorf("Recap: %v", err)
	}
}
