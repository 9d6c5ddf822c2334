package runner_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/runner"
)

// TestNoLog: a no_log step's arguments and output reach neither the journal,
// nor the log, nor the errors and state the outcome gives.
func TestNoLog(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-t0ken-value"
	e := newEnv(t, `
runbook: nolog
hosts: h1
vars:
  token: `+secret+`
steps:
  - name: use the token
    shell: { cmd: 'echo "token is {{ token }}"' }
    no_log: true
    register: out
  - name: keep a copy
    mark: { path: '{{ dir }}/log', text: 'len {{ len(out.stdout) }}' }
  - name: fail with it
    shell: { cmd: 'echo "bad {{ token }}" >&2; exit 1' }
    no_log: true
rollback:
  - name: report
    mark: { path: '{{ dir }}/log', text: 'rollback saw: {{ failed.error }}' }
`, "")
	var logs bytes.Buffer
	var seen []event.Event
	rec := event.SinkFunc(func(ev event.Event) error { seen = append(seen, ev); return nil })
	r := e.run(runOpts{sinks: []event.Sink{rec}, opts: func(o *runner.Options) {
		o.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	}})
	checkExit(t, r, 1)
	if bytes.Contains(r.raw, []byte(secret)) {
		t.Errorf("the journal holds the secret:\n%s", r.raw)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log holds the secret:\n%s", logs.String())
	}
	h := r.out.Hosts["h1"]
	if strings.Contains(h.State, secret) || strings.Contains(h.Err.Error(), secret) {
		t.Errorf("the outcome holds the secret: %q, %v", h.State, h.Err)
	}
	for _, ev := range seen {
		if strings.Contains(ev.Error, secret) || strings.Contains(ev.Step, secret) {
			t.Errorf("an event holds the secret: %+v", ev)
		}
	}
	// Hidden, not lost: later steps still see the registered output.
	want := []string{"len " + strconv.Itoa(len("token is "+secret)), "rollback saw: " + redact.CensoredError}
	if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, want) {
		t.Errorf("h1 wrote %q, want %q", got, want)
	}
	ev := endOf(t, r, "h1", "use the token")
	if ev.Result["censored"] != redact.CensoredMessage || !ev.NoLog {
		t.Errorf("no_log step_end %+v", ev)
	}
}

// TestCheck: --check calls Check, reports modules without it as "would run",
// changes nothing and rolls nothing back.
func TestCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: check
hosts: h1:h2
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: touch, command: { cmd: 'touch {{ dir }}/touched' } }
  - { name: probe, probe: {} }
  - { name: boom, fail: { msg: would fail }, when: 'host.name == "h2"' }
