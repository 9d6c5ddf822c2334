// Package report turns a run's journal into the documents read after a change:
// markdown for a pull request or change ticket, one self-contained HTML page,
// JUnit XML for CI systems, and a stable JSON document they are all made from.
//
// A report holds only what the journal holds, which the run already redacted:
// it adds no value of its own from the runbook, the inventory or -e.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/ui"
)

// Version is the version of the JSON document. It changes only when a field
// changes meaning or goes away; new fields may appear within a version.
const Version = 1

// Formats are the formats Write accepts, besides "text" which is the
// journal's own story (journal.State.WriteStory).
var Formats = []string{"json", "markdown", "html", "junit"}

// Report is one run as the journal tells it. Field names are the JSON
// document's (report_version 1); times are UTC in RFC 3339, durations are
// whole milliseconds.
type Report struct {
	Version   int         `json:"report_version"`
	RunID     string      `json:"run_id"`
	Runbook   string      `json:"runbook"` // the runbook's name, else its path
	File      string      `json:"file"`    // the runbook's path as the operator gave it
	Inventory string      `json:"inventory,omitempty"`
	User      string      `json:"user,omitempty"`
	Check     bool        `json:"check,omitempty"`
	Started   time.Time   `json:"started"`
	Ended     *time.Time  `json:"ended,omitempty"`
	Resumed   []time.Time `json:"resumed,omitempty"`
	// Result is how the run ended (run_end's status: ok, failed, aborted,
	// interrupted, rollback_failed, refused), or running (a process holds
	// it) or crashed (it stopped without a run_end).
	Result      string         `json:"result"`
	ExitCode    *int           `json:"exit_code,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	AbortReason string         `json:"abort_reason,omitempty"`
	Lock        *event.RunLock `json:"lock,omitempty"`
	Hosts       []Host         `json:"hosts"`
	Controller  []Step         `json:"controller_steps"` // preflight, between_batches gates, post
	Approvals   []Approval     `json:"approvals"`
	Failures    []Failure      `json:"failures"`
	Metrics     []Metric       `json:"metrics"`
	Analyses    []Analysis     `json:"analyses"`
	Notices     []Notice       `json:"notices"`
	Recap       string         `json:"recap"`          // the recap exec printed at the end
	Flow        string         `json:"flow,omitempty"` // the plan as a Mermaid flowchart
	Torn        *journal.Torn  `json:"torn,omitempty"` // a last line cut by a crash, left out
	span        [2]time.Time
}

// Host is one host of the plan, in run order.
type Host struct {
	Name string `json:"name"`
	// Batch is 1-based; 0 for a host no batch named.
	Batch int `json:"batch,omitempty"`
	// Status is the journal's: pending, running, done, failed, rolled_back,
	// rollback_failed, unreachable, interrupted.
	Status   string     `json:"status"`
	Started  *time.Time `json:"started,omitempty"`
	Ended    *time.Time `json:"ended,omitempty"`
	Error    string     `json:"error,omitempty"`
	Steps    []Step     `json:"steps"`
	Rollback []Step     `json:"rollback"`
}

// Step is one step that started or ended. Status never_ended marks a step
// that was in flight when the process stopped.
type Step struct {
	Phase  string `json:"phase"`
	Batch  int    `json:"batch,omitempty"`
	Host   string `json:"host,omitempty"`
	Index  int    `json:"index"` // 0-based position in its phase
	Name   string `json:"name"`
	Module string `json:"module,omitempty"`
	// Undo marks the automatic undo of the steps-phase step at Index.
	Undo       bool       `json:"undo,omitempty"`
	Status     string     `json:"status"`
	Changed    bool       `json:"changed,omitempty"`
	Attempts   int        `json:"attempts,omitempty"`
	Started    *time.Time `json:"started,omitempty"`
	Ended      *time.Time `json:"ended,omitempty"`
	DurationMS int64      `json:"duration_ms"`
	Error      string     `json:"error,omitempty"`
	NoLog      bool       `json:"no_log,omitempty"`
	result     map[string]any
}

// NeverEnded is the Status of a step the journal saw start and never end.
const NeverEnded = "never_ended"

// Approval is a decision a person (or --yes) took at a gate: a pause step's
// answer, or an approval or rejection event (any kind starting with
// "approv" or "reject"), shown with the fields it carries.
type Approval struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // pause, or the event's kind
	Host     string    `json:"host,omitempty"`
	Step     string    `json:"step,omitempty"`
	User     string    `json:"user,omitempty"`
	Decision string    `json:"decision"` // approved, rejected, or the event's own status
	Detail   string    `json:"detail,omitempty"`
}

// Failure is a step, host or run that failed, with its message.
type Failure struct {
	Time    time.Time `json:"time"`
	Host    string    `json:"host,omitempty"`
	Phase   string    `json:"phase,omitempty"`
	Step    string    `json:"step,omitempty"`
	Status  string    `json:"status"`
	Message string    `json:"message"`
}

// Metric is what an assert-metric gate read: per URL, each name (with its
// labels) it evaluated and the value it saw in the last sample.
type Metric struct {
	Time    time.Time                 `json:"time"`
	Phase   string                    `json:"phase"`
	Host    string                    `json:"host,omitempty"`
	Step    string                    `json:"step"`
	Status  string                    `json:"status"`
	Held    *bool                     `json:"held,omitempty"`
	Samples int                       `json:"samples,omitempty"`
	Values  map[string]map[string]any `json:"values"`
}

// Notice is an event of a kind the report does not file elsewhere, such as
// a notification that could not be delivered (notify_failed).
type Notice struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Host    string    `json:"host,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Build makes the report of the run st replays. flow is the plan's Mermaid
// flowchart kept beside the journal ("" when there is none).
func Build(st *journal.State, flow string) *Report {
	r := &Report{
		Version:    Version,
		RunID:      st.RunID,
		Runbook:    st.Info.Name,
		File:       st.Info.Runbook,
		Inventory:  st.Info.Inventory,
		User:       st.Info.User,
		Check:      st.Info.Check,
		Started:    st.Started.UTC(),
		Lock:       st.Info.Lock,
		Torn:       st.Torn,
		Flow:       flow,
		Hosts:      []Host{},
		Controller: []Step{},
		Approvals:  []Approval{},
		Failures:   []Failure{},
		Metrics:    []Metric{},
		Analyses:   []Analysis{},
		Notices:    []Notice{},
	}
	if r.Runbook == "" {
		r.Runbook = r.File
	}
	for _, res := range st.Resumes {
		r.Resumed = append(r.Resumed, res.Time.UTC())
	}
	switch {
	case st.Live:
		r.Result = "running"
	case st.Finished:
		r.Result = string(st.Status)
		r.Ended = timePtr(st.Ended)
		code := st.ExitCode
		r.ExitCode = &code
		r.Reason = st.Reason
	default:
		r.Result = "crashed"
	}
	if st.Aborted {
		r.AbortReason = st.AbortReason
	}

	modules := modulesOf(st.Events)
	rec := func(sr journal.StepRecord, batch int, ended bool) Step {
		key := stepKey{sr.Phase, sr.Host, 0, sr.Index, sr.Undo}
		if sr.Phase == event.BetweenBatches {
			key.batch = batch
		}
		s := Step{
			Phase: string(sr.Phase), Batch: batch, Host: sr.Host, Index: sr.Index, Name: stepName(sr),
			Module: modules[key], Undo: sr.Undo,
			Status: string(sr.Status), Changed: sr.Changed, Attempts: sr.Attempts,
			Started: timePtr(sr.Started), Ended: timePtr(sr.Ended), DurationMS: sr.Duration.Milliseconds(),
			Error: sr.Error, NoLog: sr.NoLog, result: sr.Result,
		}
		if !ended {
			s.Status, s.Ended = NeverEnded, nil
		}
		return s
	}
	seq := func(ss journal.Steps, batch int) []Step {
		out := []Step{}
		for _, sr := range ss.Done {
			out = append(out, rec(sr, batch, true))
		}
		if ss.InFlight != nil {
			out = append(out, rec(*ss.InFlight, batch, false))
		}
		return out
	}
	for _, h := range st.HostList() {
		r.Hosts = append(r.Hosts, Host{
			Name: h.Name, Batch: h.Batch, Status: string(h.Status),
			Started: timePtr(h.Started), Ended: timePtr(h.Ended), Error: h.Error,
			Steps: seq(h.Steps, h.Batch), Rollback: seq(h.Rollback, h.Batch),
		})
	}
	r.Controller = append(r.Controller, seq(st.Preflight, 0)...)
	for _, b := range st.Batches {
		r.Controller = append(r.Controller, seq(b.Gates, b.Index)...)
	}
	r.Controller = append(r.Controller, seq(st.Post, 0)...)

	r.collectEvents(st.Events, st.Info.User)
	r.collectMetrics()
	r.collectAnalyses()

	var recap bytes.Buffer
	_ = ui.RecapOf(st.Events).Print(&recap) // a bytes.Buffer does not fail
	r.Recap = recap.String()

	r.span[0] = r.Started
	for _, e := range st.Events {
		if e.Time.After(r.span[1]) {
			r.span[1] = e.Time.UTC()
		}
	}
	return r
}

// collectEvents files the events that are decisions, failures and notices.
// runUser is who started the run: the operator who answers a pause on its
// terminal.
func (r *Report) collectEvents(events []event.Event, runUser string) {
	for _, e := range events {
		kind := string(e.Kind)
		switch {
		case strings.HasPrefix(kind, "approv") || strings.HasPrefix(kind, "reject"):
			r.Approvals = append(r.Approvals, genericApproval(e))
		case e.Kind == event.StepEnd && e.Result != nil && e.Result["confirmed"] != nil:
			a := Approval{Time: e.Time.UTC(), Kind: "pause", Host: e.Host, Step: e.Step, Decision: "rejected"}
			if c, _ := e.Result["confirmed"].(bool); c {
				a.Decision = "approved"
			}
			a.Detail, _ = e.Result["msg"].(string)
			if a.Detail == "confirmed by the operator" || a.Detail == "refused by the operator" {
				a.User = runUser
			}
			if p, _ := e.Result["prompt"].(string); p != "" {
				a.Detail = strings.TrimSpace(p + " — " + a.Detail)
			}
			r.Approvals = append(r.Approvals, a)
		case (e.Kind == event.StepEnd || e.Kind == event.RollbackStepEnd) && failed(e.Status) && !e.Ignored:
			r.Failures = append(r.Failures, Failure{Time: e.Time.UTC(), Host: e.Host, Phase: string(phaseOf(e)),
				Step: nameOr(e), Status: string(e.Status), Message: e.Error})
		case e.Kind == event.Abort:
			r.Failures = append(r.Failures, Failure{Time: e.Time.UTC(), Status: string(event.Aborted), Message: e.Error})
		case e.Kind == event.RollbackEnd && e.Status != event.RolledBack && e.Status != event.OK:
			r.Failures = append(r.Failures, Failure{Time: e.Time.UTC(), Host: e.Host, Phase: string(event.Rollback),
				Status: string(e.Status), Message: e.Error})
		case !knownKind(e.Kind):
			n := Notice{Time: e.Time.UTC(), Kind: kind, Host: e.Host, Message: e.Error}
			if n.Message == "" {
				n.Message = string(e.Status)
			}
			r.Notices = append(r.Notices, n)
		}
	}
}

// genericApproval shows an approval event of any shape: who, where, and the
// rest of its data as key=value words.
func genericApproval(e event.Event) Approval {
	a := Approval{Time: e.Time.UTC(), Kind: string(e.Kind), Host: e.Host, Step: e.Step, Decision: string(e.Status)}
	data := map[string]any{}
	for k, v := range e.Data {
		data[k] = v
	}
	// The engine's typed fields (reason, on...) are words of it too.
	if b, err := json.Marshal(e.Engine); err == nil {
		var g map[string]any
		if json.Unmarshal(b, &g) == nil {
			for k, v := range g {
				data[k] = v
			}
		}
	}
	if u, ok := data["user"].(string); ok {
		a.User = u
		delete(data, "user")
	}
	if a.Decision == "" {
		switch {
		case strings.HasPrefix(string(e.Kind), "reject"):
			a.Decision = "rejected"
		case strings.HasSuffix(string(e.Kind), "ed"):
			a.Decision = "approved"
		default:
			a.Decision = string(e.Kind)
		}
	}
	var words []string
	if reason, ok := data["reason"].(string); ok {
		words = append(words, "reason: "+reason)
		delete(data, "reason")
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		words = append(words, fmt.Sprintf("%s=%v", k, data[k]))
	}
	if e.Error != "" {
		words = append(words, e.Error)
	}
	a.Detail = strings.Join(words, "; ")
	return a
}

// collectMetrics gathers the values every assert-metric step read.
func (r *Report) collectMetrics() {
	add := func(s Step) {
		vals, ok := s.result["values"].(map[string]any)
		if !ok || s.Module != "" && s.Module != "assert-metric" {
			return
		}
		m := Metric{Phase: s.Phase, Host: s.Host, Step: s.Name, Status: s.Status, Values: map[string]map[string]any{}}
		if s.Ended != nil {
			m.Time = *s.Ended
		}
		if h, ok := s.result["held"].(bool); ok {
			m.Held = &h
		}
		if n, ok := s.result["samples"].(float64); ok {
			m.Samples = int(n)
		}
		for url, v := range vals {
			if mv, ok := v.(map[string]any); ok {
				m.Values[url] = mv
			}
		}
		r.Metrics = append(r.Metrics, m)
	}
	r.eachStep(add)
	sort.SliceStable(r.Metrics, func(i, j int) bool { return r.Metrics[i].Time.Before(r.Metrics[j].Time) })
}

type stepKey struct {
	phase event.Phase
	host  string
	batch int
	index int
	undo  bool
}

// modulesOf reads the module of each step from its start event.
func modulesOf(events []event.Event) map[stepKey]string {
	out := map[stepKey]string{}
	for _, e := range events {
		if e.Kind != event.StepStart && e.Kind != event.RollbackStepStart {
			continue
		}
		m := e.Engine.Module
		if m == "" {
			continue
		}
		k := stepKey{phaseOf(e), e.Host, e.Batch, e.StepIndex, e.Undo}
		if k.phase != event.BetweenBatches {
			k.batch = 0
		}
		out[k] = m
	}
	return out
}

func phaseOf(e event.Event) event.Phase {
	// As the journal files a step (journal.phaseOf).
	switch {
	case e.Phase != "":
		return e.Phase
	case e.Kind == event.RollbackStepStart || e.Kind == event.RollbackStepEnd:
		return event.Rollback
	}
	return event.Steps
}

func failed(s event.Status) bool {
	return s == event.Failed || s == event.Unreachable || s == event.RollbackFailed
}

func knownKind(k event.Kind) bool {
	switch k {
	case event.RunStart, event.RunResume, event.RunEnd, event.BatchStart, event.BatchEnd,
		event.HostStart, event.HostEnd, event.StepStart, event.StepRetry, event.StepEnd,
		event.RollbackStart, event.RollbackStepStart, event.RollbackStepEnd, event.RollbackEnd,
		event.GateStart, event.GateEnd, event.Abort, event.Interrupt, event.StepProcess, event.Leftover,
		event.StepProgress: // an analysis step's measurements, which Analyses shows
		return true
	}
	return false
}

func nameOr(e event.Event) string {
	if e.Step != "" {
		return e.Step
	}
	return fmt.Sprintf("step %d", e.StepIndex+1)
}

func stepName(sr journal.StepRecord) string {
	if sr.Name != "" {
		return sr.Name
	}
	return fmt.Sprintf("step %d", sr.Index+1)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// Write writes r in format (json, markdown, html or junit).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		return r.WriteJSON(w)
	case "markdown":
		return r.WriteMarkdown(w)
	case "html":
		return r.WriteHTML(w)
	case "junit":
		return r.WriteJUnit(w)
	}
	return fmt.Errorf("report: unknown format %q; want one of %s", format, strings.Join(Formats, ", "))
}

// eachStep calls f with every step the report holds: the controller's, then
// each host's, in order.
func (r *Report) eachStep(f func(Step)) {
	for _, s := range r.Controller {
		f(s)
	}
	for _, h := range r.Hosts {
		for _, s := range h.Steps {
			f(s)
		}
	}
}
