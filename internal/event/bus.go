package event

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/redact"
)

// Sink receives events. Emit is called with events in Seq order, one at a time,
// while the Bus holds its lock: a sink must return promptly and must not emit
// into the Bus that calls it. The event and the maps in it belong to the sink.
type Sink interface {
	Emit(Event) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event) error

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) error { return f(e) }

// Options configure a Bus. The zero value is usable.
type Options struct {
	// Seq is the number of the last event already recorded, for a resumed run;
	// the next event gets Seq+1.
	Seq int64
	// Secrets are replaced in every event before any sink sees it.
	Secrets *redact.Set
	// Log receives the failures of optional sinks. The zero Logger discards.
	Log zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bus numbers events, stamps them, redacts them and hands them to its sinks. It is
// the one place events from parallel hosts meet, so it gives them a total order:
// Seq increases by one per event, and every sink sees events in Seq order.
//
// A required sink (the journal) is the record a resume depends on: its failure is
// returned by Emit, and the engine must stop before the next action. An optional
// sink (the terminal) only shows the run: its failure is logged once and the run
// goes on. A Bus is safe for concurrent use.
type Bus struct {
	mu       sync.Mutex
	runID    string
	seq      int64
	secrets  *redact.Set
	log      zerolog.Logger
	now      func() time.Time
	required []Sink
	optional []*optionalSink
}

type optionalSink struct {
	sink   Sink
	failed bool // a failure was logged; later ones are not, to keep the log readable
}

// NewBus returns a Bus for the run runID.
func NewBus(runID string, opts Options) *Bus {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Bus{runID: runID, seq: opts.Seq, secrets: opts.Secrets, log: opts.Log, now: now}
}

// Require adds a sink whose failure Emit returns.
func (b *Bus) Require(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.required = append(b.required, s)
}

// Attach adds a sink whose failure is only logged.
func (b *Bus) Attach(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.optional = append(b.optional, &optionalSink{sink: s})
}

// Secrets returns the set the Bus redacts with (nil if none).
func (b *Bus) Secrets() *redact.Set { return b.secrets }

// Emit numbers e, stamps it with the time and the run id, redacts it and gives it
// to every sink, required ones first. It returns the joined failures of the
// required sinks. The event is numbered even when a required sink fails, so that
// optional sinks still see a gapless stream; the journal, which failed, stops
// at the last event it recorded.
func (b *Bus) Emit(e Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	e.Time = b.now().UTC()
	e.RunID = b.runID
	e = b.redact(e)

	var errs []error
	for _, s := range b.required {
		if err := s.Emit(copyEvent(e)); err != nil {
			errs = append(errs, fmt.Errorf("event %d (%s): %w", e.Seq, e.Kind, err))
		}
	}
	for _, o := range b.optional {
		if err := o.sink.Emit(copyEvent(e)); err != nil && !o.failed {
			o.failed = true
			b.log.Warn().Err(err).Str("sink", fmt.Sprintf("%T", o.sink)).Int64("seq", e.Seq).
				Msg("event sink failed; its output is incomplete from here on")
		}
	}
	return errors.Join(errs...)
}

func (b *Bus) redact(e Event) Event { return e.Redacted(b.secrets) }

// Redacted returns e with the secrets of s replaced in every field that may
// carry an argument or an output, and a no_log step censored. What the engine
// reads back from the journal is kept as it is, so that a -e value equal to a
// word of it (-e env=stage -i stage, -e leader=etcd-1) cannot make a run
// impossible to resume or hide where its leftover commands run: the hosts and
// names that identify (host, kind, status, step ids), a run's record (its
// paths, pattern, tags, digests: only the recorded command line is redacted,
// after the flag parser hid its -e values), a command's process record, the
// engine's fields (Engine but FailedStep, and engineFields of Data), the keys of Data and of a result (the
// engine's and the modules' names), and the numbers of a run's own records.
func (e Event) Redacted(s *redact.Set) Event {
	e.Step = s.Redact(e.Step)
	e.Error = s.Redact(e.Error)
	// The typed engine fields are kept, but for the name of a failed step
	// and those in words (a host's state, why a step runs again), which may
	// quote a step's name or error.
	e.FailedStep = s.Redact(e.FailedStep)
	e.Engine = e.Engine.redactWords(s)
	switch e.Kind {
	case RunStart, RunResume:
		e.Data = redactFields(s, e.Data, func(k string) bool { return k != "args" }, true)
	case RunEnd:
		e.Data = redactFields(s, e.Data, func(k string) bool { return k == "exit_code" || k == "hosts" }, true)
	case StepProcess:
		e.Data = redactFields(s, e.Data, func(string) bool { return true }, false)
	default:
		e.Data = redactFields(s, e.Data, engineFields, false)
	}
	if e.NoLog {
		if e.Result != nil || isEnd(e.Kind) {
			e.Result = redact.Censored()
		}
		if e.Error != "" {
			e.Error = redact.CensoredError
		}
		// Only the engine's fields: whether a failure was ignored, where
		// the step ran. Without them a resume takes a no_log step that
		// failed with ignore_errors for a failure and rolls the host back.
		var kept map[string]any
		for k, v := range e.Data {
			if engineFields(k) {
				if kept == nil {
					kept = map[string]any{}
				}
				kept[k] = v
			}
		}
		e.Data = kept
		e.FailedStep = ""
		e.Engine = e.Engine.withoutWords()
		return e
	}
	e.Result = redactResult(s, e.Result)
	return e
}

func keepNone(string) bool { return false }

// redactResult redacts a step's result without its keys, which are the
// module's names, and those of each item of a loop's results (changed,
// failed, loop_index: what a resume reads to undo the items).
func redactResult(s *redact.Set, m map[string]any) map[string]any {
	items, isLoop := m["results"].([]any)
	out := redactFields(s, m, keepNone, false)
	if !isLoop {
		return out
	}
	list := make([]any, len(items))
	for i, it := range items {
		if im, ok := it.(map[string]any); ok {
			list[i] = redactFields(s, im, keepNone, false)
		} else {
			list[i] = s.RedactValue(it)
		}
	}
	out["results"] = list
	return out
}

// engineFields are the Data fields the engine writes from its own state and
// reads back on a resume (where a step ran, why a rollback began, which step
// and module, which process): never an argument or an output.
func engineFields(k string) bool {
	switch k {
	case "hosts", "batches", "id", "module", "ran_on", "on", "delegate_to", "reason", "failed_index",
		"ignored", "items", "loop_index", "block_rollback", "action", "pgid", "start", "boot", "become",
		"become_user", "mode", "on_abort", "exit_code":
		return true
	}
	return false
}

// redactFields returns a copy of m whose values are redacted, except those
// of the keys keep says to keep as they are; the keys themselves are kept.
// textOnly redacts only text (see redact.Set.RedactMapText).
func redactFields(s *redact.Set, m map[string]any, keep func(string) bool, textOnly bool) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch {
		case keep(k):
			out[k] = v
		case textOnly:
			out[k] = s.RedactMapText(map[string]any{k: v})[k]
		default:
			out[k] = s.RedactValue(v)
		}
	}
	return out
}

func isEnd(k Kind) bool { return k == StepEnd || k == RollbackStepEnd || k == StepRetry }

// copyEvent gives each sink its own maps, so that one sink keeping or changing
// an event cannot affect another.
func copyEvent(e Event) Event {
	var none *redact.Set
	e.Result = none.RedactMap(e.Result)
	e.Data = none.RedactMap(e.Data)
	e.Engine = e.Engine.clone()
	return e
}

// Recorder is a Sink that keeps every event, for tests. It is safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (r *Recorder) Emit(e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Events returns a copy of the events recorded so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
