package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
	_ "github.com/runbookhq/runbook/modules/command"
	_ "github.com/runbookhq/runbook/modules/pause"
	_ "github.com/runbookhq/runbook/modules/shell"
	"github.com/runbookhq/runbook/runner"
)

// testTimeout bounds every run, so that a bug that hangs fails the test
// instead of the whole package.
const testTimeout = 60 * time.Second

// defaultInventory has three local hosts, each with its own vars.
const defaultInventory = `
all:
  vars:
    ansible_connection: local
  children:
    web:
      hosts:
        h1: { color: red, weight: 3 }
        h2: { color: green, weight: 1 }
        h3: { color: blue, weight: 2 }
    extra:
      hosts:
        h4: { color: black, weight: 4 }
`

// testRegistry holds command and shell, and the test modules below.
func testRegistry(t testing.TB) *modules.Registry {
	reg := &modules.Registry{}
	for _, name := range []string{"command", "shell", "pause"} {
		info, ok := modules.Default.Lookup(name)
		if !ok {
			t.Fatalf("module %s is not registered", name)
		}
		reg.Register(info)
	}
	reg.Register(modules.Info{Name: "mark", New: func() modules.Module { return new(markMod) }})
	reg.Register(modules.Info{Name: "fail", New: func() modules.Module { return new(failMod) }})
	reg.Register(modules.Info{Name: "gate", New: func() modules.Module { return new(gateMod) }})
	reg.Register(modules.Info{Name: "barrier", New: func() modules.Module { return new(barrierMod) }})
	reg.Register(modules.Info{Name: "undofail", New: func() modules.Module { return new(undoFailMod) }})
	reg.Register(modules.Info{Name: "probe", New: func() modules.Module { return new(probeMod) }})
	reg.Register(modules.Info{Name: "where", New: func() modules.Module { return new(whereMod) }})
	reg.RegisterFacts(modules.Facts{Name: "cluster", Sample: clusterFacts{}, Gather: gatherCluster})
	return reg
}

// clusterFacts are test facts: who leads, as the file <dir>/leader on the host says.
type clusterFacts struct {
	Leader string `expr:"leader"`
}

func gatherCluster(ctx context.Context, h *modules.Host) (any, error) {
	dir, _ := h.Vars["dir"].(string)
	out, err := h.Conn.Run(ctx, conn.Cmd{Argv: []string{"cat", filepath.Join(dir, "leader")}})
	if err != nil {
		return nil, err
	}
	return clusterFacts{Leader: strings.TrimSpace(string(out.Stdout))}, nil
}

// envSeq makes the keys of gates and barriers unique to one env, also when
// tests run again with -count.
var envSeq atomic.Int64

// env is one runbook with its inventory, in its own folder.
type env struct {
	t     *testing.T
	dir   string // the world: files the steps write
	state string // the state folder: journals
	reg   *modules.Registry
	rbSrc string
	inv   string
	extra map[string]any
	p     *plan.Plan
	runID string
	gates string // key of this test's gate module instances
}

// newEnv loads runbook (YAML, with {{ dir }} meaning the test's folder) and
// plans it over the inventory. It fails the test on any diagnostic.
func newEnv(t *testing.T, runbook, inv string) *env {
	t.Helper()
	if inv == "" {
		inv = defaultInventory
	}
	e := &env{t: t, dir: t.TempDir(), state: t.TempDir(), reg: testRegistry(t), rbSrc: runbook, inv: inv,
		runID: journal.NewRunID(), gates: fmt.Sprintf("%s#%d", t.Name(), envSeq.Add(1))}
	e.extra = map[string]any{"dir": e.dir, "key": e.gates}
	e.p = e.plan()
	return e
}

