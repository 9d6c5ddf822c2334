package modules

import (
	"context"
	"fmt"
	"sort"
)

// Facts are named values that expressions may read without a register, such as
// `etcd.leader` in `when: 'etcd.leader == host.name'`. A module package gathers
// them; the engine calls Gather, fresh, before it evaluates the expressions of a
// step that reads the name (again for each attempt of a step with until), so a
// guard sees the cluster as it is now, not as it was at the start.
type Facts struct {
	// Name is the name expressions use: "etcd".
	Name string
	// Doc says what the facts hold and which host vars they read, for `runbook doc`.
	Doc string
	// Sample is a zero value of the type Gather returns; expressions are
	// compiled against its type, so `etcd.leadr` is a load error.
	Sample any
	// Gather reads the facts for host h. It must not change anything.
	Gather func(ctx context.Context, h *Host) (any, error)
}

// RegisterFacts adds facts to the Default registry; it panics on an empty or
// duplicate name, or a nil Gather or Sample.
func RegisterFacts(f Facts) { Default.RegisterFacts(f) }

// RegisterFacts adds facts to r; see the package-level RegisterFacts.
func (r *Registry) RegisterFacts(f Facts) {
	if f.Name == "" || f.Gather == nil || f.Sample == nil {
		panic(fmt.Sprintf("modules: invalid facts registration %q", f.Name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.facts == nil {
		r.facts = map[string]Facts{}
	}
	if _, dup := r.facts[f.Name]; dup {
		panic("modules: duplicate facts " + f.Name)
	}
	r.facts[f.Name] = f
}

// LookupFacts returns the facts registered under name.
func (r *Registry) LookupFacts(name string) (Facts, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.facts[name]
	return f, ok
}

// AllFacts returns every registered facts, sorted by name.
func (r *Registry) AllFacts() []Facts {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Facts, 0, len(r.facts))
	for _, f := range r.facts {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FactSamples returns each facts name with its sample, for the loader's
// LoadOptions.Extra, so expressions that read facts compile with their types.
func (r *Registry) FactSamples() map[string]any {
	out := map[string]any{}
	for _, f := range r.AllFacts() {
		out[f.Name] = f.Sample
	}
	return out
}
