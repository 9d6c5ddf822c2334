package runner_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/runner"
)

// TestLoop runs steps with loop: over a real local inventory: per item, in
// order, with item in every field, one start and one end per step.
func TestLoop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		hosts string // pattern; h1 by default
		body  string // vars, steps, rollback
		opts  func(*runner.Options)
		exit  int
		check func(t *testing.T, e *env, r result)
	}{
		{
			name: "each item runs on the host it delegates to",
			body: `
steps:
  - name: each member
    probe: { value: '{{ loop_index }}:{{ item.name }}:{{ item.vars.color }}' }
    loop: '{{ group("web") }}'
    delegate_to: '{{ item.name }}'
    register: each
  - mark: { path: '{{ dir }}/log', text: '{{ join(map(each.results, #.conn + "=" + #.value), ",") }}' }`,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h1")
				want := []string{"local:h1=0:h1:red,local:h2=1:h2:green,local:h3=2:h3:blue"}
				if !slices.Equal(got, want) {
					t.Errorf("h1 wrote %q, want %q", got, want)
				}
				starts := find(r.events, func(ev event.Event) bool { return ev.Kind == event.StepStart && ev.Step == "each member" })
				if len(starts) != 1 || starts[0].Items == nil || *starts[0].Items != 3 {
					t.Fatalf("step_start events %+v, want one with items 3", starts)
				}
				ev := endOf(t, r, "h1", "each member")
				results, _ := ev.Result["results"].([]any)
				if ev.Status != event.OK || len(results) != 3 {
					t.Fatalf("step_end %+v", ev)
				}
				second := results[1].(map[string]any)
				item, _ := second["item"].(map[string]any)
				if second["delegate_to"] != "h2" || second["loop_index"] != float64(1) || item["name"] != "h2" || item["addr"] == nil {
					t.Errorf("journaled item result %v", second)
				}
				if _, ok := item["vars"]; ok {
					t.Errorf("the journal holds a host item's vars: %v", item)
				}
				if _, ok := results[0].(map[string]any)["delegate_to"]; ok {
					t.Errorf("the item that ran on its own host says delegate_to: %v", results[0])
				}
			},
		},
		{
			name: "preflight reads every member's own file on that member",
			body: `
preflight:
  - name: every member
    where: { path: '{{ dir }}/log', text: 'check {{ item.name }}' }
    loop: '{{ group("web") }}'
    delegate_to: '{{ item.name }}'
steps:
  - mark: { path: '{{ dir }}/log', text: step }`,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "controller")
				want := []string{"check h1 on local:h1", "check h2 on local:h2", "check h3 on local:h3"}
				if !slices.Equal(got, want) {
					t.Errorf("preflight wrote %q, want %q", got, want)
				}
			},
		},
		{
			name:  "when is evaluated per item; register holds every item's result",
			hosts: "h2",
			body: `
steps:
  - name: 'not {{ item }}'
    mark: { path: '{{ dir }}/log', text: 'item {{ item }}' }
    loop: [red, green, blue]
    when: item != color
    register: r
  - mark: { path: '{{ dir }}/log', text: '{{ r.changed }} {{ r.failed }} {{ r.skipped }} {{ join(map(r.results, string(#.loop_index) + #.item + (#.skipped ? "-" : "+") + (#.line ?? "")), ",") }}' }`,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h2")
				want := []string{"item red", "item blue", "true false false 0red+h2 item red,1green-,2blue+h2 item blue"}
				if !slices.Equal(got, want) {
					t.Errorf("h2 wrote %q, want %q", got, want)
				}
				// One name for all the items: as written, as Ansible shows it.
				if ev := endOf(t, r, "h2", "not {{ item }}"); ev.Status != event.Changed || !ev.Changed {
					t.Errorf("step_end %+v", ev)
				}
			},
		},
		{
			name: "the first failed item stops the step; later items never run",
			body: `
steps:
  - name: each
    shell: { cmd: 'echo {{ item }} >> {{ dir }}/ran; test {{ item }} != b' }
    loop: [a, b, c]
    register: each
rollback:
  - mark: { path: '{{ dir }}/log', text: '{{ failed.error }}' }`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				if got := e.lines("ran"); !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("items that ran: %q, want a, b", got)
				}
				ev := endOf(t, r, "h1", "each")
				if ev.Status != event.Failed || !strings.HasPrefix(ev.Error, "item b (loop_index 1): ") {
					t.Errorf("step_end %s %q", ev.Status, ev.Error)
				}
				if results, _ := ev.Result["results"].([]any); len(results) != 2 || ev.Result["failed"] != true {
					t.Errorf("journaled result %v", ev.Result)
				}
				got := hostLines(e.lines("log"), "h1")
				if len(got) != 1 || !strings.HasPrefix(got[0], "item b (loop_index 1): ") {
					t.Errorf("rollback saw failed.error %q", got)
				}
			},
		},
		{
			name: "ignore_errors covers the step as a whole",
			body: `
steps:
  - name: each
    shell: { cmd: 'echo {{ item }} >> {{ dir }}/ran; test {{ item }} != a' }
    loop: [a, b]
    ignore_errors: true
    register: each
  - mark: { path: '{{ dir }}/log', text: 'after {{ each.failed }} {{ len(each.results) }}' }`,
			check: func(t *testing.T, e *env, r result) {
				if got := e.lines("ran"); !slices.Equal(got, []string{"a"}) {
					t.Errorf("items that ran: %q, want a alone", got)
				}
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"after true 1"}) {
					t.Errorf("h1 wrote %q", got)
				}
			},
		},
		{
			name: "retries and until apply per item",
			body: `
steps:
  - name: count
    shell: { cmd: 'f={{ dir }}/n-{{ item }}; n=$(cat $f 2>/dev/null || echo 0); n=$((n+1)); echo $n > $f; echo $n' }
    loop: [a, b]
    retries: 3
    delay: 1ms
    until: result.stdout == "2"
    register: counted
  - mark: { path: '{{ dir }}/log', text: '{{ join(map(counted.results, #.stdout), ",") }}' }`,
			check: func(t *testing.T, e *env, r result) {
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"2,2"}) {
					t.Errorf("h1 wrote %q", got)
				}
				retries := find(r.events, func(ev event.Event) bool { return ev.Kind == event.StepRetry })
				if len(retries) != 2 || loopIndex(retries[0]) != 0 || loopIndex(retries[1]) != 1 {
					t.Errorf("retry events %+v", retries)
				}
			},
		},
		{
			name:  "run_once runs every item on the first host",
			hosts: "web",
			body: `
steps:
  - name: once
    mark: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: [a, b]
    run_once: true
    register: o
  - mark: { path: '{{ dir }}/log', text: 'saw {{ len(o.results) }}' }`,
			check: func(t *testing.T, e *env, r result) {
				lines := e.lines("log")
				if got := hostLines(lines, "h1"); !slices.Equal(got, []string{"a", "b", "saw 2"}) {
					t.Errorf("h1 wrote %q", got)
				}
				if got := hostLines(lines, "h3"); !slices.Equal(got, []string{"saw 2"}) {
					t.Errorf("h3 wrote %q", got)
				}
			},
		},
		{
			name: "an empty list skips the step",
			body: `
steps:
  - name: nothing
    mark: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: '{{ filter(group("web"), false) }}'
    register: nothing
  - mark: { path: '{{ dir }}/log', text: '{{ nothing.skipped }} {{ nothing.msg }}' }`,
			check: func(t *testing.T, e *env, r result) {
				if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"true loop over no items"}) {
					t.Errorf("h1 wrote %q", got)
				}
				if ev := endOf(t, r, "h1", "nothing"); ev.Status != event.Skipped {
					t.Errorf("step_end %+v", ev)
				}
				if starts := find(r.events, func(ev event.Event) bool { return ev.Kind == event.StepStart && ev.Step == "nothing" }); len(starts) != 0 {
					t.Errorf("a step with no items started: %+v", starts)
				}
			},
		},
		{
			name: "a loop that gives no list fails the step at its position",
			body: `
steps:
  - name: bad
    mark: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: '{{ host.vars.color }}'`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				ev := endOf(t, r, "h1", "bad")
				if ev.Status != event.Failed || !strings.Contains(ev.Error, `runbook.yml:7:14: loop: got string "red" where a list is needed`) {
					t.Errorf("step_end %s %q", ev.Status, ev.Error)
				}
			},
		},
		{
			name: "--check handles each item as a step",
			body: `
steps:
  - name: would mark
    mark: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: [a, b]
  - name: cannot tell
    where: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: [c, d]`,
			opts: func(o *runner.Options) { o.Check = true },
			check: func(t *testing.T, e *env, r result) {
				if got := e.lines("log"); len(got) != 0 {
					t.Errorf("--check wrote %q", got)
				}
				if ev := endOf(t, r, "h1", "would mark"); ev.Status != event.Changed {
					t.Errorf("step_end %+v", ev)
				}
				ev := endOf(t, r, "h1", "cannot tell")
				results, _ := ev.Result["results"].([]any)
				if ev.Status != event.Skipped || !ev.Check || len(results) != 2 ||
					!strings.Contains(results[1].(map[string]any)["msg"].(string), "would run") {
					t.Errorf("step_end %+v", ev)
				}
			},
		},
		{
			name: "the automatic undo undoes each item newest first, on the host it ran on",
			body: `
steps:
  - name: here
    where: { path: '{{ dir }}/log', text: here }
  - name: members
    where: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: [h2, h3, h4]
    delegate_to: '{{ item }}'
  - { name: boom, fail: { msg: boom } }`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h1")
				want := []string{"here on local:h1", "h2 on local:h2", "h3 on local:h3", "h4 on local:h4",
					"undo h4 on local:h4", "undo h3 on local:h3", "undo h2 on local:h2", "undo here on local:h1"}
				if !slices.Equal(got, want) {
					t.Errorf("h1 wrote\n%q\nwant\n%q", got, want)
				}
				rb := kinds(r.events, func(ev event.Event) bool { return ev.Kind == event.RollbackStepEnd })
				if !slices.Equal(rb, []string{"rollback_step_end h1 members ok", "rollback_step_end h1 here ok"}) {
					t.Errorf("rollback step ends %q", rb)
				}
				if h := r.out.Hosts["h1"]; h.Status != runner.StatusRolledBack || !strings.Contains(h.State, `undid "members", "here"`) {
					t.Errorf("h1 %s: %s", h.Status, h.State)
				}
			},
		},
		{
			name: "items done before a failed item are undone",
			body: `
steps:
  - name: members
    where: { path: '{{ dir }}/log', text: '{{ item }}', fail: '{{ item == "y" }}' }
    loop: [x, y, z]
rollback: ~`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h1")
				if want := []string{"x on local:h1", "undo x on local:h1"}; !slices.Equal(got, want) {
					t.Errorf("h1 wrote %q, want %q", got, want)
				}
			},
		},
		{
			name: "an explicit rollback does not count a failed loop as completed",
			body: `
steps:
  - name: members
    where: { path: '{{ dir }}/log', text: '{{ item }}', fail: '{{ item == "y" }}' }
    loop: [x, y]
rollback:
  - mark: { path: '{{ dir }}/log', text: 'completed {{ len(completed) }} failed {{ failed.step }}' }`,
			exit: 1,
			check: func(t *testing.T, e *env, r result) {
				got := hostLines(e.lines("log"), "h1")
				if want := []string{"x on local:h1", "completed 0 failed members"}; !slices.Equal(got, want) {
					t.Errorf("h1 wrote %q, want %q", got, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hosts := tt.hosts
			if hosts == "" {
				hosts = "h1"
			}
			body := strings.Replace(tt.body, "rollback: ~", "", 1)
			e := newEnv(t, "runbook: loop\nhosts: "+hosts+"\n"+body+"\n", "")
			r, _ := runNamed(e, tt.opts)
			checkExit(t, r, tt.exit)
			tt.check(t, e, r)
		})
	}
}

