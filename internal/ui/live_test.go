package ui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/event"
)

// liveRig drives a Live view frame by frame with a fake ticker and clock.
type liveRig struct {
	t     *testing.T
	l     *Live
	out   *syncBuffer
	ticks chan time.Time
	drew  chan struct{}
	clock *fakeClock
	seen  int // bytes of out already returned by frame
}

func newRig(t *testing.T, opts LiveOptions) *liveRig {
	r := &liveRig{t: t, out: &syncBuffer{}, ticks: make(chan time.Time), drew: make(chan struct{}), clock: &fakeClock{now: t0}}
	opts.Tick, opts.Now = r.ticks, r.clock.Now
	r.l = newLive(r.out, opts, func() { r.drew <- struct{}{} })
	t.Cleanup(func() { r.l.Close() })
	return r
}

// emit gives the view events stamped at t0 plus at.
func (r *liveRig) emit(at time.Duration, evs ...event.Event) {
	r.t.Helper()
	for _, e := range evs {
		e.Time, e.RunID = t0.Add(at), runID
		if err := r.l.Emit(e); err != nil {
			r.t.Fatal(err)
		}
	}
}

// frame draws one frame with the clock at t0 plus at, and returns what it wrote.
func (r *liveRig) frame(at time.Duration) string {
	r.clock.Set(t0.Add(at))
	r.ticks <- r.clock.Now()
	<-r.drew
	all := r.out.String()
	f := all[r.seen:]
	r.seen = len(all)
	return f
}

func (r *liveRig) close() string {
	r.t.Helper()
	if err := r.l.Close(); err != nil {
		r.t.Fatal(err)
	}
	all := r.out.String()
	f := all[r.seen:]
	r.seen = len(all)
	return f
}

func start(batches [][]string) event.Event {
	var hosts []string
	for _, b := range batches {
		hosts = append(hosts, b...)
	}
	return runStart(hosts, batches, false)
}

var cursorUp = regexp.MustCompile(`^\x1b\[(\d+)A\x1b\[J`)

func TestLiveFrames(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	r := newRig(t, LiveOptions{Width: 100, Height: 20})
	r.emit(0, start(batches3), batchStart(1, "etcd-1"), hostStart(1, "etcd-1"),
		step(event.StepStart, "etcd-1", 1, 2, "swap"))
	r.emit(time.Second, func() event.Event {
		e := ended(step(event.StepRetry, "etcd-1", 1, 2, "swap"), "", 0, "text file\nbusy")
		e.Attempt = 1
		return e
	}())

	f1 := r.frame(2500 * time.Millisecond)
	for _, want := range []string{
		"run " + runID + ": upgrade-etcd (upgrade-etcd.yml), 3 hosts in 2 batches\n",
		"batch 1/2: etcd-1\n",
		"batch 1/2  0/1 hosts done  2.5s\n",
		spinner[0] + " etcd-1  3/4 swap  2.5s  attempt 2: text file\\nbusy\n",
	} {
		if !strings.Contains(f1, want) {
			t.Errorf("first frame lacks %q:\n%s", want, f1)
		}
	}
	if strings.HasPrefix(f1, "\x1b[") {
		t.Errorf("the first frame moves the cursor over lines it did not draw: %q", f1)
	}

	// The next frame redraws the two live lines in place, spinner turned.
	f2 := r.frame(3 * time.Second)
	m := cursorUp.FindStringSubmatch(f2)
	if m == nil || m[1] != "2" {
		t.Fatalf("second frame does not go back over the 2 live lines: %q", f2)
	}
	if !strings.Contains(f2, spinner[1]+" etcd-1  3/4 swap  3s") || strings.Contains(f2, "run "+runID) {
		t.Errorf("second frame: %q", f2)
	}

	// A host that ends leaves the live area and stays above it.
	r.emit(9*time.Second, ended(step(event.StepEnd, "etcd-1", 1, 2, "swap"), event.Changed, 8*time.Second, ""),
		hostEnd(1, "etcd-1", event.Changed, 9*time.Second, ""))
	f3 := r.frame(9 * time.Second)
	if !strings.HasPrefix(f3, "\x1b[2A\x1b[J✓ etcd-1  changed  9s\n") || strings.Contains(f3, "3/4 swap") {
		t.Errorf("third frame: %q", f3)
	}
	if !strings.Contains(f3, "1/1 hosts done") {
		t.Errorf("the batch line does not count the host that ended: %q", f3)
	}

	// Nothing at work and nothing new: a frame erases the header once, then
	// frames write nothing at all.
	r.emit(10*time.Second, batchEnd(1, event.OK, 10*time.Second, ""))
	if f := r.frame(10 * time.Second); f != "\x1b[1A\x1b[J✓ batch 1/2  ok  10s\n" {
		t.Errorf("frame after the batch: %q", f)
	}
	if f := r.frame(11 * time.Second); f != "" {
		t.Errorf("an idle frame wrote %q", f)
	}
}