func (e *env) plan() *plan.Plan {
	t := e.t
	t.Helper()
	invPath := filepath.Join(e.state, "inventory.yml")
	if err := os.WriteFile(invPath, []byte(e.inv), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, ds := inventory.Load(invPath)
	if ds.HasErrors() {
		t.Fatalf("inventory: %v", ds.Err())
	}
	rbPath := filepath.Join(e.state, "runbook.yml")
	rb, ds := spec.LoadBytes(rbPath, []byte(e.rbSrc), e.reg, spec.LoadOptions{Vars: plan.MergeVars(inv.AllVarNames(), e.extra), Extra: e.reg.FactSamples()})
	if ds.HasErrors() {
		t.Fatalf("runbook: %v", ds.Err())
	}
	p, ds := plan.Build(rb, inv, plan.Options{ExtraVars: e.extra, Registry: e.reg})
	if ds.HasErrors() {
		t.Fatalf("plan: %v", ds.Err())
	}
	return p
}

// result is a finished run: its outcome, error and journal.
type result struct {
	out    *runner.Outcome
	err    error
	st     *journal.State
	events []event.Event
	raw    []byte // the journal file
}

type runOpts struct {
	opts   func(*runner.Options)
	ctx    context.Context
	resume *journal.State
	j      *journal.Journal
	sinks  []event.Sink
}

// run runs the plan with a real journal and returns what happened.
func (e *env) run(ro runOpts) result {
	t := e.t
	t.Helper()
	j := ro.j
	var seq int64
	if ro.resume != nil {
		seq = ro.resume.LastSeq
	}
	if j == nil {
		var err error
		j, err = journal.Open(e.state, e.runID)
		if err != nil {
			t.Fatal(err)
		}
	}
	bus := event.NewBus(e.runID, event.Options{Seq: seq, Secrets: &redact.Set{}})
	bus.Require(j)
	for _, s := range ro.sinks {
		bus.Attach(s)
	}
	opts := runner.Options{Dialer: local.Dialer{}, Events: bus, RunID: e.runID, Resume: ro.resume, Forks: 5,
		Info: event.RunInfo{Args: []string{"exec", "runbook.yml"}}}
	if ro.opts != nil {
		ro.opts(&opts)
	}
	ctx := ro.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	out, err := runner.Run(ctx, e.p, e.reg, opts)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("the run did not end within %s", testTimeout)
	}
	if cerr := j.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	raw, rerr := os.ReadFile(journal.Path(e.state, e.runID))
	if rerr != nil {
		t.Fatal(rerr)
	}
	st, rerr := journal.Replay(bytes.NewReader(raw))
	if rerr != nil {
		t.Fatalf("the journal does not replay: %v\n%s", rerr, raw)
	}
	return result{out: out, err: err, st: st, events: st.Events, raw: raw}
}

// story is the journal as `runbook show` prints it, for failure messages.
func (r result) story() string {
	var b strings.Builder
	if err := r.st.WriteStory(&b); err != nil {
		return err.Error()
	}
	return b.String()
}

// lines reads a file the steps wrote, one entry per line; missing is empty.
func (e *env) lines(name string) []string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// hostLines keeps the lines of one host ("h1 a" → "a"), in order.
func hostLines(lines []string, host string) []string {
	var out []string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, host+" "); ok {
			out = append(out, rest)
		} else if rest, ok := strings.CutPrefix(l, "undo "+host+" "); ok {
			out = append(out, "undo "+rest)
		}
	}
	return out
}

func statuses(out *runner.Outcome) map[string]runner.Status {
	m := map[string]runner.Status{}
	for n, h := range out.Hosts {
		m[n] = h.Status
	}
	return m
}

// kinds lists the events as "kind host step status", the shape most tests
// assert, without step_process: one per command a module runs.
func kinds(evs []event.Event, keep func(event.Event) bool) []string {
	var out []string
	for _, e := range evs {
		if keep != nil && !keep(e) || e.Kind == event.StepProcess {
			continue
		}
		s := string(e.Kind)
		if e.Host != "" {
			s += " " + e.Host
		}
		if e.Step != "" {
			s += " " + e.Step
		}
		if e.Status != "" {
			s += " " + string(e.Status)
		}
		out = append(out, s)
	}
	return out
}

func find(evs []event.Event, f func(event.Event) bool) []event.Event {
	var out []event.Event
	for _, e := range evs {
		if f(e) {
			out = append(out, e)
		}
	}
	return out
}

