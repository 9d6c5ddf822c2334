// Package plan turns a loaded runbook, an inventory and the command line into a
// Plan: hosts in order, batches, phases and steps. It never connects to a host.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// Options are the command-line inputs that shape a plan.
type Options struct {
	Limit     string         // --limit pattern
	ExtraVars map[string]any // -e, highest precedence
	// Seed orders hosts for `order: shuffle`; zero picks one, which the plan
	// records so a resumed run keeps the same order.
	Seed int64
	// Registry supplies what each module's automatic undo does; nil means modules.Default.
	Registry *modules.Registry
	// Run is what `run` holds while variables are rendered (run.id in a
	// backup path); `plan` leaves it zero.
	Run eval.Run
}

// Plan is the single description of what a run will do. `plan` prints it,
// `exec` runs it, and the journal records its digests so that `resume` can
// refuse to continue a run whose inputs changed.
type Plan struct {
	Runbook         string   `json:"runbook"`
	File            string   `json:"file"`
	Description     string   `json:"description,omitempty"`
	RunbookDigest   string   `json:"runbook_digest"`
	InventoryDigest string   `json:"inventory_digest"`
	Pattern         string   `json:"pattern"`
	Limit           string   `json:"limit,omitempty"`
	Order           string   `json:"order"`
	Seed            int64    `json:"seed,omitempty"`
	Serial          []string `json:"serial"`
	MaxFail         int      `json:"max_fail"`
	OnAbort         string   `json:"on_abort"`
	HostNames       []string `json:"hosts"`
	// Batches lists the host names of each batch, in run order.
	Batches [][]string `json:"batches"`
	Phases  []Phase    `json:"phases"`

	// OrderAtStart is set when the order key reads module facts (etcd.leader):
	// then the plan cannot order hosts without connecting, and `exec` orders
	// them when the run starts, before it asks for confirmation, and runs
	// the plan OrderBy returns. This plan's Hosts and Batches stay in
	// inventory order.
	OrderAtStart bool `json:"order_at_start,omitempty"`
	// OrderFacts are the facts the order key reads.
	OrderFacts []string `json:"order_facts,omitempty"`

	Hosts []*Host       `json:"-"`
	Spec  *spec.Runbook `json:"-"` // the runbook as loaded, that the plan was built from
	// Window is the runbook's change window; nil when it has none.
	Window    *eval.Window         `json:"-"`
	Inventory *inventory.Inventory `json:"-"`
	ExtraVars map[string]any       `json:"-"`

	registry *modules.Registry
	serial   arg.Serial
}

// Phase is one part of a run, in the order phases run.
type Phase struct {
	Name string `json:"name"` // preflight, steps, rollback, between_batches, post
	Runs string `json:"runs"` // once | per host | per failed host | after each batch
	// Mode is set on the rollback phase: explicit, automatic or none.
	Mode  string `json:"mode,omitempty"`
	Steps []Step `json:"steps"`
	// Compiled are the phase's steps as the runner runs them: compiled
	// expressions and templates, the module with its literal arguments.
	// Steps shows them.
	Compiled []*CompiledStep `json:"-"`
}

// CompiledStep is a step ready to run, as the loader compiled it.
type CompiledStep = spec.Step

// Controller is the name of the machine runbook runs on: the host of the
// once phases and the delegate_to value that means it.
const Controller = spec.Controller

// Phase names (Phase.Name), in the order phases run.
const (
	PhasePreflight      = string(spec.PhasePreflight)
	PhaseSteps          = string(spec.PhaseSteps)
	PhaseRollback       = string(spec.PhaseRollback)
	PhaseBetweenBatches = string(spec.PhaseBetweenBatches)
	PhasePost           = string(spec.PhasePost)
)

// OnAbortRollbackCompleted is the Plan.OnAbort that rolls back the hosts
// that completed when a run aborts.
const OnAbortRollbackCompleted = string(spec.OnAbortRollbackCompleted)

// Rollback modes (Phase.Mode of the rollback phase).
const (
	RollbackExplicit  = "explicit"
	RollbackAutomatic = "automatic"
	RollbackNone      = "none"
)

// Phase returns the phase of that name (PhaseSteps...), or a phase with
// no steps when the runbook has none.
func (p *Plan) Phase(name string) Phase {
	for _, ph := range p.Phases {
		if ph.Name == name {
			return ph
		}
	}
	return Phase{Name: name}
}

