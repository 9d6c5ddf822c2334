// Package inventory loads Ansible-compatible inventories (YAML, INI, directories, group_vars/
// and host_vars/) and selects hosts from them with Ansible's host patterns and --limit.
package inventory

import (
	"sort"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/redact"
)

// Inventory is a loaded inventory: hosts in the order they were first seen, groups,
// and the merged variables of every host. It is not changed after Load, so it
// is safe for concurrent use.
type Inventory struct {
	hosts      []*Host
	hostByName map[string]*Host
	groups     map[string]*Group
	groupOrder []*Group // creation order, which is the order Ansible lists children of all
	files      []string
	sources    diag.Sources
	vaulted    map[string]any // decrypted value -> what output shows instead
	secrets    redact.Set     // values from encrypted sources: see MarkSecret
}

// Host is one inventory host. Vars holds its variables merged as Ansible merges
// them; treat it as read-only and use WithVars to overlay more (the connection
// settings behind Addr, Port... are parsed and validated once, when the Host is built).
type Host struct {
	Name string
	// Pos is where the host was first declared.
	Pos  diag.Pos
	Vars map[string]any
	// Groups lists every group the host belongs to, directly or through a child
	// group, including "all" (and "ungrouped" for a host in no other group), sorted by name.
	Groups []string

	varPos map[string]diag.Pos
	conn   connSettings
	index  int // position in inventory order

	// Loading state, dropped once the inventory is built.
	direct   []*Group
	invVars  varMap
	fileVars varMap
}

// Group is one inventory group, with its direct members; Select(name) gives all of
// its hosts, including those of its child groups.
type Group struct {
	Name string
	Pos  diag.Pos // first declaration; zero for the implicit all and ungrouped
	// Hosts are the group's direct members, in the order they were added.
	Hosts []string
	// Children are the direct child groups, in the order they were added.
	Children []string
	Parents  []string
	// Vars are the group's own variables: those of the inventory source, then
	// those of its group_vars/ files on top.
	Vars map[string]any
	// Priority is ansible_group_priority (1 unless set): among groups of the same
	// depth, the higher priority's variables win.
	Priority int
	// Depth is the length of the longest path from all (all is 0).
	Depth int

	hosts    []*Host
	children []*Group
	parents  []*Group
	members  []*Host // all hosts, through children too, in inventory order
	invVars  varMap
	fileVars varMap
}

// varMap is a set of variables with where each was set, so that a bad value can
// be reported at its own line and column.
type varMap struct {
	vals map[string]any
	pos  map[string]diag.Pos
}

func (m *varMap) set(name string, v any, p diag.Pos) {
	if m.vals == nil {
		m.vals = map[string]any{}
		m.pos = map[string]diag.Pos{}
	}
	m.vals[name] = v
	m.pos[name] = p
}

// overlay sets every variable of src on m; Ansible's default hash_behaviour
// (replace) means a map value replaces the old one whole.
func (m *varMap) overlay(src varMap) {
	for k, v := range src.vals {
		m.set(k, v, src.pos[k])
	}
}

// Hosts returns every host in inventory order (the order in which they were first seen).
func (inv *Inventory) Hosts() []*Host { return append([]*Host(nil), inv.hosts...) }

// Host returns the host called name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	h, ok := inv.hostByName[name]
	return h, ok
}

// Group returns the group called name; "all" and "ungrouped" always exist.
func (inv *Inventory) Group(name string) (*Group, bool) {
	g, ok := inv.groups[name]
	return g, ok
}

// Groups returns the names of all groups, sorted.
func (inv *Inventory) Groups() []string {
	names := make([]string, 0, len(inv.groups))
	for n := range inv.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Files returns the files read (inventory files, then group_vars/ and host_vars/
// files), in the order read, for digests: resume refuses to continue if one changed.
func (inv *Inventory) Files() []string { return append([]string(nil), inv.files...) }

// Sources returns the content of every file read, keyed as in diagnostics, so
// that errors can be printed with their source line.
func (inv *Inventory) Sources() diag.Sources { return inv.sources }

// AllVarNames returns every variable name set on some host, each with a sample
// value (from the first host in inventory order that has it), so that the
// runbook loader knows which names exist and what type they have.
func (inv *Inventory) AllVarNames() map[string]any {
	out := map[string]any{}
	for _, h := range inv.hosts {
		for k, v := range h.MagicVars() {
			if _, seen := out[k]; !seen {
				out[k] = v
			}
		}
		for k, v := range h.Vars {
			if _, seen := out[k]; !seen {
				out[k] = v
			}
		}
	}
	return out
}

// Var returns the host's variable name.
func (h *Host) Var(name string) (any, bool) {
	v, ok := h.Vars[name]
	return v, ok
}

// VarPos returns where the winning value of the variable was set, to point
// diagnostics about it at the inventory rather than at the runbook.
func (h *Host) VarPos(name string) (diag.Pos, bool) {
	p, ok := h.varPos[name]
	return p, ok
}

// InGroup reports whether the host is in the group, directly or through a child group.
func (h *Host) InGroup(name string) bool {
	i := sort.SearchStrings(h.Groups, name)
	return i < len(h.Groups) && h.Groups[i] == name
}
