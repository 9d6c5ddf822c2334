package plan

import (
	"fmt"
	"io"
	"strings"
)

// WriteMermaid writes the runbook's flow as a Mermaid flowchart that a reviewer
// can paste into a pull request: phases as subgraphs, guards as decisions,
// failure edges to the rollback.
func (p *Plan) WriteMermaid(w io.Writer) error {
	m := &mermaid{ew: &errWriter{w: w}}
	m.line("flowchart TD")
	m.line("  start([%s])", label(fmt.Sprintf("%s: %d hosts in %d batches", p.Runbook, len(p.Hosts), len(p.Batches))))
	prev := "start"
	var rollbackID string
	var failing []string // nodes whose failure leads to the host's rollback
	for _, ph := range p.Phases {
		if ph.Name == "rollback" {
			continue
		}
		id := ph.Name
		m.line("  subgraph %s [%s]", id, label(ph.Name+" · "+ph.Runs))
		m.line("    direction TB")
		first, last, nodes := m.steps(id, ph.Steps, "    ")
		m.line("  end")
		if first == "" {
			continue
		}
		m.line("  %s --> %s", prev, first)
		prev = last
		if ph.Name == "steps" {
			failing = nodes
			if ph.Steps != nil {
				m.line("  %s -. next batch .-> %s", last, first)
			}
		}
		if ph.Name == "preflight" || ph.Name == "between_batches" {
			for _, n := range nodes {
				m.line("  %s -. fails .-> abort", n)
			}
			m.needAbort = true
		}
	}
	m.line("  %s --> done([done])", prev)
	for _, ph := range p.Phases {
		if ph.Name != "rollback" {
			continue
		}
		rollbackID = "rollback"
		switch ph.Mode {
		case "none":
			m.line("  rollback[[%s]]", label("no rollback: host left as it is"))
		case "automatic":
			var undo []string
			for _, s := range flatten(p.stepsPhase()) {
				undo = append([]string{s.Name + ": " + undoText(s)}, undo...)
			}
			m.line("  rollback[[%s]]", label("automatic rollback, newest first<br/>"+strings.Join(undo, "<br/>")))
		default:
			m.line("  subgraph rollback [%s]", label("rollback · per failed host"))
			m.line("    direction TB")
			m.steps("rb", ph.Steps, "    ")
			m.line("  end")
		}
	}
	for _, n := range failing {
		m.line("  %s -. fails .-> %s", n, rollbackID)
	}
	if m.needAbort {
		m.line("  abort([abort: no host touched further])")
	}
	m.line("  classDef guard fill:#fff5d6,stroke:#b58900")
	m.line("  classDef rollback fill:#fde2e1,stroke:#c0392b")
	m.line("  class %s rollback", rollbackID)
	return m.ew.err
}

type mermaid struct {
	ew        *errWriter
	n         int
	needAbort bool
}

func (m *mermaid) line(format string, args ...any) { m.ew.printf(format+"\n", args...) }

// steps writes the nodes of ss chained in order and returns the first and last
// node IDs and the IDs of the step nodes (for failure edges).
func (m *mermaid) steps(prefix string, ss []Step, indent string) (first, last string, nodes []string) {
	for _, s := range ss {
		m.n++
		id := fmt.Sprintf("%s%d", prefix, m.n)
		entry := id
		if len(s.When) > 0 {
			g := id + "g"
			m.line("%s%s{%s}", indent, g, label(strings.Join(s.When, " and ")))
			m.line("%sclass %s guard", indent, g)
			m.line("%s%s -- yes --> %s", indent, g, id)
			entry = g
		}
		if len(s.Block) > 0 {
			m.line("%s%s[%s]", indent, id, label("block: "+s.Name))
			m.line("%ssubgraph %sb [%s]", indent, id, label(s.Name))
			bfirst, blast, bnodes := m.steps(id+"s", s.Block, indent+"  ")
			m.line("%send", indent)
			m.line("%s%s --> %s", indent, id, bfirst)
			nodes = append(nodes, bnodes...)
			if s.Rollback != nil && s.Rollback.Mode == "explicit" {
				m.line("%ssubgraph %sr [%s]", indent, id, label("rollback of "+s.Name))
				_, _, _ = m.steps(id+"r", s.Rollback.Steps, indent+"  ")
				m.line("%send", indent)
				for _, n := range bnodes {
					m.line("%s%s -. fails .-> %sr", indent, n, id)
				}
				m.line("%sclass %sr rollback", indent, id)
			}
			if last != "" {
				m.line("%s%s --> %s", indent, last, entry)
			}
			if first == "" {
				first = entry
			}
			last = blast
			if len(s.When) > 0 {
				join := id + "j"
				m.line("%s%s(( ))", indent, join)
				m.line("%s%s --> %s", indent, blast, join)
				m.line("%s%s -- no --> %s", indent, entry, join)
				last = join
			}
			continue
		}
		text := s.Name
		if s.Module != "" && s.Module != s.Name {
			text += "<br/><i>" + s.Module + "</i>"
		}
		if s.Loop != "" {
			text += "<br/>for each item of " + s.Loop
		}
		m.line("%s%s[%s]", indent, id, label(text))
		nodes = append(nodes, id)
		if last != "" {
			m.line("%s%s --> %s", indent, last, entry)
		}
		if first == "" {
			first = entry
		}
		exit := id
		if len(s.When) > 0 {
			join := id + "j"
			m.line("%s%s(( ))", indent, join)
			m.line("%s%s --> %s", indent, id, join)
			m.line("%s%s -- no --> %s", indent, entry, join)
			exit = join
		}
		last = exit
	}
	return first, last, nodes
}

func flatten(ss []Step) []Step {
	var out []Step
	for _, s := range ss {
		if len(s.Block) > 0 {
			out = append(out, flatten(s.Block)...)
			continue
		}
		out = append(out, s)
	}
	return out
}

// label quotes text for a Mermaid node: inside "..." only the double quote needs
// an entity.
func label(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"`
}
