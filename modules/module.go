// Package modules defines what a step module is and the registry that holds them.
// Each module lives in its own package under modules/ and registers itself in init().
//
// # Arguments
//
// A module's arguments are the exported fields of its struct. Each has a `yaml`
// tag (its key), a `doc` tag (one line for `runbook doc`), `runbook:"required"`
// when it must be given, and a `default` tag when an unset argument means
// something. A section of arguments (check's `http:`) is a pointer to a struct:
// nil when the key is absent, its fields shown as "http.url". A struct field
// tagged `yaml:",inline"` adds its fields to its parent's (the service modules
// share their Definition with the host var services that way).
//
// # Defaults
//
// The decoded value keeps exactly what the step wrote, so Validate can tell a
// given argument from an unset one, the journal records the user's arguments,
// and a per-host definition (the `services` host var) can be merged under the
// inline ones. Defaults are applied to a copy, where they are used: each module
// has a Defaults method that returns its arguments as Run sees them, built with
// WithDefaults from the `default` tags themselves, so the documented default is
// the applied one. Register parses every literal default and panics on a bad
// one. Two kinds of default are documentation that the module's own code
// applies: one with a part in angle brackets (`<dest>.runbook-prev`), which
// depends on other arguments or on the host, and one on an expression (check's
// `expect`), because expressions are compiled by the loader.
package modules

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/eval"
)

// Info describes a module. New returns a pointer to a zero value whose exported
// fields are the module's arguments, decoded strictly from the step's YAML by
// their `yaml` tags; `runbook:"required"` marks a required argument and
// `doc:"..."` documents it for `runbook doc`.
type Info struct {
	Name string // the YAML key: "swap", "assert-metric"
	New  func() Module
	Doc  Doc
}

// Doc is a module's documentation, shown by `runbook doc MODULE`. Example is a
// list of steps in runbook YAML; a test loads it, so it cannot rot.
type Doc struct {
	Summary     string // one line, lower case, no final period
	Description string // paragraphs
	Example     string // YAML: a list of steps using the module
	// Undo says what the automatic rollback does; empty means the module has no undo.
	Undo string
}

// Module is a step's instance for one host; its fields are the decoded arguments.
type Module interface {
	// Run does the work on h. It returns a Result whose Data is JSON-safe: it is
	// seen by expressions (`result`, registered names), journaled, and handed to
	// Undo after a resume.
	Run(ctx context.Context, h *Host) (Result, error)
}

// Validator checks rules across fields. It runs at load when a step's arguments are
// literal, and per host after templates are rendered when they are not. A returned
// *FieldError points the diagnostic at that argument.
type Validator interface{ Validate() error }

// ExprNamer is implemented by modules whose arg.Expr arguments see more names
// than a step's usual scope (metric look-ups in assert-metric). The loader
// compiles the expression of argument field with these names beside result.
type ExprNamer interface {
	ExprNames(field string) map[string]any
}

// Checker reports what Run would change without changing anything (--check).
// A module that is not a Checker is reported as "would run; effect unknown".
type Checker interface {
	Check(ctx context.Context, h *Host) (Result, error)
}

// Undoer reverses a completed Run, given the Result that Run returned (possibly
// read back from the journal after a resume). A module that is not an Undoer is
// irreversible, which the plan shows.
type Undoer interface {
	Undo(ctx context.Context, h *Host, done Result) error
}

// VarSetter is implemented by a module whose step sets variables for the
// host's later steps (set_fact): SetsVars names them, from the literal
// arguments, so that the loader compiles the later steps with them; Run
// returns their values in its Result's Data under FactsKey, which the
// runner merges into the host's vars (and a resume reads back from the
// journal).
type VarSetter interface {
	SetsVars() []string
}

// FactsKey is the key of a VarSetter's Result.Data holding the variables it
// sets, as Ansible's set_fact returns them.
const FactsKey = "ansible_facts"

