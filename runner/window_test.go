package runner_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/runner"
)

// clock is a fake clock that a step can move: each call to tick (a step
// of the runbook) adds an hour, so windows open and close without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// monday is Monday 2026-12-07 at hh:mm UTC.
func monday(hh, mm int) time.Time { return time.Date(2026, 12, 7, hh, mm, 0, 0, time.UTC) }

func TestWindows(t *testing.T) {
	t.Parallel()
	const rb = `
runbook: windows
hosts: web
serial: 1
window: "Mon-Fri 02:00-05:00 UTC"
preflight:
  - { name: pre, mark: { path: '{{ dir }}/log', text: pre } }
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
`
	tests := []struct {
		name    string
		start   time.Time
		step    time.Duration // the clock moves this much at each step_end
		ignore  string
		exit    int
		log     []string
		stopped string
		status  event.Status
	}{
		{name: "inside: the run goes", start: monday(2, 0), exit: 0,
			log: []string{"pre", "h1 a", "h1 b", "h2 a", "h2 b", "h3 a", "h3 b"}, status: event.OK},
		{name: "before it: nothing starts, the next opening is named", start: monday(1, 59), exit: 3,
			stopped: `outside the change window "Mon-Fri 02:00-05:00 UTC" (now Mon 2026-12-07 01:59 UTC); it opens next at Mon 2026-12-07 02:00 UTC; nothing was touched`,
			status:  event.Refused},
		{name: "on Saturday: Monday is next", start: time.Date(2026, 12, 12, 3, 0, 0, 0, time.UTC), exit: 3,
			stopped: "it opens next at Mon 2026-12-14 02:00 UTC", status: event.Refused},
		{name: "it closes during a batch: the host finishes, no new batch starts", start: monday(4, 0), step: 15 * time.Minute, exit: 3,
			log:     []string{"pre", "h1 a", "h1 b", "h2 a", "h2 b"},
			stopped: "batch 3 does not start: outside the change window", status: event.Interrupted},
		{name: "--ignore-window", start: monday(6, 0), ignore: "incident 4711", exit: 0,
			log: []string{"pre", "h1 a", "h1 b", "h2 a", "h2 b", "h3 a", "h3 b"}, status: event.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, rb, "")
			c := &clock{now: tt.start}
			moves := event.SinkFunc(func(ev event.Event) error {
				if ev.Kind == event.StepEnd {
					c.add(tt.step)
				}
				return nil
			})
			r := e.run(runOpts{sinks: []event.Sink{moves}, opts: func(o *runner.Options) {
				o.Now, o.IgnoreWindow = c.Now, tt.ignore
			}})
			checkExit(t, r, tt.exit)
			got := e.lines("log")
			for i, l := range got {
				got[i] = strings.TrimPrefix(l, "controller ")
			}
			if !slices.Equal(got, tt.log) {
				t.Errorf("log %v, want %v", got, tt.log)
			}
			if !strings.Contains(r.out.Stopped, tt.stopped) {
				t.Errorf("Stopped = %q, want %q", r.out.Stopped, tt.stopped)
			}
			end := find(r.events, func(e event.Event) bool { return e.Kind == event.RunEnd })
			if len(end) != 1 || end[0].Status != tt.status {
				t.Errorf("run_end %+v, want %s", end, tt.status)
			}
			wins := find(r.events, func(e event.Event) bool { return e.Kind == event.Window })
			switch {
			case tt.ignore != "" && (len(wins) != 1 || wins[0].Reason != tt.ignore || !wins[0].Ignored):
				t.Errorf("window events %+v, want one recording the ignore and its reason", wins)
			case tt.stopped != "" && (len(wins) != 1 || wins[0].Status != event.Refused || !strings.Contains(wins[0].Error, tt.stopped)):
				t.Errorf("window events %+v, want one refusal", wins)
			}
		})
	}
}

// TestStepWindow: a step outside its own window does not start; the host
// rolls back what it did and the run stops, exit 3.
func TestStepWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: step-window
hosts: web
serial: 1
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - name: b
    mark: { path: '{{ dir }}/log', text: b }
    window: "Sat,Sun 00:00-24:00 UTC"
`, "")
	c := &clock{now: monday(3, 0)}
	r := e.run(runOpts{opts: func(o *runner.Options) { o.Now = c.Now }})
	checkExit(t, r, 3)
	if got := e.lines("log"); !slices.Equal(got, []string{"h1 a", "undo h1 a"}) {
		t.Errorf("log %v", got)
	}
	if want := `h1: step "b" does not start: outside the change window "Sat,Sun 00:00-24:00 UTC" (now Mon 2026-12-07 03:00 UTC); it opens next at Sat 2026-12-12 00:00 UTC`; r.out.Stopped != want {
		t.Errorf("Stopped = %q\nwant       %q", r.out.Stopped, want)
	}
}

// TestInWindowClock: in_window in a guard reads the run's clock, so a
// runbook that refuses in preflight outside its hours is tested without
// waiting for them; the refusal is exit 3.
func TestInWindowClock(t *testing.T) {
	t.Parallel()
	const rb = `
runbook: guarded
hosts: web
serial: 1
preflight:
  - fail: { msg: 'outside the change window' }
    when: '!in_window("Mon-Fri 02:00-05:00 UTC")'
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
`
	for _, tt := range []struct {
		now  time.Time
		exit int
		log  []string
	}{
		{monday(3, 0), 0, []string{"h1 a", "h2 a", "h3 a"}},
		{monday(6, 0), 3, nil},
	} {
		e := newEnv(t, rb, "")
		c := &clock{now: tt.now}
		r := e.run(runOpts{opts: func(o *runner.Options) { o.Now = c.Now }})
		checkExit(t, r, tt.exit)
		if got := e.lines("log"); !slices.Equal(got, tt.log) {
			t.Errorf("at %s: log %v, want %v", tt.now, got, tt.log)
		}
	}
}
