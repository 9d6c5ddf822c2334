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
