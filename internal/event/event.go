// Package event is the one stream a run produces: every start and end of a run, batch,
// host, step and rollback, fanned out to the journal, the terminal and JSON output.
package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/runbookhq/runbook/internal/redact"
)

// Kind names what happened. Names follow Terraform's JSON events: a thing that
// takes time has a *_start and a *_end; the Status of the *_end says how it went.
type Kind string

const (
	// RunStart is the first event of every journal. Data is a RunInfo.
	RunStart Kind = "run_start"
	// RunResume starts each later part of a run continued by `runbook resume`;
	// it is the only kind allowed after a RunEnd. Data is a RunInfo.
	RunResume Kind = "run_resume"
	// RunEnd closes the run (or the part since the last RunResume). Data is a
	// RunEnd; Status is ok, failed, aborted, interrupted or rollback_failed.
	RunEnd Kind = "run_end"

	// BatchStart and BatchEnd bracket one batch of hosts (Batch is 1-based;
	// Hosts of BatchStart lists them).
	BatchStart Kind = "batch_start"
	BatchEnd   Kind = "batch_end"

	// HostStart and HostEnd bracket the steps phase of one host.
	HostStart Kind = "host_start"
	HostEnd   Kind = "host_end"

	// StepStart is emitted before a step acts and StepEnd after it, in every phase
	// but rollback, so that a crash between them is seen as "in flight".
	// StepIndex is the step's stable position in its phase.
	StepStart Kind = "step_start"
	// StepRetry reports a failed attempt that will be retried (Attempt, Error).
	StepRetry Kind = "step_retry"
	StepEnd   Kind = "step_end"

	// RollbackStart and RollbackEnd bracket the rollback of one host; the
	// Status of RollbackEnd is rolled_back or rollback_failed.
	RollbackStart Kind = "rollback_start"
	// RollbackStepStart and RollbackStepEnd bracket one rollback step. With Undo
	// set, the step is the automatic undo of the steps-phase step at StepIndex;
	// otherwise StepIndex is the position in the runbook's rollback list.
	RollbackStepStart Kind = "rollback_step_start"
	RollbackStepEnd   Kind = "rollback_step_end"
	RollbackEnd       Kind = "rollback_end"

	// GateStart and GateEnd bracket the between_batches gates after batch Batch;
	// each gate is itself a step (phase between_batches) inside them.
	GateStart Kind = "gate_start"
	GateEnd   Kind = "gate_end"

	// Abort says no new batch will start (max_fail exceeded, a gate failed);
	// Error says why.
	Abort Kind = "abort"
	// Interrupt says the operator asked the run to stop (a signal).
	Interrupt Kind = "interrupt"

	// StepProcess records a command a step (or rollback step) started, as
	// soon as it started: its Engine fields name its process group on the
	// host it ran on (PGID, Start, Boot, On, Become, BecomeUser; see
	// conn.Proc), so that a resume after the controller died can tell
	// whether it still runs.
	StepProcess Kind = "step_process"
	// Leftover is what a resume did about a command the stopped run left
	// running, before the step runs again: Action is wait, waited,
	// kill, killed or gone; Error says why, in words.
	Leftover Kind = "leftover"
	// NotifyFailed says a notification could not be delivered (Error says
	// to which receiver, for which event, and why). Deliveries end after
	// the run does, so it may come after RunEnd.
	NotifyFailed Kind = "notify_failed"

	// StepProgress is what a running step reports before it ends, such as
	// each measurement of an analysis: Data holds it (for analysis:
	// metric, n, time, value, baseline, verdict, phase).
	StepProgress Kind = "step_progress"
)

// AfterEnd says whether an event of kind k may be recorded after a RunEnd
// (besides RunResume): what became of the run's notifications.
func AfterEnd(k Kind) bool { return k == NotifyFailed }

// Phase is the part of a runbook a step belongs to.
type Phase string

const (
	Preflight      Phase = "preflight"
	Steps          Phase = "steps"
	Rollback       Phase = "rollback"
	BetweenBatches Phase = "between_batches"
	Post           Phase = "post"
)

// Status is how a thing ended.
type Status string

const (
	OK             Status = "ok"
	Changed        Status = "changed"
	Skipped        Status = "skipped"
	Failed         Status = "failed"
	Unreachable    Status = "unreachable" // the transport failed: we do not know whether the command ran
	RolledBack     Status = "rolled_back"
	RollbackFailed Status = "rollback_failed"
	Aborted        Status = "aborted"
	Interrupted    Status = "interrupted"
	// Refused ends a run whose preflight did not pass: no host was touched by it.
	Refused Status = "refused"
)