// FieldError is a Validate error about one argument, named by its YAML key; an
// argument inside a section is named by its path ("http.url"). An error about the
// arguments as a whole (none of the required alternatives given) is a plain error.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Host is what a module sees of the host it runs on.
type Host struct {
	Name string
	Addr string
	Vars map[string]any
	Conn conn.Conn
	Log  zerolog.Logger
	// Become and BecomeUser come from the step (or the inventory) and are to be
	// set on every conn.Cmd the module runs.
	Become     bool
	BecomeUser string
	// StateDir is a folder on the controller that belongs to this run, for files
	// a module must keep (backups of swapped files are kept on the host instead).
	StateDir string
	// RunbookDir is the folder of the runbook file: relative controller-side
	// paths (swap's src) are read from there.
	RunbookDir string
	// Yes is --yes: confirmation gates (pause) pass without asking.
	Yes bool
	// Diff asks a module that changes files for the unified diff of what it
	// changes, in its result's "diff" (--diff, and every --check run).
	Diff bool
	// Confirm asks the operator a yes/no question on the terminal. Nil when
	// there is no terminal: a gate that needs an answer then refuses.
	Confirm func(ctx context.Context, prompt string) (bool, error)
	// Approve waits until other people approve or reject (runbook approve,
	// runbook reject) what req asks; --yes never answers it. It returns an
	// error wrapping ErrRejected on a rejection or a timeout, and
	// ErrStopWaiting when the run stops meanwhile. Nil when the run has no
	// approval store: a step that needs approvals then refuses.
	Approve Approve
	// Controller is a connection to the machine runbook runs on, for modules
	// that read controller-side files or probe from there.
	Controller conn.Conn
	// Progress, when set, reports what a long step has seen so far (an
	// analysis' measurements) as an event, to the journal and the live view.
	// data must be JSON-safe. Nil where nothing listens.
	Progress func(data map[string]any)
	// Scope is what the step's expressions see (vars, host, run, registered
	// results). A module that evaluates an expression of its own (check's
	// expect) copies it and sets Result, so `before.json.pid` works there too.
	Scope *eval.Scope
}

// Result is the outcome of a module's Run.
type Result struct {
	Changed bool
	Data    map[string]any
}

// Registry maps module names to their Info. The zero value is ready to use.
type Registry struct {
	mu    sync.RWMutex
	byID  map[string]Info
	facts map[string]Facts
}

// Default is filled by each module's init(); modules/builtin imports them all.
var Default = &Registry{}

// Register adds info. It panics on an empty or duplicate name, a nil New, or an
// argument struct whose default tags do not parse, because those are programming
// errors found by any test that imports the module.
func Register(info Info) { Default.Register(info) }

// Register adds info to r; see the package-level Register.
func (r *Registry) Register(info Info) {
	if info.Name == "" || info.New == nil {
		panic(fmt.Sprintf("modules: invalid registration %+v", info))
	}
	if err := checkArgs(info.New()); err != nil {
		panic(fmt.Sprintf("modules: module %s: %v", info.Name, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]Info{}
	}
	if _, dup := r.byID[info.Name]; dup {
		panic("modules: duplicate module " + info.Name)
	}
	r.byID[info.Name] = info
}

// Lookup returns the module registered under name.
func (r *Registry) Lookup(name string) (Info, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	info, ok := r.byID[name]
	return info, ok
}

// All returns every module sorted by name, for `runbook modules`.
func (r *Registry) All() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, 0, len(r.byID))
	for _, info := range r.byID {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the sorted module names (for suggestions).
func (r *Registry) Names() []string {
	all := r.All()
	names := make([]string, len(all))
	for i, info := range all {
		names[i] = info.Name
	}
	return names
}

// NewArgs returns a fresh module value for name, zero but for its type: the
// loader decodes the step's arguments into it and validates them.
func (r *Registry) NewArgs(name string) (Module, bool) {
	info, ok := r.Lookup(name)
	if !ok {
		return nil, false
	}
	return info.New(), true
}
