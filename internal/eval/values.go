package eval

// Values are the names the scope's expressions see, as plain data: vars,
// registered results, facts, host (a map: name, addr, groups, vars), run,
// result, item and loop_index; not the functions. It is what a template
// engine other than expr renders with (the template module's Jinja2
// files), so that a file sees what a {{ }} in the runbook sees.
func (s *Scope) Values() map[string]any {
	if s == nil {
		s = &Scope{}
	}
	m := make(map[string]any, len(s.Vars)+len(s.Registered)+len(s.Extra)+8)
	for k, v := range s.Vars {
		m[k] = v
	}
	for k, v := range s.Registered {
		m[k] = v
	}
	for k, v := range s.Extra {
		m[k] = v
	}
	groups := make([]any, len(s.Host.Groups))
	for i, g := range s.Host.Groups {
		groups[i] = g
	}
	m["host"] = map[string]any{"name": s.Host.Name, "addr": s.Host.Addr, "groups": groups, "vars": s.Host.Vars}
	m["run"] = map[string]any{"id": s.Run.ID, "batch": s.Run.Batch, "started": s.Run.Started, "resumed": s.Run.Resumed}
	if s.Result != nil {
		m["result"] = s.Result
	}
	if s.Loop != nil {
		m["item"] = s.Loop.Item
		m["loop_index"] = s.Loop.Index
	}
	return m
}

// GroupNamer is an Inventory that can list its groups.
type GroupNamer interface{ GroupNames() []string }

// AnsibleInventory is what an Ansible template reads of the inventory:
// groups (each group's host names, in inventory order) and hostvars (each
// host's vars), or nils when the scope has no inventory that lists its
// groups.
func (s *Scope) AnsibleInventory() (groups map[string]any, hostvars map[string]any) {
	if s == nil || s.Inventory == nil {
		return nil, nil
	}
	gn, ok := s.Inventory.(GroupNamer)
	if !ok {
		return nil, nil
	}
	groups, hostvars = map[string]any{}, map[string]any{}
	for _, g := range gn.GroupNames() {
		hosts := s.Inventory.Group(g)
		names := make([]any, len(hosts))
		for i, h := range hosts {
			names[i] = h.Name
			if _, done := hostvars[h.Name]; !done {
				hostvars[h.Name] = h.Vars
			}
		}
		groups[g] = names
	}
	return groups, hostvars
}