// Event is one thing that happened in a run. The Bus fills Seq, Time and RunID;
// the engine fills the rest. In JSON, names are snake_case and empty fields are
// left out; Duration is written as Go writes durations ("1.5s").
type Event struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	RunID string    `json:"run_id"`
	Kind  Kind      `json:"kind"`
	Phase Phase     `json:"phase,omitempty"`
	Batch int       `json:"batch,omitempty"` // 1-based; 0 outside batches (preflight, post)
	Host  string    `json:"host,omitempty"`
	Step  string    `json:"step,omitempty"`
	// StepIndex is 0-based, so the first step of a phase has none in JSON.
	StepIndex int  `json:"step_index,omitempty"`
	Undo      bool `json:"undo,omitempty"`
	Attempt   int  `json:"attempt,omitempty"` // 1-based, on step events of retried steps
	// NoLog marks a step whose arguments and output must not be recorded: the
	// Bus replaces its Result and Error before any sink sees them.
	NoLog    bool           `json:"no_log,omitempty"`
	Status   Status         `json:"status,omitempty"`
	Changed  bool           `json:"changed,omitempty"`
	Error    string         `json:"error,omitempty"`
	Result   map[string]any `json:"result,omitempty"`
	Duration time.Duration  `json:"-"`
	Data     map[string]any `json:"data,omitempty"`
	// Engine holds the fields of Data that the engine writes from its own
	// state and reads back (resume, the views), typed. In JSON they stay
	// keys of "data", as they always were, so journals read both ways.
	Engine `json:"-"`
}

// Engine are the typed engine fields of a step-level event. Each is written
// in JSON as the key of "data" its tag names. Run-level events (RunStart,
// RunResume, RunEnd) keep all of Data as a map: see RunInfo, RunEndInfo.
type Engine struct {
	// Ignored: a StepEnd that failed under ignore_errors.
	Ignored bool `json:"ignored,omitempty"`
	// RanOn: the host a run_once step ran on, on the StepEnd of the others.
	RanOn string `json:"ran_on,omitempty"`
	// Reason: why a RollbackStart began ("failed", "interrupted", "abort",
	// ...), or why a StepEnd was skipped ("tags").
	Reason string `json:"reason,omitempty"`
	// FailedStep and FailedIndex: the step whose failure began a rollback,
	// on RollbackStart. FailedStep is a step's name and is redacted as Step.
	FailedStep  string `json:"failed_step,omitempty"`
	FailedIndex *int   `json:"failed_index,omitempty"`
	// Items: how many items a loop's StepStart or RollbackStepStart runs.
	Items *int `json:"items,omitempty"`
	// Action: what a resume did about a Leftover command (wait, waited,
	// kill, killed, gone).
	Action string `json:"action,omitempty"`
	// Hosts: the hosts of a BatchStart, in batch order.
	Hosts []string `json:"hosts,omitempty"`
	// The process group a StepProcess records (see conn.Proc), and On, the
	// connection it ran over (an inventory host, or controller); a Leftover
	// names its PGID and On too.
	PGID       int    `json:"pgid,omitempty"`
	Start      uint64 `json:"start,omitempty"`
	Boot       string `json:"boot,omitempty"`
	Become     bool   `json:"become,omitempty"`
	BecomeUser string `json:"become_user,omitempty"`
	On         string `json:"on,omitempty"`
	// ID and Module: the step's id (steps[1]) and module, on the start of a
	// step or of a rollback step.
	ID     string `json:"id,omitempty"`
	Module string `json:"module,omitempty"`
	// LoopIndex: the item of a looped step that a retry or a process
	// belongs to.
	LoopIndex *int `json:"loop_index,omitempty"`
	// DelegateTo: where a StepStart runs the step, when not on its host.
	DelegateTo string `json:"delegate_to,omitempty"`
	// Ahead: a step (or the undo of steps) of a host whose batch had not
	// started, run while the batch before was at its last step (a step
	// marked ahead: true); on RollbackStart, Reason is "ahead" then.
	Ahead bool `json:"ahead,omitempty"`
	// Counts: a HostEnd's step counts.
	*Counts

	// Rerun: why a StepStart or RollbackStepStart runs a step again after
	// a resume (it was in flight when the run stopped).
	Rerun string `json:"rerun,omitempty"`
	// Resumed: a HostStart or BatchStart of a resumed run (true), or a
	// RollbackStart that goes on with a rollback in flight (why, in words).
	Resumed Resumed `json:"resumed,omitzero"`
	// InFlight and Restart: on a resumed host's HostStart, the step that was
	// in flight when the run stopped, and why the host starts over.
	InFlight string `json:"in_flight,omitempty"`
	Restart  string `json:"restart,omitempty"`
	// BlockRollback: the id of the block whose own rollback a step belongs
	// to, on the events of that rollback's steps.
	BlockRollback string `json:"block_rollback,omitempty"`
	// Check: a StepEnd skipped under --check because its module cannot tell
	// what it would do.
	Check bool `json:"check,omitempty"`
	// State: what became of the host, in words, on its HostEnd.
	State *string `json:"state,omitempty"`
	// Mode: how an Interrupt stops the run (drain or stop).
	Mode string `json:"mode,omitempty"`
	// OnAbort: the runbook's on_abort, on an Abort.
	OnAbort string `json:"on_abort,omitempty"`
	// RollbackError: the failure a RollbackStart rolls back after.
	RollbackError *string `json:"error,omitempty"`
}

