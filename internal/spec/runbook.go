// Package spec loads a runbook file into a checked syntax tree with positions:
// strict YAML decoding (modules/arg's Decoder), typed values, each step's
// module from the modules registry with its arguments decoded and validated,
// and compiled expressions.
package spec

import (
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// Runbook is a loaded, checked runbook file. Every value a later stage may
// find wrong keeps its position.
type Runbook struct {
	File   string
	Source []byte
	Pos    diag.Pos

	Name        string
	NamePos     diag.Pos
	Description string
	Hosts       string // inventory pattern
	HostsPos    diag.Pos
	// Vars are the runbook's defaults, as plain values; VarPos says where each is set.
	Vars   map[string]any
	VarPos map[string]diag.Pos
	// Serial is the list of batch sizes; empty means all hosts in one batch.
	Serial    arg.Serial
	SerialPos diag.Pos
	Order     Order
	// MaxFail is how many failed hosts are tolerated before the run aborts
	// (zero: none). It aborts when failures exceed MaxFail.Of(hosts).
	MaxFail    arg.Quota
	OnAbort    OnAbort
	OnAbortPos diag.Pos
	// Lock is `lock:`; nil means host locks in the state folder's file store.
	Lock *Lock
	// Notify is `notify:`: the receivers of the run's notifications.
	Notify []*Notify
	// Window is `window:`, the change window: outside it the run does not
	// start, nor does a new batch. Nil: any time.
	Window *eval.Window

	Preflight      []*Step // once, before any host is touched
	Steps          []*Step // on every host, batch after batch
	Rollback       Rollback
	BetweenBatches []*Step // gates after each batch
	Post           []*Step // once, after the last batch

	// Imports are the files imported, in reading order.
	Imports []Source
}

// Sources returns the runbook's source for diagnostic printers.
func (rb *Runbook) Sources() diag.Sources {
	src := diag.Sources{rb.File: rb.Source}
	for _, s := range rb.Imports {
		src[s.File] = s.Source
	}
	return src
}

// AllSteps returns every step in document order (preflight, steps, rollback,
// between_batches, post), a block before the steps inside it and its rollback
// after them: the order in which registered names become known.
func (rb *Runbook) AllSteps() []*Step {
	var out []*Step
	var walk func(ss []*Step)
	walk = func(ss []*Step) {
		for _, s := range ss {
			out = append(out, s)
			walk(s.Block)
			if s.Rollback != nil {
				walk(s.Rollback.Steps)
			}
		}
	}
	walk(rb.Preflight)
	walk(rb.Steps)
	walk(rb.Rollback.Steps)
	walk(rb.BetweenBatches)
	walk(rb.Post)
	return out
}

// Phase names the part of a runbook a step belongs to.
type Phase string

const (
	PhasePreflight      Phase = "preflight"
	PhaseSteps          Phase = "steps"
	PhaseRollback       Phase = "rollback"
	PhaseBetweenBatches Phase = "between_batches"
	PhasePost           Phase = "post"
)

// OrderKind is how hosts are ordered before they are split into batches.
type OrderKind string

const (
	OrderInventory OrderKind = "inventory" // as the inventory lists them (the default)
	OrderReverse   OrderKind = "reverse"
	OrderShuffle   OrderKind = "shuffle"
	OrderExpr      OrderKind = "expr" // sorted by Order.Expr evaluated per host
)

// Order is the `order:` of a runbook.
type Order struct {
	Kind OrderKind
	Expr *eval.Program // the sort key, when Kind is OrderExpr
	Pos  diag.Pos
}

// OnAbort says what happens to hosts that already finished when a run aborts.
type OnAbort string

const (
	OnAbortStop              OnAbort = "stop" // leave them as they are (the default)
	OnAbortRollbackCompleted OnAbort = "rollback_completed"
)

// Rollback is a `rollback:` value: explicit steps, `none`, or (neither)
// the automatic undo of the completed steps, newest first.
type Rollback struct {
	Pos   diag.Pos
	None  bool    // rollback: none
	Steps []*Step // explicit rollback steps
}

// Auto reports whether the automatic undo applies.
func (r Rollback) Auto() bool { return !r.None && len(r.Steps) == 0 }

// Step is one step of a runbook: a module with its arguments, or a block of
// steps, plus the common fields.
type Step struct {
	// ID locates the step in the file: "steps[2]", "steps[1].block[0]",
	// "rollback[0]". It does not change when names do.
	ID string
	// Phase is the top-level section that holds the step; the steps of a
	// block and of a block's rollback share their block's phase.
	Phase Phase
	Pos   diag.Pos
	// Name is the given name, or the module and its main argument ("stop etcd").
	Name         string
	NamePos      diag.Pos
	NameTemplate *eval.Template // set when the name holds {{ }}

	// Module is the module key; empty for a block.
	Module    string
	ModulePos diag.Pos
	// Args is the raw argument node, rendered and decoded per host (NewArgs).
	Args *yaml.Node
	// Literal is the module with its decoded and validated arguments when no
	// argument is templated; nil otherwise.
	Literal modules.Module
	// Templates holds the compiled templates of the arguments, by the position
	// of their scalar (with File set).
	Templates map[diag.Pos]*eval.Template

	When        []*eval.Program // all must hold; empty means always
	Retries     int
	Delay       arg.Duration
	Until       *eval.Program // sees result
	Timeout     arg.Duration  // per attempt; zero means none
	Register    string
	RegisterPos diag.Pos
	// SetsVars are the variables the step sets for the host's later steps
	// (set_fact: a modules.VarSetter), known from its literal arguments.
	SetsVars    []string
	FailedWhen  *eval.Program // sees result
	ChangedWhen *eval.Program // sees result

	IgnoreErrors bool
	RunOnce      bool
	// DelegateTo names the host to run on instead, or "controller" for this
	// machine; DelegateTemplate is set when it holds {{ }}.
	DelegateTo       string
	DelegateTemplate *eval.Template
	DelegatePos      diag.Pos
	Become           bool
	BecomeUser       string
	NoLog            bool
	Tags             []string
	// Window is the step's `window:`: outside it the step does not start.
	Window *eval.Window
	// Ahead: the step may run on the hosts of the next batch while the
	// current one is at its last step, or from the step AheadFrom names
	// (see ahead.go).
	Ahead        bool
	AheadPos     diag.Pos
	AheadFrom    string
	AheadFromPos diag.Pos
	// Loop runs the step once per item (nil: once); `item` and `loop_index`
	// are in scope in its other fields.
	Loop *Loop

	// Block holds the steps of a block; Rollback, the block's own rollback.
	Block    []*Step
	Rollback *Rollback
	// Import is set on the block an import: became.
	Import *Import
	// Notify names the handlers the step notifies when it changes something.
	Notify []string
	// Handler is set on the step a handler became (see handlers.go).
	Handler *Handler

	params []map[string]eval.Param    // of the imports around the step, outermost first
	seq    int                        // document order, for registered names
	file   string                     // for NewArgs
	src    []byte                     // for NewArgs
	exprs  map[diag.Pos]*eval.Program // compiled Expr arguments, by Expr.Pos
	env    *eval.Env                  // for Expr arguments only a rendered value can reach
}

// IsBlock reports whether the step is a block.
func (s *Step) IsBlock() bool { return s.Module == "" }

// Controller is the delegate_to value that means this machine.
const Controller = "controller"