`, "")
	r := e.run(runOpts{opts: func(o *runner.Options) { o.Check = true }})
	checkExit(t, r, 1)
	if _, err := os.Stat(filepath.Join(e.dir, "touched")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--check ran a command: %v", err)
	}
	if got := e.lines("log"); got != nil {
		t.Errorf("--check wrote %q", got)
	}
	if ev := endOf(t, r, "h1", "a"); ev.Status != event.Changed || ev.Result["would"] != "append a" {
		t.Errorf("a: %+v", ev)
	}
	if ev := endOf(t, r, "h1", "touch"); ev.Status != event.Changed || !strings.Contains(ev.Result["msg"].(string), "would run") {
		t.Errorf("touch: %+v", ev)
	}
	if ev := endOf(t, r, "h1", "probe"); ev.Status != event.Skipped || !strings.Contains(ev.Result["msg"].(string), "would run; effect unknown") {
		t.Errorf("probe: %+v", ev)
	}
	if h := r.out.Hosts["h2"]; h.Status != runner.StatusFailed || !strings.Contains(h.State, "--check: nothing to roll back") {
		t.Errorf("h2 %+v", h)
	}
	if rb := find(r.events, func(e event.Event) bool { return strings.HasPrefix(string(e.Kind), "rollback") }); rb != nil {
		t.Errorf("--check rolled back: %+v", rb)
	}
}

// faultDialer gives some hosts a scripted connection and others a dial error.
type faultDialer struct {
	fakes map[string]*conntest.Fake
	fail  map[string]error
}

func (d faultDialer) Dial(ctx context.Context, t conn.Target) (conn.Conn, error) {
	if err := d.fail[t.Name]; err != nil {
		return nil, err
	}
	if f := d.fakes[t.Name]; f != nil {
		return f, nil
	}
	return local.Dialer{}.Dial(ctx, t)
}

// TestFaults injects transport failures: a host that cannot be reached, or
// whose connection drops, is unreachable, not failed; a connection that drops
// during the rollback fails the rollback.
func TestFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: faults
hosts: all
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, fail: { msg: broken }, when: 'host.name == "h4"' }
  - { name: c, mark: { path: '{{ dir }}/log', text: c } }
`, defaultInventory+`
    far:
      hosts:
        h5: { ansible_connection: ssh }
`)
	dropped := conntest.New(nil)
	dropped.On(conntest.Prefix("/bin/sh", "-c"))
	dropped.FailAfter(1, nil) // a runs, c loses the connection
	rbDrop := conntest.New(nil)
	rbDrop.On(conntest.Prefix("/bin/sh", "-c"))
	rbDrop.FailAfter(1, nil) // a runs, b fails, the undo of a loses the connection
	d := faultDialer{
		fakes: map[string]*conntest.Fake{"h2": dropped, "h4": rbDrop},
		fail:  map[string]error{"h3": errors.New("dial tcp 10.0.0.3:22: connection refused")},
	}
	e.p.MaxFail = 10
	r := e.run(runOpts{opts: func(o *runner.Options) { o.Dialer = d }})
	checkExit(t, r, 4)
	want := map[string]runner.Status{"h1": "ok", "h2": "unreachable", "h3": "unreachable", "h4": "rollback_failed", "h5": "unreachable"}
	if got := statuses(r.out); !mapsEqual(got, want) {
		t.Fatalf("statuses %v, want %v%s", got, want, describe(r.out))
	}
	if s := r.out.Hosts["h3"].State; !strings.Contains(s, "connection refused") || !strings.Contains(s, "nothing was rolled back") {
		t.Errorf("h3 state %q", s)
	}
	if s := r.out.Hosts["h5"].State; !strings.Contains(s, "is not local") {
		t.Errorf("h5 state %q", s)
	}
	if s := r.out.Hosts["h4"].State; !strings.Contains(s, `"a" not undone`) || !strings.Contains(s, "connection lost") {
		t.Errorf("h4 state %q", s)
	}
	if ev := endOf(t, r, "h2", "c"); ev.Status != event.Unreachable {
		t.Errorf("h2 c: %+v", ev)
	}
	if !dropped.Closed() || !rbDrop.Closed() {
		t.Error("the connections were not closed at the end")
	}
}

// TestResumeUnreachable: a host cut off mid-step is not finished: a resume
// runs the step again, once the host can be reached.
func TestResumeUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: reach
hosts: h1:h2
steps:
  - { name: a, mark: { path: '{{ dir }}/log', text: a } }
  - { name: b, mark: { path: '{{ dir }}/log', text: b } }
`, "")
	cut := conntest.New(nil)
	cut.On(conntest.Func("appends through the real host", func(conn.Cmd) bool { return true })).
		Do(func(ctx context.Context, c conn.Cmd) (conn.Output, error) { return local.New().Run(ctx, c) })
	cut.FailAfter(1, nil) // a runs, b is cut off
	e.p.MaxFail = 1
	r := e.run(runOpts{opts: func(o *runner.Options) { o.Dialer = faultDialer{fakes: map[string]*conntest.Fake{"h2": cut}} }})
	checkExit(t, r, 1)
	if st := r.out.Hosts["h2"].Status; st != runner.StatusUnreachable {
		t.Fatalf("h2 %s", st)
	}
	j, st, err := journal.OpenAppend(e.state, e.runID)
	if err != nil {
		t.Fatal(err)
	}
	r = e.run(runOpts{j: j, resume: st})
	checkExit(t, r, 0)
	if got := hostLines(e.lines("log"), "h2"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("h2 wrote %q", got)
	}
	if got := hostLines(e.lines("log"), "h1"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("h1 ran again: %q", got)
	}
	reruns := find(r.events[len(st.Events):], func(e event.Event) bool { return e.Kind == event.StepStart && e.Rerun != "" })
	if len(reruns) != 1 || reruns[0].Host != "h2" || reruns[0].Step != "b" {
		t.Errorf("reruns %+v", reruns)
	}
}

// TestNoLogPrecise: what a no_log step's templates render is secret wherever
// it turns up later, also inside a longer argument and in the step's name; the
// runbook's own words around it are not, and stay readable in later steps.
func TestNoLogPrecise(t *testing.T) {
	t.Parallel()
	const secret = "tok-9f8e7d6c5b"
	e := newEnv(t, `
runbook: nolog
hosts: h1
vars:
  token: `+secret+`