// TestLoopNoLog: no_log hides every item's result, and the items themselves,
// from the journal; later steps still see them.
func TestLoopNoLog(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-t0ken-value"
	e := newEnv(t, `
runbook: nolog
hosts: h1
vars:
  token: `+secret+`
steps:
  - name: use the token
    shell: { cmd: 'echo "{{ item }}"' }
    loop: ['{{ token }}', 'x-{{ token }}']
    no_log: true
    register: out
  - name: keep a count
    mark: { path: '{{ dir }}/log', text: 'n {{ len(out.results) }} {{ out.results[1].stdout == "x-" + token }}' }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 0)
	if bytes.Contains(r.raw, []byte(secret)) {
		t.Errorf("the journal holds the secret:\n%s", r.raw)
	}
	ev := endOf(t, r, "h1", "use the token")
	if ev.Result["censored"] != redact.CensoredMessage || len(ev.Result) != 1 {
		t.Errorf("no_log step_end result %v", ev.Result)
	}
	if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"n 2 true"}) {
		t.Errorf("h1 wrote %q", got)
	}
}

// TestLoopResumeInFlight: a looped step in flight when the run stopped runs
// again, wholly, and says so; the items it had done are not taken as done.
func TestLoopResumeInFlight(t *testing.T) {
	t.Parallel()
	const rb = `
runbook: resume
hosts: h1
steps:
  - name: members
    mark: { path: '{{ dir }}/log', text: '{{ item }}' }
    loop: [x, y]
    register: m
  - mark: { path: '{{ dir }}/log', text: 'after {{ len(m.results) }}' }
`
	full := newEnv(t, rb, "")
	whole := full.run(runOpts{})
	checkExit(t, whole, 0)
	lines := bytes.SplitAfter(whole.raw, []byte("\n"))
	k := slices.IndexFunc(lines, func(l []byte) bool {
		return bytes.Contains(l, []byte(`"step_start"`)) && bytes.Contains(l, []byte(`"members"`))
	})
	if k < 0 {
		t.Fatalf("no step_start of the looped step:\n%s", whole.raw)
	}
	e, r, st := resumeCut(t, rb, full.runID, lines[:k+1])
	checkExit(t, r, 0)
	if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"x", "y", "after 2"}) {
		t.Errorf("h1 wrote %q, want both items again", got)
	}
	starts := find(r.events[len(st.Events):], func(ev event.Event) bool { return ev.Kind == event.StepStart && ev.Step == "members" })
	if len(starts) != 1 || starts[0].Rerun == "" || starts[0].Items == nil || *starts[0].Items != 2 {
		t.Errorf("resumed step_start %+v, want one that says it runs again", starts)
	}
}

// TestLoopDrain: the first Ctrl-C lets the item in flight finish and starts
// no other item; the host is rolled back with the items it did, as a host
// left mid-way is.
func TestLoopDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: drain
hosts: h1
steps:
  - name: members
    gate: { key: '{{ key }}', path: '{{ dir }}/log' }
    loop: [a, b]
  - { name: after, mark: { path: '{{ dir }}/log', text: after } }
`, "")
	drain := make(chan struct{})
	g := gateFor(e.gates)
	done := make(chan result)
	go func() { done <- e.run(runOpts{opts: func(o *runner.Options) { o.Drain = drain }}) }()
	if h := g.await(t); h != "h1" {
		t.Fatalf("%s arrived", h)
	}
	close(drain)
	g.open()
	r := <-done
	checkExit(t, r, 3)
	if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"gate", "undo gate"}) {
		t.Errorf("h1 wrote %q, want the first item alone, then its undo", got)
	}
	ev := endOf(t, r, "h1", "members")
	if ev.Status != event.Interrupted || ev.Error != "interrupted by the operator before item b (loop_index 1)" {
		t.Errorf("step_end %s %q", ev.Status, ev.Error)
	}
	if h := r.out.Hosts["h1"]; h.Status != runner.StatusInterrupted || !strings.Contains(h.State, "rolled back") {
		t.Errorf("h1 %s: %s", h.Status, h.State)
	}
}

// loopIndex is the item an event of a looped step belongs to, -1 for none.
func loopIndex(e event.Event) int {
	if e.LoopIndex == nil {
		return -1
	}
	return *e.LoopIndex
}