// Resumed is true, or a reason in words: what "resumed" holds in an event's
// data.
type Resumed struct {
	Yes bool
	Why string // set: written as the text instead of true
}

// MarshalJSON writes the reason, else true.
func (r Resumed) MarshalJSON() ([]byte, error) {
	if r.Why != "" {
		return json.Marshal(r.Why)
	}
	return json.Marshal(r.Yes)
}

// UnmarshalJSON reads a bool or a text.
func (r *Resumed) UnmarshalJSON(b []byte) error {
	var why string
	if json.Unmarshal(b, &why) == nil {
		*r = Resumed{Yes: true, Why: why}
		return nil
	}
	var yes bool
	if err := json.Unmarshal(b, &yes); err != nil {
		return fmt.Errorf("resumed: want true or a text, got %s", b)
	}
	*r = Resumed{Yes: yes}
	return nil
}

// Counts are a host's step counts on its HostEnd, as Ansible's recap: OK
// counts every step that succeeded, Changed the ones among them that
// changed something.
type Counts struct {
	OK      int `json:"ok"`
	Changed int `json:"changed"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
}

// IntPtr returns &n, for Engine's optional numbers.
func IntPtr(n int) *int { return &n }

// fields are the keys of Data that Engine's fields are written as; each
// entry gives the field to decode the key's value into.
// A key with kinds is read only on events of those kinds: words such as
// "error" or "state" are a module's own in a StepProgress.
func (g *Engine) fields() []engineField {
	return []engineField{
		{"ignored", &g.Ignored, nil}, {"ran_on", &g.RanOn, nil}, {"reason", &g.Reason, nil},
		{"failed_step", &g.FailedStep, nil}, {"failed_index", &g.FailedIndex, nil},
		{"items", &g.Items, nil}, {"action", &g.Action, nil}, {"hosts", &g.Hosts, nil},
		{"pgid", &g.PGID, nil}, {"start", &g.Start, nil}, {"boot", &g.Boot, nil}, {"become", &g.Become, nil},
		{"become_user", &g.BecomeUser, nil}, {"on", &g.On, nil}, {"id", &g.ID, nil}, {"module", &g.Module, nil},
		{"loop_index", &g.LoopIndex, nil}, {"delegate_to", &g.DelegateTo, nil}, {"ahead", &g.Ahead, nil},
		{"rerun", &g.Rerun, []Kind{StepStart, RollbackStepStart}},
		{"resumed", &g.Resumed, []Kind{HostStart, BatchStart, RollbackStart}},
		{"in_flight", &g.InFlight, []Kind{HostStart}}, {"restart", &g.Restart, []Kind{HostStart}},
		{"block_rollback", &g.BlockRollback, stepKinds},
		{"check", &g.Check, []Kind{StepEnd}}, {"state", &g.State, []Kind{HostEnd}},
		{"mode", &g.Mode, []Kind{Interrupt}}, {"on_abort", &g.OnAbort, []Kind{Abort}},
		{"error", &g.RollbackError, []Kind{RollbackStart}},
	}
}

type engineField struct {
	key   string
	ptr   any
	kinds []Kind // nil: every kind with Engine fields
}

// stepKinds are the events of one step.
var stepKinds = []Kind{StepStart, StepRetry, StepEnd, StepProcess, RollbackStepStart, RollbackStepEnd}

// countKeys are the keys of Counts in a HostEnd's Data.
var countKeys = []string{"ok", "changed", "skipped", "failed"}

// typedEngine says whether an event of kind k carries Engine fields; the
// others keep every key of Data in the map (RunEnd's "reason" is RunEndInfo's).
func typedEngine(k Kind) bool {
	switch k {
	case RunStart, RunResume, RunEnd:
		return false
	}
	return true
}

// IsZero says whether no field of g is set.
func (g Engine) IsZero() bool { return reflect.ValueOf(g).IsZero() }

// clone gives g its own numbers and list, so that two copies of an event
// share nothing.
func (g Engine) clone() Engine {
	g.Hosts = slices.Clone(g.Hosts)
	if g.FailedIndex != nil {
		g.FailedIndex = IntPtr(*g.FailedIndex)
	}
	if g.Items != nil {
		g.Items = IntPtr(*g.Items)
	}
	if g.LoopIndex != nil {
		g.LoopIndex = IntPtr(*g.LoopIndex)
	}
	if g.Counts != nil {
		c := *g.Counts
		g.Counts = &c
	}
	if g.State != nil {
		g.State = new(*g.State)
	}
	if g.RollbackError != nil {
		g.RollbackError = new(*g.RollbackError)
	}
	return g
}

// redactWords redacts the fields of g that are words rather than names the
// engine reads back: as the rest of an event's data, they may quote a
// secret.
func (g Engine) redactWords(s *redact.Set) Engine {
	g.Rerun, g.InFlight, g.Restart = s.Redact(g.Rerun), s.Redact(g.InFlight), s.Redact(g.Restart)
	g.Resumed.Why = s.Redact(g.Resumed.Why)
	if g.State != nil {
		g.State = new(s.Redact(*g.State))
	}
	if g.RollbackError != nil {
		g.RollbackError = new(s.Redact(*g.RollbackError))
	}
	return g
}

// withoutWords is g for a no_log step: only what the engine reads back.
func (g Engine) withoutWords() Engine {
	g.Rerun, g.InFlight, g.Restart, g.Resumed, g.Check = "", "", "", Resumed{}, false
	g.State, g.RollbackError = nil, nil
	return g
}

// dataWithEngine returns Data with the Engine fields added as their keys.
func (e Event) dataWithEngine() map[string]any {
	if !typedEngine(e.Kind) || e.Engine.IsZero() {
		return e.Data
	}
	out := make(map[string]any, len(e.Data)+2)
	for k, v := range e.Data {
		out[k] = v
	}
	// json.Number, not float64: Start is a uint64 and must be written exactly.
	b, err := json.Marshal(e.Engine)
	if err != nil {
		// Only plain fields in Engine: Marshal cannot fail on them.
		panic(fmt.Sprintf("event: encoding Engine: %v", err))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g map[string]any
	if err := dec.Decode(&g); err != nil {
		panic(fmt.Sprintf("event: decoding Engine: %v", err))
	}
	for k, v := range g {
		out[k] = v
	}
	return out
}

// takeEngine moves the Engine keys of Data into the typed fields. A value of
// the wrong type (a journal edited by hand) stays in Data and leaves its
// field zero, as the map's readers, which asserted its type, did.
func (e *Event) takeEngine() {
	if !typedEngine(e.Kind) || len(e.Data) == 0 {
		return
	}
	var data map[string]any
	for _, f := range e.Engine.fields() {
		v, ok := e.Data[f.key]
		if !ok || (f.kinds != nil && !slices.Contains(f.kinds, e.Kind)) {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil || v == nil || json.Unmarshal(b, f.ptr) != nil {
			continue
		}
		if data == nil {
			data = make(map[string]any, len(e.Data))
			for k, v := range e.Data {
				data[k] = v
			}
		}
		delete(data, f.key)
	}
	if e.Kind == HostEnd {
		data = e.takeCounts(data)
	}
	if data == nil {
		return
	}
	if len(data) == 0 {
		data = nil
	}
	e.Data = data
}

// takeCounts moves a HostEnd's counts from Data (or from data, the copy
// takeEngine made) into Counts, when all four are there as numbers.
func (e *Event) takeCounts(data map[string]any) map[string]any {
	src := data
	if src == nil {
		src = e.Data
	}
	var c Counts
	for _, f := range []struct {
		key string
		ptr *int
	}{{"ok", &c.OK}, {"changed", &c.Changed}, {"skipped", &c.Skipped}, {"failed", &c.Failed}} {
		v, ok := src[f.key]
		if !ok {
			return data
		}
		b, err := json.Marshal(v)
		if err != nil || v == nil || json.Unmarshal(b, f.ptr) != nil {
			return data
		}
	}
	e.Counts = &c
	out := make(map[string]any, len(src))
	for k, v := range src {
		out[k] = v
	}
	for _, k := range countKeys {
		delete(out, k)
	}
	return out
}

// wire is Event as written: the same fields, with Duration as text.
type wire struct {
	eventFields
	Duration string `json:"duration,omitempty"`
}

// eventFields is Event without its methods, so that wire can embed it without
// recursing into Event's own MarshalJSON.
type eventFields Event

// MarshalJSON writes Duration as "1.5s": readable in the journal and parsed back
// by time.ParseDuration. It leaves <, > and & unescaped so that "<redacted>" can
// be found with grep: encode with a json.Encoder with SetEscapeHTML(false), as
// the journal does (json.Marshal escapes them again).
func (e Event) MarshalJSON() ([]byte, error) {
	w := wire{eventFields: eventFields(e)}
	w.Data = e.dataWithEngine()
	if e.Duration != 0 {
		w.Duration = e.Duration.String()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event(w.eventFields)
	e.takeEngine()
	if w.Duration != "" {
		d, err := time.ParseDuration(w.Duration)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		e.Duration = d
	}
	return nil
}

// RunInfo is the Data of RunStart and RunResume: what the run is, so that
// `runbook resume` can refuse a changed runbook and `runbook runs` can list it.
type RunInfo struct {
	Runbook         string     `json:"runbook"`        // path as the operator gave it
	Name            string     `json:"name,omitempty"` // the runbook's `runbook:` name
	RunbookDigest   string     `json:"runbook_digest,omitempty"`
	Inventory       string     `json:"inventory,omitempty"`
	InventoryDigest string     `json:"inventory_digest,omitempty"`
	Hosts           []string   `json:"hosts,omitempty"`   // in run order
	Batches         [][]string `json:"batches,omitempty"` // the plan's batches
	Args            []string   `json:"args,omitempty"`    // the command line, after redaction
	Check           bool       `json:"check,omitempty"`
	Diff            bool       `json:"diff,omitempty"` // --diff: file modules show their diffs
	User            string     `json:"user,omitempty"`
	PID             int        `json:"pid,omitempty"`
	Version         string     `json:"version,omitempty"` // of runbook
	// What a resume needs to build the same plan again. Extra vars are never
	// recorded, only their digest: they may hold secrets, so `resume` asks for
	// the same -e again and checks it against VarsDigest.
	Limit      string   `json:"limit,omitempty"`
	ImportPath []string `json:"import_path,omitempty"` // -I folders
	Tags       []string `json:"tags,omitempty"`
	SkipTags   []string `json:"skip_tags,omitempty"`
	Seed       int64    `json:"seed,omitempty"`
	Forks      int      `json:"forks,omitempty"`
	VarsDigest string   `json:"vars_digest,omitempty"`
	// VarNames are the names of the -e variables (never their values), so
	// that a resume without them can say which to give again.
	VarNames []string `json:"var_names,omitempty"`
	// Steps is how many step positions (StepIndex values) the steps phase has,
	// so that a view can say "step 2/6"; 0 when unknown.
	Steps int `json:"steps,omitempty"`
	// Lock is the run lock this process took before it touched anything;
	// nil for a --check run, which changes nothing and takes none.
	Lock *RunLock `json:"lock,omitempty"`
}

// RunLock is the run lock a run (or a resume of it) holds until it ends.
type RunLock struct {
	Store string   `json:"store"` // where: "file store .runbook/locks", "etcd store …"
	Keys  []string `json:"keys"`  // "host/m1", "name/etcd-prod"
}

// RunEndInfo is the Data of RunEnd.
type RunEndInfo struct {
	ExitCode int `json:"exit_code"`
	// Hosts counts hosts by how they ended: {"ok": 3, "failed": 1}.
	Hosts map[string]int `json:"hosts,omitempty"`
	// Reason says why a run that did not succeed stopped.
	Reason string `json:"reason,omitempty"`
}

// Data returns info as an event's Data.
func (info RunInfo) Data() map[string]any { return toData(info) }

// Data returns info as an event's Data.
func (info RunEndInfo) Data() map[string]any { return toData(info) }

// toData goes through JSON so that Data holds only what a journal reader will
// see again (numbers as float64, lists as []any), whichever sink reads it.
func toData(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain fields above: Marshal cannot fail on them.
		panic(fmt.Sprintf("event: encoding %T: %v", v, err))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("event: decoding %T: %v", v, err))
	}
	return m
}

// EndInfo reads the RunEndInfo of a RunEnd event. ok is false when its Data
// holds no exit code, so that a view does not show one the run never gave,
// or does not decode; end holds what did.
func (e Event) EndInfo() (end RunEndInfo, ok bool) {
	if _, has := e.Data["exit_code"]; !has {
		return end, false
	}
	return end, DecodeData(e.Data, &end) == nil
}

// DecodeData reads an event's Data into out (a *RunInfo, a *RunEndInfo).
func DecodeData(data map[string]any, out any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("event data: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("event data: %w", err)
	}
	return nil
}