func TestLiveRollbackAndController(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	r := newRig(t, LiveOptions{Width: 100, Height: 20})
	r.emit(0, start(batches3), event.Event{Kind: event.GateStart, Batch: 1},
		event.Event{Kind: event.StepStart, Phase: event.BetweenBatches, Batch: 1, Step: "leader is stable"})
	if f := r.frame(time.Second); !strings.Contains(f, spinner[0]+" gate  leader is stable  1s\n") {
		t.Errorf("controller step not shown: %q", f)
	}
	r.emit(2*time.Second, ended(event.Event{Kind: event.StepEnd, Phase: event.BetweenBatches, Batch: 1, Step: "leader is stable"}, event.OK, 2*time.Second, ""),
		batchStart(2, "etcd-2"), hostStart(2, "etcd-2"), event.Event{Kind: event.RollbackStart, Batch: 2, Host: "etcd-2"})
	f := r.frame(3 * time.Second)
	for _, want := range []string{"✓ gate  leader is stable  ok  2s\n", " etcd-2  rolling back  1s\n"} {
		if !strings.Contains(f, want) {
			t.Errorf("frame lacks %q: %q", want, f)
		}
	}
	r.emit(3*time.Second, undo(event.RollbackStepStart, "etcd-2", 2, 1, "stop etcd"))
	if f := r.frame(4 * time.Second); !strings.Contains(f, " etcd-2  rollback: undo 2/4 stop etcd  1s\n") {
		t.Errorf("rollback step not shown: %q", f)
	}
	r.emit(5*time.Second, ended(undo(event.RollbackStepEnd, "etcd-2", 2, 1, "stop etcd"), event.OK, time.Second, ""),
		ended(event.Event{Kind: event.RollbackEnd, Batch: 2, Host: "etcd-2"}, event.RolledBack, 0, ""),
		hostEnd(2, "etcd-2", event.RolledBack, 0, "swap failed"))
	if f := r.frame(5 * time.Second); !strings.Contains(f, "↺ etcd-2  rolled back  3s: swap failed\n") {
		t.Errorf("rolled back host: %q", f)
	}
}

func TestLiveCloseFinalState(t *testing.T) {
	r := newRig(t, LiveOptions{Width: 100, Height: 20})
	r.emit(0, start(batches3), batchStart(2, "etcd-2", "etcd-3"), hostStart(2, "etcd-2"), hostStart(2, "etcd-3"),
		step(event.StepStart, "etcd-2", 2, 0, "snapshot"))
	r.frame(time.Second)
	r.emit(2*time.Second, event.Event{Kind: event.Interrupt, Error: "stopped: commands in flight are killed"})
	r.clock.Set(t0.Add(3 * time.Second))
	final := r.close()
	want := "\x1b[3A\x1b[J! interrupt: stopped: commands in flight are killed\n" +
		"batch 2/2  0/2 hosts done  3s\n" +
		"… etcd-2  1/4 snapshot  3s\n" +
		"… etcd-3  starting  3s\n"
	if final != want {
		t.Errorf("Close wrote\n%q\nwant\n%q", final, want)
	}
	// Close is done: later calls and events write nothing.
	if err := r.l.Emit(hostEnd(2, "etcd-2", event.OK, 0, "")); err != nil {
		t.Fatal(err)
	}
	if err := r.l.Close(); err != nil {
		t.Fatal(err)
	}
	if rest := r.out.String()[r.seen:]; rest != "" {
		t.Errorf("wrote after Close: %q", rest)
	}
}