steps:
  - name: 'restart etcd member with {{ token }}'
    shell: { cmd: 'echo restart etcd member {{ token }} >/dev/null' }
    no_log: true
  - name: restart etcd member
    shell: { cmd: 'echo restart etcd member' }
  - name: leak it
    fail: { msg: 'restart etcd member said {{ token }}' }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 1)
	if bytes.Contains(r.raw, []byte(secret)) {
		t.Errorf("the journal holds the secret:\n%s", r.raw)
	}
	if !bytes.Contains(r.raw, []byte(`"step":"restart etcd member with <redacted>"`)) {
		t.Errorf("the no_log step's name is not shown redacted:\n%s", r.raw)
	}
	if ev := endOf(t, r, "h1", "restart etcd member"); ev.Result["stdout"] != "restart etcd member" {
		t.Errorf("the runbook's own words were redacted: %v", ev.Result)
	}
	if ev := endOf(t, r, "h1", "leak it"); ev.Error != "restart etcd member said <redacted>" {
		t.Errorf("a later step's error: %q", ev.Error)
	}
}

// TestNoLogHostsAreNotSecrets: a no_log step looping over hosts hides what it
// takes from them, not the hosts' names, groups or the run's id.
func TestNoLogHostsAreNotSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: nolog
hosts: h1
steps:
  - name: per host
    shell: { cmd: 'echo {{ item.vars.color }} {{ run }} > /dev/null' }
    loop: '{{ group("extra") }}'
    no_log: true
  - name: say
    fail: { msg: 'group extra of run {{ run.id }}, color black' }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 1)
	want := "group extra of run " + e.runID + ", color <redacted>"
	if ev := endOf(t, r, "h1", "say"); ev.Error != want {
		t.Errorf("error %q, want %q", ev.Error, want)
	}
}

// TestNoLogAfterResume: what a no_log step rendered before the run was cut
// is still a secret in the resumed part, which does not run it again.
func TestNoLogAfterResume(t *testing.T) {
	t.Parallel()
	const secret = "tok-resume-31337"
	rb := `
runbook: nolog
hosts: h1
vars:
  token: ` + secret + `
steps:
  - name: use it
    shell: { cmd: 'echo "header {{ token }}" >/dev/null' }
    no_log: true
  - name: print it
    fail: { msg: 'said {{ token }}' }
    ignore_errors: true
`
	full := newEnv(t, rb, "")
	whole := full.run(runOpts{})
	checkExit(t, whole, 0)
	lines := bytes.SplitAfter(whole.raw, []byte("\n"))
	cut := -1
	for i, l := range lines {
		if kindOf(t, l) == "step_end h1 use it" {
			cut = i + 1
			break
		}
	}
	if cut < 0 {
		t.Fatalf("no step_end of the no_log step:\n%s", whole.raw)
	}
	_, r, _ := resumeCut(t, rb, full.runID, lines[:cut])
	checkExit(t, r, 0)
	if bytes.Contains(r.raw, []byte(secret)) {
		t.Errorf("the resumed journal holds the secret:\n%s", r.raw)
	}
	if ev := endOf(t, r, "h1", "print it"); ev.Error != "said <redacted>" {
		t.Errorf("the resumed step's error %q", ev.Error)
	}
}

// TestNoLogRegisteredOutput: what a no_log step printed and registered (a
// token it fetched) stays hidden when a later step, not no_log, quotes it
// in a template, also from a loop's items; the module's own words about it
// do not become secrets.
func TestNoLogRegisteredOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
runbook: nolog
hosts: h1
steps:
  - name: fetch a token
    shell: { cmd: 'echo Fetched-T0ken-4471; echo Err-Line-5582 >&2' }
    no_log: true
    register: tok
  - name: fetch per item
    shell: { cmd: 'echo Item-T0ken-{{ item }}' }
    loop: [a1, b2]
    no_log: true
    register: toks
  - name: use them
    shell: { cmd: 'echo using {{ tok.stdout }} {{ tok.stderr }} {{ toks.results[1].stdout }}; exit 1' }
`, "")
	r := e.run(runOpts{})
	checkExit(t, r, 1)
	for _, sec := range []string{"Fetched-T0ken-4471", "Err-Line-5582", "Item-T0ken-b2"} {
		if bytes.Contains(r.raw, []byte(sec)) {
			t.Errorf("the journal holds %s:\n%s", sec, r.raw)
		}
	}
	ev := endOf(t, r, "h1", "use them")
	if ev.Result["stdout"] != "using <redacted> <redacted> <redacted>" {
		t.Errorf("use them: %v", ev.Result)
	}
}