func checkExit(t *testing.T, r result, want int) {
	t.Helper()
	if got := r.out.ExitCode(); got != want {
		t.Errorf("exit code %d, want %d\nhosts: %v\n%s", got, want, describe(r.out), r.story())
	}
	var end event.RunEndInfo
	ends := find(r.events, func(e event.Event) bool { return e.Kind == event.RunEnd })
	if len(ends) == 0 {
		t.Fatalf("no run_end in the journal")
	}
	if err := event.DecodeData(ends[len(ends)-1].Data, &end); err != nil {
		t.Fatal(err)
	}
	if end.ExitCode != want {
		t.Errorf("run_end exit code %d, want %d", end.ExitCode, want)
	}
}

func describe(out *runner.Outcome) string {
	var b strings.Builder
	var names []string
	for n := range out.Hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := out.Hosts[n]
		fmt.Fprintf(&b, "\n  %s: %s (%s) err=%v", n, h.Status, h.State, h.Err)
	}
	return b.String()
}

// --- test modules ---

// markMod appends "<host> <text>" to path, through the host's connection, and
// its undo appends "undo <host> <text>". Check says it would write.
type markMod struct {
	Path string `yaml:"path" runbook:"required"`
	Text string `yaml:"text"`
}

func appendLine(ctx context.Context, c conn.Conn, path, line string) error {
	_, err := c.Run(ctx, conn.Cmd{Shell: `printf '%s\n' "$LINE" >> "$FILE"`, Env: map[string]string{"LINE": line, "FILE": path}})
	return err
}

func (m *markMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	line := h.Name + " " + m.Text
	if err := appendLine(ctx, h.Conn, m.Path, line); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true, Data: map[string]any{"line": line, "become": h.Become, "conn": h.Conn.String()}}, nil
}

func (m *markMod) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	line, _ := done.Data["line"].(string)
	if line == "" {
		return errors.New("the result to undo has no line")
	}
	return appendLine(ctx, h.Conn, m.Path, "undo "+line)
}

func (m *markMod) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return modules.Result{Changed: true, Data: map[string]any{"would": "append " + m.Text}}, nil
}

// failMod fails with msg; with transport it fails as a lost connection would.
type failMod struct {
	Msg       string `yaml:"msg"`
	Transport bool   `yaml:"transport"`
	Hold      bool   `yaml:"hold"` // a modules.HoldError: stopped, not failed
}

func (m *failMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	if m.Transport {
		return modules.Result{}, &conn.TransportError{Host: h.Name, Err: errors.New("connection reset")}
	}
	if m.Hold {
		return modules.Result{}, &modules.HoldError{Err: errors.New(m.Msg)}
	}
	return modules.Result{Data: map[string]any{"rc": 3}}, errors.New(m.Msg)
}

// Check fails as Run does, so --check tests see a failing check.
func (m *failMod) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Run(ctx, h)
}

// undoFailMod changes something whose undo fails.
type undoFailMod struct {
	Path string `yaml:"path" runbook:"required"`
}

func (m *undoFailMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	if err := appendLine(ctx, h.Conn, m.Path, h.Name+" undofail"); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true}, nil
}

func (m *undoFailMod) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	return errors.New("disk full")
}

// probeMod reports what the engine gave the module.
type probeMod struct {
	Value string `yaml:"value"`
}

func (m *probeMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return modules.Result{Data: map[string]any{
		"value": m.Value, "become": h.Become, "become_user": h.BecomeUser, "conn": h.Conn.String(),
		"host": h.Name, "yes": h.Yes,
	}}, nil
}

// whereMod appends "<host> <text> on <conn>" to path, its undo "undo <host>
// <text> on <conn>", so tests see which connection each ran over. With fail
// set it fails without writing.
type whereMod struct {
	Path string `yaml:"path" runbook:"required"`
	Text string `yaml:"text"`
	Fail bool   `yaml:"fail"`
}

func (m *whereMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	if m.Fail {
		return modules.Result{}, fmt.Errorf("%s refused", m.Text)
	}
	line := h.Name + " " + m.Text + " on " + h.Conn.String()
	if err := appendLine(ctx, h.Conn, m.Path, line); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true, Data: map[string]any{"text": m.Text}}, nil
}

