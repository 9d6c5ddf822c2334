package inventory

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
)

var (
	// As Ansible's INI plugin: [group] or [group:kind], then an optional comment.
	iniSectionRe = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	iniGroupRe   = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
)

var iniSectionKinds = []string{"hosts", "children", "vars"}

// iniPending is a group used in the file before it is declared: in
// [parent:children] (state children) or [group:vars] (state vars). Ansible
// requires each to be declared in the same file by [group] or [group:children].
type iniPending struct {
	state   string
	pos     diag.Pos
	parents []*Group
	refs    []diag.Pos // where each parent lists it
	section string     // the section that used it first, for the message
}

// parseINI reads an inventory in Ansible's INI format. Lines before the first
// section are hosts of "ungrouped". Host lines are split like a shell line and
// their values, as those of [group:vars], are read as Python literals, as Ansible does.
func (l *loader) parseINI(file string, data []byte) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	lines := strings.Split(text, "\n")
	pending := map[string]*iniPending{}
	var pendingOrder []string
	group := l.inv.groups["ungrouped"]
	state := "hosts"
	for i, raw := range lines {
		raw = strings.TrimRight(raw, "\r")
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		indent := strings.Index(raw, line)
		pos := diag.Pos{File: file, Line: i + 1, Col: indent + 1}
		if m := iniSectionRe.FindStringSubmatch(line); m != nil {
			name, kind := m[1], m[2]
			if kind == "" {
				kind = "hosts"
			}
			if !contains(iniSectionKinds, kind) {
				kpos := pos
				kpos.Col += len(m[1]) + 2
				detail := diag.Suggest(kind, iniSectionKinds)
				if detail != "" {
					detail += " "
				}
				l.ds.Add(kpos, fmt.Sprintf("section [%s:%s] has unknown type %q", name, kind, kind),
					detail+"(a section is [group], [group:children] or [group:vars])")
				state = "invalid"
				continue
			}
			gpos := pos
			gpos.Col++
			if _, ok := l.inv.groups[name]; !ok && kind == "vars" && pending[name] == nil {
				pending[name] = &iniPending{state: "vars", pos: gpos, section: "[" + name + ":vars]"}
				pendingOrder = append(pendingOrder, name)
			}
			group, state = l.addGroup(name, gpos), kind
			if p := pending[name]; p != nil && kind != "vars" {
				l.resolvePending(name, pending)
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			l.ds.Add(pos, fmt.Sprintf("invalid section %s", line),
				"a section is [group], [group:children] or [group:vars], with no spaces inside the brackets")
			state = "invalid"
			continue
		}
		switch state {
		case "hosts":
			l.iniHostLine(file, i+1, raw, group)
		case "vars":
			eq := strings.IndexByte(line, '=')
			if eq < 0 {
				l.ds.Add(pos, fmt.Sprintf("expected name=value in [%s:vars], got %q", group.Name, line), "")
				continue
			}
			k, v := strings.TrimSpace(line[:eq]), strings.TrimSpace(line[eq+1:])
			if k == "" {
				l.ds.Add(pos, "variable with no name", "write name=value")
				continue
			}
			vpos := pos
			vpos.Col += eq + 1 + len(line[eq+1:]) - len(strings.TrimLeft(line[eq+1:], " \t"))
			l.setGroupVar(group, k, iniValue(v), vpos)
		case "children":
			m := iniGroupRe.FindStringSubmatch(line)
			if m == nil {
				l.ds.Add(pos, fmt.Sprintf("expected a group name in [%s:children], got %q", group.Name, line), "")
				continue
			}
			name := m[1]
			if child, ok := l.inv.groups[name]; ok {
				l.addChild(group, child, pos)
				continue
			}
			p := pending[name]
			if p == nil {
				p = &iniPending{pos: pos}
				pending[name] = p
				pendingOrder = append(pendingOrder, name)
			}
			if p.state != "children" {
				p.state, p.pos, p.section = "children", pos, "["+group.Name+":children]"
			}
			p.parents = append(p.parents, group)
			p.refs = append(p.refs, pos)
		}
	}
	for _, name := range pendingOrder {
		p := pending[name]
		if p == nil {
			continue
		}
		if p.state == "vars" {
			l.ds.Add(p.pos, fmt.Sprintf("%s sets variables of group %q, which is not declared", p.section, name),
				fmt.Sprintf("declare it with a [%s] section (it may be empty) in this file", name))
		} else {
			l.ds.Add(p.pos, fmt.Sprintf("%s lists group %q, which is not declared", p.section, name),
				fmt.Sprintf("declare it with a [%s] section (it may be empty) in this file", name))
		}
	}
}

// resolvePending adds the parent links of a group once it is declared.
func (l *loader) resolvePending(name string, pending map[string]*iniPending) {
	p := pending[name]
	delete(pending, name)
	if p.state != "children" {
		return
	}
	child := l.inv.groups[name]
	for i, parent := range p.parents {
		l.addChild(parent, child, p.refs[i])
		if pp := pending[parent.Name]; pp != nil && pp.state == "children" {
			l.resolvePending(parent.Name, pending)
		}
	}
}

// iniHostLine reads "name[:port] [k=v ...]", where name may hold ranges.
func (l *loader) iniHostLine(file string, lineNo int, raw string, g *Group) {
	at := func(off int) diag.Pos { return diag.Pos{File: file, Line: lineNo, Col: off + 1} }
	toks, err := shlexSplit(raw)
	if err != nil {
		l.ds.Add(at(len(raw)-len(strings.TrimLeft(raw, " \t"))), "cannot split host line: "+err.Error(),
			"quote values that hold spaces: name=\"two words\"")
		return
	}
	if len(toks) == 0 {
		return
	}
	hostTok := toks[0]
	entry, err := parseHostEntry(hostTok.text)
	if err != nil {
		l.ds.Add(at(hostTok.start), err.Error(), "")
		return
	}
	type kv struct {
		name string
		val  any
		pos  diag.Pos
	}
	var vs []kv
	for _, t := range toks[1:] {
		eq := strings.IndexByte(t.text, '=')
		if eq < 0 {
			l.ds.Add(at(t.start), fmt.Sprintf("expected name=value after the host name, got %q", t.text),
				"quote values that hold spaces: name=\"two words\"")
			continue
		}
		if eq == 0 {
			l.ds.Add(at(t.start), fmt.Sprintf("variable with no name in %q", t.text), "write name=value")
			continue
		}
		vcol := t.start
		if rawEq := strings.IndexByte(raw[t.start:t.end], '='); rawEq >= 0 {
			vcol += rawEq + 1
		}
		vs = append(vs, kv{t.text[:eq], iniValue(t.text[eq+1:]), at(vcol)})
	}
	pos := at(hostTok.start)
	for _, name := range entry.names {
		h := l.addHost(name, g, pos)
		if entry.port != 0 {
			h.invVars.set("ansible_port", entry.port, pos)
		}
		for _, v := range vs {
			h.invVars.set(v.name, v.val, v.pos)
		}
	}
}

// iniValue reads an INI value as Ansible does: a Python literal if it is one,
// else the text itself.
func iniValue(s string) any {
	if v, ok := pyLiteral(s); ok {
		return v
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