// ControllerVars are the vars of the once phases (preflight, gates, post):
// the run's first host's, as Ansible's run_once does, so group vars such as
// where the new binaries are reach them, rendered; the runbook's and -e when
// there is no host.
func (p *Plan) ControllerVars() map[string]any {
	if len(p.Hosts) > 0 {
		return p.Hosts[0].Vars
	}
	var vars map[string]any
	if p.Spec != nil {
		vars = p.Spec.Vars
	}
	return MergeVars(vars, p.ExtraVars)
}

// Step is a step as the plan shows it.
type Step struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Module string `json:"module,omitempty"`
	Line   int    `json:"line"`
	// File is the imported file the step was read from; "" for the runbook.
	File string `json:"file,omitempty"`
	// Import is the file an import step imported; its steps are in Block.
	Import string `json:"import,omitempty"`
	// Notify names the handlers the step notifies; Handler marks a handler,
	// run after the host's steps when one of NotifiedBy changed something.
	Notify     []string `json:"notify,omitempty"`
	Handler    bool     `json:"handler,omitempty"`
	NotifiedBy []string `json:"notified_by,omitempty"`
	// Params are the values the import binds: JSON, or a template as written.
	Params map[string]string `json:"params,omitempty"`
	// Loop is the step's loop as written: it runs once per item.
	Loop         string   `json:"loop,omitempty"`
	When         []string `json:"when,omitempty"`
	Retries      int      `json:"retries,omitempty"`
	Delay        string   `json:"delay,omitempty"`
	Until        string   `json:"until,omitempty"`
	Timeout      string   `json:"timeout,omitempty"`
	Register     string   `json:"register,omitempty"`
	FailedWhen   string   `json:"failed_when,omitempty"`
	ChangedWhen  string   `json:"changed_when,omitempty"`
	IgnoreErrors bool     `json:"ignore_errors,omitempty"`
	RunOnce      bool     `json:"run_once,omitempty"`
	// Ahead: the hosts of each batch but the first run the step while the
	// batch before them is at its last step (ahead: true), or from the
	// step AheadFrom names on (ahead: { from: STEP }).
	Ahead      bool     `json:"ahead,omitempty"`
	AheadFrom  string   `json:"ahead_from,omitempty"`
	DelegateTo string   `json:"delegate_to,omitempty"`
	Become     bool     `json:"become,omitempty"`
	NoLog      bool     `json:"no_log,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	// Undo says what the automatic rollback does for this step; "irreversible"
	// for a module without undo.
	Undo string `json:"undo,omitempty"`
	// RunTime lists the fields that can only be checked when the step runs,
	// each with the run-time names it reads ("url reads etcd"); everything
	// else is checked for every host before anything is touched.
	RunTime  []string `json:"checked_at_run_time,omitempty"`
	Block    []Step   `json:"block,omitempty"`
	Rollback *Phase   `json:"rollback,omitempty"`
}

// Build makes the plan. Problems with the inputs (a pattern that matches no
// host, an order key that does not evaluate) are diagnostics.
func Build(rb *spec.Runbook, inv *inventory.Inventory, opts Options) (*Plan, diag.Diags) {
	var ds diag.Diags
	reg := opts.Registry
	if reg == nil {
		reg = modules.Default
	}
	p := &Plan{
		Runbook:     rb.Name,
		File:        rb.File,
		Description: rb.Description,
		Pattern:     rb.Hosts,
		Limit:       opts.Limit,
		OnAbort:     string(rb.OnAbort),
		Spec:        rb,
		Window:      rb.Window,
		registry:    reg,
		Inventory:   inv,
		ExtraVars:   opts.ExtraVars,
	}
	if p.OnAbort == "" {
		p.OnAbort = string(spec.OnAbortStop)
	}
	p.RunbookDigest = runbookDigest(rb)
	p.InventoryDigest = inventoryDigest(inv)

	selected, err := inv.Select(rb.Hosts)
	if err != nil {
		ds.Add(rb.HostsPos, err.Error(), "")
		return nil, ds
	}
	if opts.Limit != "" {
		selected, err = inv.Limit(selected, opts.Limit)
		if err != nil {
			ds.Add(diag.Pos{File: "--limit"}, err.Error(), "")
			return nil, ds
		}
		if len(selected) == 0 {
			ds.Add(diag.Pos{File: "--limit"}, fmt.Sprintf("--limit %q leaves no host of %q", opts.Limit, rb.Hosts), "")
			return nil, ds
		}
	}
	vr := newVarRenderer(EvalInventory(inv), opts.Run)
	for _, h := range selected {
		if len(opts.ExtraVars) > 0 {
			// -e wins over the inventory for connection settings too (ansible_user=...).
			over, err := h.WithVars(opts.ExtraVars)
			if err != nil {
				ds.Add(diag.Pos{File: "-e"}, err.Error(), "")
				continue
			}
			h = over
		}
		ph := hostOf(h, MergeVars(h.MagicVars(), rb.Vars, h.Vars, opts.ExtraVars))
		var vds diag.Diags
		ph.Vars, vds = vr.render(ph.Vars, ph.Eval(), varPos(rb, h, opts.ExtraVars))
		ds.Append(vds)
		p.Hosts = append(p.Hosts, ph)
	}

	if ds.HasErrors() {
		return nil, ds
	}
	p.Order = string(rb.Order.Kind)
	if p.Order == "" {
		p.Order = string(spec.OrderInventory)
	}
	if err := p.order(rb, opts.Seed); err != nil {
		ds.Add(rb.Order.Pos, err.Error(), "")
		return nil, ds
	}
	p.serial = rb.Serial
	p.batch()
	if len(rb.Serial) == 0 {
		p.Serial = []string{"100%"}
	}
	for _, q := range rb.Serial {
		p.Serial = append(p.Serial, q.String())
	}
	p.MaxFail = rb.MaxFail.Of(len(p.Hosts))

	p.Phases = phases(rb, reg)
	return p, ds
}

// batch splits the hosts, in their order, into batches per serial.
func (p *Plan) batch() {
	p.HostNames, p.Batches = nil, nil
	for _, h := range p.Hosts {
		p.HostNames = append(p.HostNames, h.Name)
	}
	i := 0
	for _, n := range p.serial.Batches(len(p.Hosts)) {
		p.Batches = append(p.Batches, append([]string(nil), p.HostNames[i:i+n]...))
		i += n
	}
}

// OrderBy returns the plan with its hosts ordered by the order key, evaluated
// per host with the facts that gather returns for it (name → value), and
// split into batches again. exec calls it when the run starts for a plan
// with OrderAtStart, and runs the plan it returns; p itself is not changed.
func (p *Plan) OrderBy(gather func(h *Host) (map[string]any, error)) (*Plan, error) {
	if !p.OrderAtStart {
		return p, nil
	}
	keys := make([]any, len(p.Hosts))
	inv := EvalInventory(p.Inventory)
	for i, h := range p.Hosts {
		facts, err := gather(h)
		if err != nil {
			return nil, fmt.Errorf("order: facts for host %s: %w", h.Name, err)
		}
		v, err := p.Spec.Order.Expr.Eval(&eval.Scope{Vars: h.Vars, Host: h.Eval(), Inventory: inv, Extra: facts})
		if err != nil {
			return nil, fmt.Errorf("order key for host %s: %w", h.Name, err)
		}
		keys[i] = v
	}
	q := p.withHosts(p.Hosts)
	if err := q.sortBy(keys); err != nil {
		return nil, err
	}
	q.batch()
	return q, nil
}

// Reorder returns the plan with its hosts in the given order, as a journal
// recorded it, so a resumed run keeps the order its first part decided; p
// itself is not changed.
func (p *Plan) Reorder(names []string) (*Plan, error) {
	if len(names) != len(p.Hosts) {
		return nil, fmt.Errorf("the journal names %d hosts, the plan has %d", len(names), len(p.Hosts))
	}
	by := map[string]*Host{}
	for _, h := range p.Hosts {
		by[h.Name] = h
	}
	out := make([]*Host, 0, len(names))
	for _, n := range names {
		h, ok := by[n]
		if !ok {
			return nil, fmt.Errorf("the journal names host %s, which the plan does not have", n)
		}
		out = append(out, h)
		delete(by, n)
	}
	q := p.withHosts(out)
	q.batch()
	return q, nil
}

// withHosts is a copy of the plan, its order decided, with hosts in their
// order; its batches are made by batch.
func (p *Plan) withHosts(hosts []*Host) *Plan {
	q := *p
	q.Hosts = slices.Clone(hosts)
	q.OrderAtStart = false
	return &q
}

// MergeVars merges variables by precedence, later layers winning: runbook vars,
// inventory vars, extra vars. Maps are replaced whole, as Ansible does by default.
func MergeVars(layers ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		for k, v := range l {
			out[k] = v
		}
	}
	return out
}

// varPos says where the winning value of a variable was set: -e, the
// inventory, or the runbook.
func varPos(rb *spec.Runbook, h *inventory.Host, extra map[string]any) func(string) diag.Pos {
	return func(name string) diag.Pos {
		if _, ok := extra[name]; ok {
			return diag.Pos{File: "-e " + name}
		}
		if p, ok := h.VarPos(name); ok {
			return p
		}
		if p, ok := rb.VarPos[name]; ok {
			return p
		}
		return diag.Pos{File: rb.File}
	}
}

func (p *Plan) order(rb *spec.Runbook, seed int64) error {
	switch rb.Order.Kind {
	case "", spec.OrderInventory:
	case spec.OrderReverse:
		for i, j := 0, len(p.Hosts)-1; i < j; i, j = i+1, j-1 {
			p.Hosts[i], p.Hosts[j] = p.Hosts[j], p.Hosts[i]
		}
	case spec.OrderShuffle:
		if seed == 0 {
			seed = rand.Int64N(1<<53) + 1
		}
		p.Seed = seed
		r := rand.New(rand.NewPCG(uint64(seed), uint64(seed)>>1|1))
		r.Shuffle(len(p.Hosts), func(i, j int) { p.Hosts[i], p.Hosts[j] = p.Hosts[j], p.Hosts[i] })
	case spec.OrderExpr:
		p.Order = "expr: " + rb.Order.Expr.Src
		for _, n := range rb.Order.Expr.Names() {
			if _, ok := p.registry.LookupFacts(n); ok {
				p.OrderFacts = append(p.OrderFacts, n)
			}
		}
		if len(p.OrderFacts) > 0 {
			p.OrderAtStart = true
			p.Order += " (decided when the run starts: it reads " + strings.Join(p.OrderFacts, ", ") + ")"
			return nil
		}
		keys := make([]any, len(p.Hosts))
		inv := EvalInventory(p.Inventory)
		for i, h := range p.Hosts {
			v, err := rb.Order.Expr.Eval(&eval.Scope{Vars: h.Vars, Host: h.Eval(), Inventory: inv})
			if err != nil {
				return fmt.Errorf("order key for host %s: %v", h.Name, err)
			}
			keys[i] = v
		}
		return p.sortBy(keys)
	}
	return nil
}

// sortBy orders the hosts by their keys, keeping inventory order among equal keys.
func (p *Plan) sortBy(keys []any) error {
	idx := make([]int, len(p.Hosts))
	for i := range idx {
		idx[i] = i
	}
	var cmpErr error
	sort.SliceStable(idx, func(a, b int) bool {
		less, err := lessKey(keys[idx[a]], keys[idx[b]])
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		return less
	})
	if cmpErr != nil {
		return fmt.Errorf("order key: %v", cmpErr)
	}
	sorted := make([]*Host, len(p.Hosts))
	for i, j := range idx {
		sorted[i] = p.Hosts[j]
	}
	p.Hosts = sorted
	return nil
}

// lessKey compares two order keys: numbers with numbers, strings with strings,
// bools false first. Mixed kinds are an error rather than a silent guess.
func lessKey(a, b any) (bool, error) {
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa < fb, nil
		}
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return sa < sb, nil
		}
	}
	if ba, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			return !ba && bb, nil
		}
	}
	return false, fmt.Errorf("cannot compare %T (%v) with %T (%v); the key must be a number, a string or a bool for every host", a, a, b, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// runbookDigest covers the runbook and, when it imports files, each of them
// by content and name as imported, in reading order: a resume must refuse an
// imported file that changed as it refuses a changed runbook.
func runbookDigest(rb *spec.Runbook) string {
	if len(rb.Imports) == 0 {
		return digest(rb.Source)
	}
	h := sha256.New()
	h.Write(rb.Source)
	for _, s := range rb.Imports {
		// Named from the runbook's folder, so that another working folder
		// gives the same digest.
		name := s.File
		if rel, err := filepath.Rel(filepath.Dir(rb.File), s.File); err == nil {
			name = rel
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", filepath.ToSlash(name), len(s.Source))
		h.Write(s.Source)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// inventoryDigest covers every file the inventory was read from, by content and
// base name in reading order, so the same inventory gives the same digest from
// another working folder.
func inventoryDigest(inv *inventory.Inventory) string {
	h := sha256.New()
	src := inv.Sources()
	for _, f := range inv.Files() {
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(src[f]))
		h.Write(src[f])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