func (m *whereMod) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if done.Data["text"] != m.Text {
		return fmt.Errorf("undo of %q given the result of %v", m.Text, done.Data["text"])
	}
	return appendLine(ctx, h.Conn, m.Path, "undo "+h.Name+" "+m.Text+" on "+h.Conn.String())
}

// gateMod tells the test it arrived, then waits to be released (or for ctx).
// Released, it appends "<host> gate" to path when given.
type gateMod struct {
	Key  string `yaml:"key" runbook:"required"`
	Path string `yaml:"path"`
}

type gate struct {
	arrived chan string
	release chan struct{}
	once    sync.Once
}

var gates sync.Map // key → *gate

func gateFor(key string) *gate {
	g, _ := gates.LoadOrStore(key, &gate{arrived: make(chan string, 64), release: make(chan struct{})})
	return g.(*gate)
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// await returns the next host to arrive at the gate.
func (g *gate) await(t *testing.T) string {
	t.Helper()
	select {
	case h := <-g.arrived:
		return h
	case <-time.After(testTimeout):
		t.Fatal("no host arrived at the gate")
		return ""
	}
}

func (m *gateMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	g := gateFor(m.Key)
	g.arrived <- h.Name
	select {
	case <-g.release:
	case <-ctx.Done():
		return modules.Result{}, ctx.Err()
	}
	if m.Path != "" {
		if err := appendLine(context.WithoutCancel(ctx), h.Conn, m.Path, h.Name+" gate"); err != nil {
			return modules.Result{}, err
		}
	}
	return modules.Result{Changed: true, Data: map[string]any{"line": h.Name + " gate"}}, nil
}

func (m *gateMod) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if m.Path == "" {
		return nil
	}
	return appendLine(ctx, h.Conn, m.Path, "undo "+h.Name+" gate")
}

// barrierMod is a cyclic barrier: hosts wait in groups of n (the last group
// may be smaller: total says how many come in all). It records how many hosts
// were inside at once.
type barrierMod struct {
	Key   string `yaml:"key" runbook:"required"`
	N     int    `yaml:"n"`
	Total int    `yaml:"total"`
}

type barrier struct {
	mu       sync.Mutex
	arrived  int
	inside   int
	maxIn    int
	gen      int
	released chan struct{}
}

var barriers sync.Map

func barrierFor(key string) *barrier {
	b, _ := barriers.LoadOrStore(key, &barrier{released: make(chan struct{})})
	return b.(*barrier)
}

func (m *barrierMod) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	b := barrierFor(m.Key)
	b.mu.Lock()
	b.inside++
	b.maxIn = max(b.maxIn, b.inside)
	b.arrived++
	ch := b.released
	if b.arrived%m.N == 0 || b.arrived == m.Total {
		close(b.released)
		b.released = make(chan struct{})
		b.gen++
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inside--
		b.mu.Unlock()
	}()
	select {
	case <-ch:
		return modules.Result{}, nil
	case <-ctx.Done():
		return modules.Result{}, fmt.Errorf("barrier %s: only part of the group arrived: %w", m.Key, ctx.Err())
	}
}

var (
	_ modules.Undoer  = (*markMod)(nil)
	_ modules.Checker = (*markMod)(nil)
	_ modules.Undoer  = (*undoFailMod)(nil)
	_ modules.Undoer  = (*gateMod)(nil)
	_ modules.Undoer  = (*whereMod)(nil)
	_ modules.Checker = (*failMod)(nil)
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// resumeCut resumes run runID of rb in a fresh env whose journal holds only
// lines, the first lines of that run's journal, as a crash after them leaves
// it; st is the state the resume read from them.
func resumeCut(t *testing.T, rb, runID string, lines [][]byte) (e *env, r result, st *journal.State) {
	t.Helper()
	e = newEnv(t, rb, "")
	e.runID = runID
	if err := os.MkdirAll(filepath.Join(e.state, journal.RunsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal.Path(e.state, e.runID), bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	j, st, err := journal.OpenAppend(e.state, e.runID)
	if err != nil {
		t.Fatal(err)
	}
	return e, e.run(runOpts{j: j, resume: st}), st
}