func TestLiveColor(t *testing.T) {
	tests := []struct {
		name    string
		color   bool
		noColor string
		want    bool
	}{
		{"colour asked", true, "", true},
		{"NO_COLOR wins", true, "1", false},
		{"colour not asked", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			r := newRig(t, LiveOptions{Color: tt.color, Width: 100, Height: 20})
			r.emit(0, start(batches3), batchStart(1, "etcd-1"), hostStart(1, "etcd-1"), step(event.StepStart, "etcd-1", 1, 0, "snapshot"))
			r.frame(time.Second)
			r.emit(2*time.Second, hostEnd(1, "etcd-1", event.OK, 0, ""))
			r.frame(2 * time.Second)
			r.close()
			out := r.out.String()
			if got := sgr.MatchString(out); got != tt.want {
				t.Errorf("colour sequences present: %v, want %v:\n%q", got, tt.want, out)
			}
			if !strings.Contains(out, "\x1b[2A\x1b[J") {
				t.Errorf("the view must still move the cursor: %q", out)
			}
			var s screen
			s.write(t, out)
			if !strings.Contains(s.String(), "✓ etcd-1  ok  2s\n") {
				t.Errorf("screen:\n%s", s.String())
			}
		})
	}
}

func TestLiveSize(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	long := strings.Repeat("wait for the member to catch up ", 5)
	for _, color := range []bool{false, true} {
		t.Run(fmt.Sprint("color=", color), func(t *testing.T) {
			r := newRig(t, LiveOptions{Color: color, Width: 40, Height: 6})
			r.emit(0, start([][]string{{"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"}}),
				batchStart(1, "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"))
			for i := range 10 {
				h := fmt.Sprintf("h%d", i)
				r.emit(0, hostStart(1, h), step(event.StepStart, h, 1, 0, long))
			}
			r.emit(0, ended(step(event.StepEnd, "h0", 1, 0, long), event.Failed, 0, long))
			f := r.frame(time.Second)
			lines := strings.Split(strings.TrimSuffix(f, "\n"), "\n")
			// The run, the batch and the failure are final lines, kept whole;
			// the live area keeps to 5 lines (the height less one) of at most
			// 39 cells.
			if len(lines) < 3 || !strings.Contains(lines[2], "h0  1/4 "+strings.TrimSpace(long)+"  failed: "+strings.TrimSpace(long)) {
				t.Fatalf("final line cut: %q", lines)
			}
			area := lines[3:]
			if len(area) != 5 {
				t.Fatalf("live area has %d lines, want 5:\n%s", len(area), strings.Join(area, "\n"))
			}
			for _, l := range area {
				if n := utf8.RuneCountInString(sgr.ReplaceAllString(l, "")); n > 39 {
					t.Errorf("line of %d cells: %q", n, l)
				}
				if color && strings.HasSuffix(l, "…") {
					t.Errorf("a cut colour line must end with a reset: %q", l)
				}
			}
			if last := sgr.ReplaceAllString(area[4], ""); last != "… and 7 more at work" {
				t.Errorf("last line %q", last)
			}
		})
	}
}

func TestLiveWriteError(t *testing.T) {
	ticks := make(chan time.Time)
	drew := make(chan struct{})
	l := newLive(failWriter{err: errBroken}, LiveOptions{Tick: ticks}, func() { drew <- struct{}{} })
	if err := l.Emit(stamp(t, one(hostStart(1, "etcd-1")))[0]); err != nil {
		t.Fatalf("Emit failed before anything was written: %v", err)
	}
	ticks <- time.Now()
	<-drew
	err := l.Emit(event.Event{Kind: event.HostEnd, Host: "etcd-1", Status: event.OK})
	if !errors.Is(err, errBroken) {
		t.Errorf("Emit after a failed write: %v", err)
	}
	if err := l.Close(); !errors.Is(err, errBroken) {
		t.Errorf("Close: %v", err)
	}
}

