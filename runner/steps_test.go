package runner_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/runner"
)

// namedDialer dials real local connections named after their host, and counts
// dials and closes, so tests can see which connection a step used.
type namedDialer struct {
	mu     sync.Mutex
	dials  map[string]int
	closed map[string]int
}

type namedConn struct {
	conn.Conn
	name string
	d    *namedDialer
}

func (c *namedConn) String() string { return "local:" + c.name }
func (c *namedConn) Close() error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.closed[c.name]++
	return nil
}

func newNamedDialer() *namedDialer {
	return &namedDialer{dials: map[string]int{}, closed: map[string]int{}}
}

// runNamed runs e over a namedDialer, with opts for the rest.
func runNamed(e *env, opts func(*runner.Options)) (result, *namedDialer) {
	d := newNamedDialer()
	r := e.run(runOpts{opts: func(o *runner.Options) {
		o.Dialer = d
		if opts != nil {
			opts(o)
		}
	}})
	return r, d
}

func (d *namedDialer) Dial(ctx context.Context, t conn.Target) (conn.Conn, error) {
	c, err := local.Dialer{}.Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials[t.Name]++
	return &namedConn{Conn: c, name: t.Name, d: d}, nil
}

// stepEnds returns the step_end events of the steps phase for host.
func stepEnds(r result, host string) []event.Event {
	return find(r.events, func(e event.Event) bool {
		return e.Kind == event.StepEnd && e.Phase == event.Steps && e.Host == host
	})
}

func endOf(t *testing.T, r result, host, step string) event.Event {
	t.Helper()
	for _, e := range stepEnds(r, host) {
		if e.Step == step {
			return e
		}
	}
	t.Fatalf("no step_end for %s %q\n%s", host, step, r.story())
	return event.Event{}
}

func TestStepFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		hosts string // pattern; web by default
		steps string
		opts  func(*runner.Options)
		exit  int
		check func(t *testing.T, e *env, r result)
	}{
		{
			name: "when skips and journals the skip",
			steps: `
  - name: red only
    mark: { path: '{{ dir }}/log', text: red }
    when: color == "red"
  - name: everyone
    mark: { path: '{{ dir }}/log', text: all }`,
			check: func(t *testing.T, e *env, r result) {
				if got := hostLines(e.lines("log"), "h2"); !slices.Equal(got, []string{"all"}) {
					t.Errorf("h2 wrote %q", got)
				}
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"red", "all"}) {
					t.Errorf("h1 wrote %q", got)
				}
				ev := endOf(t, r, "h2", "red only")
				if ev.Status != event.Skipped || !strings.Contains(ev.Result["msg"].(string), `color == "red"`) {
					t.Errorf("skip journaled as %+v", ev)
				}
				if h := r.out.Hosts["h2"]; h.Skipped != 1 || h.Ok != 1 {
					t.Errorf("h2 counts %+v", h)
				}
			},
		},
		{
			name: "register feeds later expressions, also when skipped",
			steps: `
  - name: read color
    command: { cmd: 'echo {{ color }}' }
    register: out
  - name: maybe
    command: { cmd: 'true' }
    when: color == "green"
    register: maybe
  - name: use it
    mark: { path: '{{ dir }}/log', text: '{{ out.stdout }}-{{ maybe.skipped }}' }
    when: out.rc == 0 and not out.failed`,
			check: func(t *testing.T, e *env, r result) {
				got := e.lines("log")
				slices.Sort(got)
				want := []string{"h1 red-true", "h2 green-false", "h3 blue-true"}
				if !slices.Equal(got, want) {
					t.Errorf("lines %q, want %q", got, want)
				}
			},
		},
		{
			name: "retries until the condition holds",
			steps: `
  - name: count
    shell: { cmd: 'n=$(cat {{ dir }}/n-{{ host.name }} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ dir }}/n-{{ host.name }}; echo $n' }
    retries: 4
    delay: 10ms
    until: result.stdout == "3"
    register: counted
  - mark: { path: '{{ dir }}/log', text: 'got {{ counted.stdout }}' }`,
			check: func(t *testing.T, e *env, r result) {
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"got 3"}) {
					t.Errorf("h1 wrote %q", got)
				}
				ev := endOf(t, r, "h1", "count")
				if ev.Attempt != 3 || ev.Status != event.Changed {
					t.Errorf("step_end attempt %d status %s, want 3 changed", ev.Attempt, ev.Status)
				}
				retries := find(r.events, func(x event.Event) bool { return x.Kind == event.StepRetry && x.Host == "h1" })
				if len(retries) != 2 || retries[0].Attempt != 1 || retries[1].Attempt != 2 {
					t.Errorf("retries %+v", retries)
				}
			},
		},
		{
			name: "retries run out",
			steps: `
  - name: never
    command: { cmd: 'echo no' }
    retries: 2
    delay: 1ms
    until: result.rc == 0 && result.stdout == "yes"`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				ev := endOf(t, r, "h1", "never")
				// The clause that was false, with what it saw.
				if ev.Status != event.Failed || ev.Attempt != 3 || !strings.Contains(ev.Error, "until `result.rc == 0 && result.stdout == \"yes\"` still false after 3 attempts: result.stdout == \"yes\": was \"no\"") {
					t.Errorf("step_end %+v", ev)
				}
			},
		},
		{
			name: "timeout kills the attempt",
			steps: `
  - name: slow
    command: { cmd: 'sleep 30' }
    timeout: 200ms`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				ev := endOf(t, r, "h1", "slow")
				if ev.Status != event.Failed || !strings.Contains(ev.Error, "timed out after 200ms") {
					t.Errorf("step_end %+v", ev)
				}
				if ev.Duration > 10*1e9 {
					t.Errorf("the timed-out step took %s", ev.Duration)
				}
			},
		},
		{
			name: "failed_when and changed_when override the module",
			steps: `
  - name: exit 3 is fine
    command: { cmd: 'sh -c "exit 3"' }
    failed_when: result.rc > 5
    changed_when: false
  - name: boom is not
    command: { cmd: 'echo boom' }
    failed_when: result.stdout == "boom"`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				ev := endOf(t, r, "h1", "exit 3 is fine")
				if ev.Status != event.OK || ev.Changed {
					t.Errorf("overridden step ended %s changed=%v", ev.Status, ev.Changed)
				}
				ev = endOf(t, r, "h1", "boom is not")
				if ev.Status != event.Failed || !strings.Contains(ev.Error, "failed_when `result.stdout == \"boom\"` is true") {
					t.Errorf("step_end %+v", ev)
				}
			},
		},
		{
			name: "ignore_errors records the failure and goes on",
			steps: `
  - name: broken
    fail: { msg: bad disk }
    ignore_errors: true
    register: broken
  - mark: { path: '{{ dir }}/log', text: 'after {{ broken.failed }} {{ broken.error }}' }`,
			check: func(t *testing.T, e *env, r result) {
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"after true bad disk"}) {
					t.Errorf("h1 wrote %q", got)
				}
				ev := endOf(t, r, "h1", "broken")
				if ev.Status != event.Failed || !ev.Ignored {
					t.Errorf("step_end %+v", ev)
				}
				if h := r.out.Hosts["h1"]; h.Status != runner.StatusOK || h.Failed != 1 {
					t.Errorf("h1 %+v", h)
				}
			},
		},
		{
			name: "run_once runs on the first host and registers for all",
			steps: `
  - name: once
    mark: { path: '{{ dir }}/log', text: once }
    run_once: true
    register: o
  - mark: { path: '{{ dir }}/log', text: 'saw {{ o.line }}' }`,
			check: func(t *testing.T, e *env, r result) {
				lines := e.lines("log")
				if n := len(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return len(strings.Fields(l)) != 2 })); n != 1 {
					t.Errorf("run_once step ran %d times: %q", n, lines)
				}
				for _, h := range []string{"h1", "h2", "h3"} {
					if !slices.Contains(lines, h+" saw h1 once") {
						t.Errorf("%s did not see h1's result: %q", h, lines)
					}
				}
				if ev := endOf(t, r, "h3", "once"); ev.RanOn != "h1" {
					t.Errorf("h3's record %+v", ev)
				}
			},
		},
		{
			name: "a failed run_once step fails every host of the batch",
			steps: `
  - name: once
    fail: { msg: nope }
    run_once: true`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				for _, h := range []string{"h1", "h2", "h3"} {
					if st := r.out.Hosts[h].Status; st != runner.StatusRolledBack {
						t.Errorf("%s %s", h, st)
					}
				}
			},
		},
		{
			name: "delegate_to runs over the other connection with the host's vars",
			steps: `
  - name: here
    probe: { value: '{{ color }}' }
    register: here
  - name: on the controller
    probe: { value: '{{ color }}' }
    delegate_to: controller
    register: ctrl
  - name: on h4
    probe: { value: '{{ color }}' }
    delegate_to: '{{ "h" + "4" }}'
    register: other
  - mark: { path: '{{ dir }}/log', text: '{{ here.conn }} {{ ctrl.conn }} {{ other.conn }} {{ other.value }} {{ other.host }}' }`,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h2")
				want := []string{"local:h2 local:controller local:h4 green h2"}
				if !slices.Equal(got, want) {
					t.Errorf("h2 wrote %q, want %q", got, want)
				}
			},
		},
		{
			name: "become comes from the step, the block and the inventory",
			steps: `
  - name: plain
    probe: {}
  - name: step become
    probe: {}
    become: true
    become_user: postgres
  - name: in a block
    block:
      - name: inner
        probe: {}
    become: true`,
			check: func(t *testing.T, e *env, r result) {
				cases := map[string][2]any{"plain": {false, ""}, "step become": {true, "postgres"}, "inner": {true, ""}}
				for step, want := range cases {
					ev := endOf(t, r, "h1", step)
					if ev.Result["become"] != want[0] || ev.Result["become_user"] != want[1] {
						t.Errorf("%s: become=%v user=%v, want %v", step, ev.Result["become"], ev.Result["become_user"], want)
					}
				}
			},
		},
		{
			name: "facts are gathered fresh for each step and each attempt",
			steps: `
  - name: crown h2
    shell: { cmd: 'echo h2 > {{ dir }}/leader' }
    run_once: true
  - name: leader only
    mark: { path: '{{ dir }}/log', text: 'leader {{ cluster.leader }}' }
    when: cluster.leader == host.name
  - name: move to h1 on the second try
    shell: { cmd: 'n=$(cat {{ dir }}/m 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ dir }}/m; if [ $n -ge 2 ]; then echo h1 > {{ dir }}/leader; fi' }
    retries: 3
    delay: 1ms
    until: cluster.leader == "h1"
    run_once: true
  - name: new leader
    mark: { path: '{{ dir }}/log', text: 'now {{ cluster.leader }}' }
    when: cluster.leader == host.name`,
			check: func(t *testing.T, e *env, r result) {
				got := e.lines("log")
				slices.Sort(got)
				if want := []string{"h1 now h1", "h2 leader h2"}; !slices.Equal(got, want) {
					t.Errorf("lines %q, want %q", got, want)
				}
				if ev := endOf(t, r, "h1", "move to h1 on the second try"); ev.Attempt != 2 {
					t.Errorf("until passed on attempt %d, want 2", ev.Attempt)
				}
			},
		},
		{
			name: "facts only until reads are first read after the attempt",
			// The leader file the facts read does not exist before the
			// step writes it: a reading before the attempt would fail it.
			steps: `
  - name: crown h1
    shell: { cmd: 'echo h1 > {{ dir }}/leader' }
    retries: 2
    delay: 1ms
    until: cluster.leader == "h1"
    run_once: true`,
			check: func(t *testing.T, e *env, r result) {
				if ev := endOf(t, r, "h1", "crown h1"); ev.Status != event.Changed || ev.Attempt > 1 {
					t.Errorf("crown h1 ended %s on attempt %d, want changed on the first: %s", ev.Status, ev.Attempt, ev.Error)
				}
			},
		},
		{
			name: "a step name renders per host",
			steps: `
  - name: 'paint {{ color }}'
    probe: {}`,
			check: func(t *testing.T, e *env, r result) {
				endOf(t, r, "h3", "paint blue")
			},
		},
		{
			name: "arguments that fail to render fail the step with its position",
			steps: `
  - name: bad
    command: { cmd: '{{ int(color) }}' }`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				ev := endOf(t, r, "h1", "bad")
				if ev.Status != event.Failed || !strings.Contains(ev.Error, "runbook.yml:4:5: arguments of command:") || !strings.Contains(ev.Error, "runbook.yml:5:25: cmd:") {
					t.Errorf("step_end %+v", ev)
				}
				if find(r.events, func(x event.Event) bool { return x.Kind == event.StepStart && x.Step == "bad" }) != nil {
					t.Error("a step whose arguments do not render was started")
				}
			},
		},
		{
			name: "tags select steps, always and never as Ansible",
			steps: `
  - name: tagged
    mark: { path: '{{ dir }}/log', text: tagged }
    tags: [upgrade]
  - name: other
    mark: { path: '{{ dir }}/log', text: other }
    tags: other
  - name: always
    mark: { path: '{{ dir }}/log', text: always }
    tags: always
  - name: debug
    mark: { path: '{{ dir }}/log', text: debug }
    tags: [never, debug]
  - name: block of upgrade
    tags: upgrade
    block:
      - name: inner
        mark: { path: '{{ dir }}/log', text: inner }`,
			opts: func(o *runner.Options) { o.Tags = []string{"upgrade"} },
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h1")
				want := []string{"tagged", "always", "inner"}
				if !slices.Equal(got, want) {
					t.Errorf("h1 ran %q, want %q", got, want)
				}
				if ev := endOf(t, r, "h1", "other"); ev.Status != event.Skipped || ev.Reason != "tags" {
					t.Errorf("other: %+v", ev)
				}
			},
		},
		{
			name: "a transport error makes the host unreachable, not failed",
			steps: `
  - name: a
    mark: { path: '{{ dir }}/log', text: a }
  - name: cut
    fail: { transport: true }
    ignore_errors: true`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				for _, h := range []string{"h1", "h2", "h3"} {
					if st := r.out.Hosts[h].Status; st != runner.StatusUnreachable {
						t.Errorf("%s %s", h, st)
					}
				}
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"a"}) {
					t.Errorf("an unreachable host was rolled back: %q", got)
				}
				if ev := endOf(t, r, "h1", "cut"); ev.Status != event.Unreachable {
					t.Errorf("step_end %+v", ev)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hosts := tt.hosts
			if hosts == "" {
				hosts = "web"
			}
			e := newEnv(t, "runbook: fields\nhosts: "+hosts+"\nsteps:"+tt.steps+"\n", "")
			r, d := runNamed(e, tt.opts)
			checkExit(t, r, tt.exit)
			tt.check(t, e, r)
			// One connection per host, closed once at the end.
			d.mu.Lock()
			defer d.mu.Unlock()
			for h, n := range d.dials {
				if n != 1 || d.closed[h] != 1 {
					t.Errorf("%s dialed %d times, closed %d times", h, n, d.closed[h])
				}
			}
		})
	}
}