// TestLiveTicker checks the real ticker draws without being asked.
func TestLiveTicker(t *testing.T) {
	w := &firstWrite{done: make(chan struct{})}
	l := NewLive(w, LiveOptions{Width: 80, Height: 24})
	defer l.Close()
	if err := l.Emit(event.Event{Kind: event.HostStart, Host: "etcd-1", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no frame was drawn in 10s")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.String(), "etcd-1  starting") {
		t.Errorf("output: %q", w.String())
	}
}

type firstWrite struct {
	syncBuffer
	once sync.Once
	done chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	w.once.Do(func() { close(w.done) })
	return n, err
}

// TestSinksConcurrent runs many hosts at once through a Bus into every sink,
// with frames and log lines in between, as a busy run does.
func TestSinksConcurrent(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	const hosts = 24
	var names []string
	for i := range hosts {
		names = append(names, fmt.Sprintf("h%02d", i))
	}
	var liveOut, plainOut, jsonOut syncBuffer
	ticks := make(chan time.Time)
	l := NewLive(&liveOut, LiveOptions{Color: true, Width: 120, Height: 100, Tick: ticks})
	log := Logger(l.LogWriter(), zerolog.InfoLevel)
	recap := NewRecap()
	bus := event.NewBus(runID, event.Options{})
	bus.Attach(l)
	bus.Attach(NewPlain(&plainOut))
	bus.Attach(NewJSON(&jsonOut))
	bus.Attach(recap)

	emit := func(e event.Event) {
		if err := bus.Emit(e); err != nil {
			t.Error(err)
		}
	}
	emit(runStart(names, [][]string{names}, false))
	emit(batchStart(1, names...))

	stopTicks := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for {
			select {
			case ticks <- time.Now():
			case <-stopTicks:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i, h := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			emit(hostStart(1, h))
			for _, e := range runSteps(1, h) {
				emit(e)
			}
			log.Info().Str("host", h).Msg("member caught up")
			st := event.Changed
			if i%5 == 0 {
				st = event.RolledBack
			}
			emit(hostEnd(1, h, st, time.Second, ""))
		}()
	}
	wg.Wait()
	emit(batchEnd(1, event.OK, 0, ""))
	close(stopTicks)
	<-ticked
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var s screen
	s.write(t, liveOut.String())
	shown := sgr.ReplaceAllString(s.String(), "")
	for i, h := range names {
		sym, word := "✓", "changed"
		if i%5 == 0 {
			sym, word = "↺", "rolled back"
		}
		if n := strings.Count(shown, sym+" "+h+"  "+word+"  1s\n"); n != 1 {
			t.Errorf("%s: its end is on the screen %d times:\n%s", h, n, shown)
		}
		if n := strings.Count(shown, "member caught up host="+h+"\n"); n != 1 {
			t.Errorf("%s: its log line is on the screen %d times", h, n)
		}
		if strings.Contains(shown, " "+h+"  "+"1/4") {
			t.Errorf("%s: a live line was left on the screen", h)
		}
	}
	perEvent := 2 + hosts*(2+8) + 1
	if n := strings.Count(plainOut.String(), "\n"); n != perEvent {
		t.Errorf("plain: %d lines for %d events", n, perEvent)
	}
	if n := strings.Count(jsonOut.String(), "\n"); n != perEvent {
		t.Errorf("json: %d lines for %d events", n, perEvent)
	}
	var rb strings.Builder
	if err := recap.Print(&rb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rb.String(), fmt.Sprintf(": %d hosts ok, %d failed (%d rolled back) —", hosts-5, 5, 5)) {
		t.Errorf("recap:\n%s", rb.String())
	}
}

func TestLiveBetweenSteps(t *testing.T) {
	r := newRig(t, LiveOptions{Width: 100, Height: 20})
	r.emit(0, start(batches3), hostStart(1, "etcd-1"))
	if f := r.frame(time.Second); !strings.Contains(f, " etcd-1  starting  1s\n") {
		t.Errorf("host before its first step: %q", f)
	}
	r.emit(time.Second, step(event.StepStart, "etcd-1", 1, 0, "snapshot"))
	r.emit(2*time.Second, ended(step(event.StepEnd, "etcd-1", 1, 0, "snapshot"), event.Changed, time.Second, ""))
	if f := r.frame(4 * time.Second); !strings.Contains(f, " etcd-1  after 1/4 snapshot  2s\n") {
		t.Errorf("host between steps: %q", f)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{f, &bytes.Buffer{}, failWriter{}} {
		if IsTerminal(w) {
			t.Errorf("%T is not a terminal", w)
		}
	}
}
