package inventory

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runbookhq/runbook/internal/diag"
)

// WriteList writes the inventory as ansible-inventory --list does: JSON with
// sorted keys and an indent of 4, each group with its direct hosts and child
// groups (empty groups left out, though still named as children), and the
// merged variables of every host under _meta.hostvars (group variables folded in).
func (inv *Inventory) WriteList(w io.Writer) error {
	out := map[string]any{}
	seen := map[string]bool{}
	var format func(g *Group)
	format = func(g *Group) {
		entry := map[string]any{}
		if g.Name != "all" && len(g.Hosts) > 0 {
			entry["hosts"] = g.Hosts
		}
		if len(g.children) > 0 {
			entry["children"] = g.Children
		}
		for _, c := range g.children {
			if !seen[c.Name] {
				seen[c.Name] = true
				format(c)
			}
		}
		if len(entry) > 0 {
			out[g.Name] = entry
		}
	}
	format(inv.groups["all"])
	hostvars := map[string]any{}
	for _, h := range inv.hosts {
		if len(h.Vars) > 0 {
			hostvars[h.Name] = inv.masked(h.Vars)
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	return writeJSONDoc(w, out)
}

// HostVars returns the merged variables of the host as ansible-inventory --host
// prints them (JSON, sorted keys, indent of 4, final newline).
func (inv *Inventory) HostVars(name string) ([]byte, error) {
	h, ok := inv.hostByName[name]
	if !ok {
		names := make([]string, len(inv.hosts))
		for i, h := range inv.hosts {
			names[i] = h.Name
		}
		return nil, fmt.Errorf("no host %q in the inventory%s", name, prefixIf("; ", diag.Suggest(name, names)))
	}
	var b strings.Builder
	if err := writeJSONDoc(&b, inv.masked(h.Vars)); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// WriteGraph writes the tree of groups and hosts under group ("all" when
// empty) as ansible-inventory --graph does:
//
//	@all:
//	  |--@ungrouped:
//	  |--@etcd:
//	  |  |--etcd-1
func (inv *Inventory) WriteGraph(w io.Writer, group string) error {
	return inv.writeGraph(w, group, false)
}

// WriteGraphVars is WriteGraph with variables, as --graph --vars: each host's
// merged variables under it and each group's own variables after its members,
// as {name = value} in Python's notation.
func (inv *Inventory) WriteGraphVars(w io.Writer, group string) error {
	return inv.writeGraph(w, group, true)
}

func (inv *Inventory) writeGraph(w io.Writer, group string, vars bool) error {
	if group == "" {
		group = "all"
	}
	g, ok := inv.groups[group]
	if !ok {
		return fmt.Errorf("no group %q in the inventory%s", group, prefixIf("; ", diag.Suggest(group, inv.Groups())))
	}
	gw := &graphWriter{inv: inv, w: bufio.NewWriter(w), vars: vars, size: map[*Group]int{}, state: map[*Group]graphState{}}
	gw.group(g, 0)
	// Groups nested deeper than maxGraphDepth, each as a tree of its own.
	for len(gw.queue) > 0 {
		next := gw.queue[0]
		gw.queue = gw.queue[1:]
		gw.state[next] = graphNew
		gw.group(next, 0)
	}
	return gw.w.Flush()
}

// The graph is Ansible's as long as it stays small. Printed naively it is
// not linear in the inventory: a group reached by many paths (a child of
// several groups, nested) is printed once per path, which is exponential
// in the worst case, and each line is indented by its depth, quadratic for
// a deep chain. So a group already printed whose subtree is longer than
// graphRepeatLines is printed as a reference, and a group deeper than
// maxGraphDepth is a reference to its own tree, printed after the main one.
const (
	graphRepeatLines = 64
	maxGraphDepth    = 24
)

type graphState int

const (
	graphNew    graphState = iota
	graphShown             // printed in full above
	graphQueued            // to be printed below, as a tree of its own
)

type graphWriter struct {
	inv   *Inventory
	w     *bufio.Writer
	vars  bool
	size  map[*Group]int // lines of a group's full subtree, capped at graphRepeatLines+1
	state map[*Group]graphState
	queue []*Group
}

func (gw *graphWriter) line(depth int, s string) {
	for i := 0; i < depth; i++ {
		gw.w.WriteString("  |")
	}
	if depth > 0 {
		gw.w.WriteString("--")
	}
	gw.w.WriteString(s)
	gw.w.WriteByte('\n')
}

// fullSize is how many lines g's subtree takes printed in full, counted once
// per group (memoized) and capped, so it costs linear time overall.
func (gw *graphWriter) fullSize(g *Group) int {
	if n, ok := gw.size[g]; ok {
		return n
	}
	gw.size[g] = graphRepeatLines + 1 // a guard; inventories have no cycles
	n := 1
	if g.Name != "all" {
		n += len(g.hosts)
		if gw.vars {
			for _, h := range g.hosts {
				n += len(h.Vars)
			}
		}
	}
	if gw.vars {
		n += len(g.Vars)
		if g.Priority != 1 {
			n++
		}
	}
	for _, c := range g.children {
		if n > graphRepeatLines {
			break
		}
		n += gw.fullSize(c)
	}
	n = min(n, graphRepeatLines+1)
	gw.size[g] = n
	return n
}

func (gw *graphWriter) group(g *Group, depth int) {
	switch st := gw.state[g]; {
	case depth > maxGraphDepth && st != graphShown:
		if st == graphNew {
			gw.state[g] = graphQueued
			gw.queue = append(gw.queue, g)
		}
		gw.line(depth, "@"+g.Name+": (nested too deep: shown below)")
		return
	case st == graphQueued:
		gw.line(depth, "@"+g.Name+": (shown below)")
		return
	case st == graphShown && (depth > maxGraphDepth || gw.fullSize(g) > graphRepeatLines):
		gw.line(depth, "@"+g.Name+": (shown above)")
		return
	}
	gw.state[g] = graphShown
	gw.line(depth, "@"+g.Name+":")
	depth++
	for _, c := range g.children {
		gw.group(c, depth)
	}
	if g.Name != "all" {
		for _, h := range g.hosts {
			gw.line(depth, h.Name)
			if gw.vars {
				gw.varLines(depth+1, h.Vars)
			}
		}
	}
	if gw.vars {
		gv := g.Vars
		if g.Priority != 1 {
			gv = make(map[string]any, len(g.Vars)+1)
			for k, v := range g.Vars {
				gv[k] = v
			}
			gv["ansible_group_priority"] = g.Priority
		}
		gw.varLines(depth, gv)
	}
}

func (gw *graphWriter) varLines(depth int, vars map[string]any) {
	for _, k := range sortedKeys(vars) {
		gw.line(depth, "{"+k+" = "+pyStr(gw.inv.masked(vars[k]))+"}")
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeJSONDoc writes v as Python's json.dumps(v, sort_keys=True, indent=4,
// ensure_ascii=False) does, then a newline, so that our output and
// ansible-inventory's can be compared byte for byte (floats as 1.0, NaN, no
// HTML escaping).
func writeJSONDoc(w io.Writer, v any) error {
	bw := bufio.NewWriter(w)
	writeJSON(bw, v, 0)
	bw.WriteByte('\n')
	return bw.Flush()
}

func writeJSON(w *bufio.Writer, v any, depth int) {
	indent := func(d int) { w.WriteString("\n" + strings.Repeat("    ", d)) }
	switch v := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.WriteString(strconv.FormatBool(v))
	case int:
		w.WriteString(strconv.Itoa(v))
	case int64:
		w.WriteString(strconv.FormatInt(v, 10))
	case uint64:
		w.WriteString(strconv.FormatUint(v, 10))
	case float64:
		switch {
		case math.IsNaN(v):
			w.WriteString("NaN")
		case math.IsInf(v, 1):
			w.WriteString("Infinity")
		case math.IsInf(v, -1):
			w.WriteString("-Infinity")
		default:
			w.WriteString(pyFloat(v))
		}
	case string:
		writeJSONString(w, v)
	case []string:
		list := make([]any, len(v))
		for i, s := range v {
			list[i] = s
		}
		writeJSON(w, list, depth)
	case []any:
		if len(v) == 0 {
			w.WriteString("[]")
			return
		}
		w.WriteByte('[')
		for i, it := range v {
			if i > 0 {
				w.WriteByte(',')
			}
			indent(depth + 1)
			writeJSON(w, it, depth+1)
		}
		indent(depth)
		w.WriteByte(']')
	case map[string]any:
		if len(v) == 0 {
			w.WriteString("{}")
			return
		}
		w.WriteByte('{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				w.WriteByte(',')
			}
			indent(depth + 1)
			writeJSONString(w, k)
			w.WriteString(": ")
			writeJSON(w, v[k], depth+1)
		}
		indent(depth)
		w.WriteByte('}')
	default:
		writeJSONString(w, fmt.Sprint(v))
	}
}

func writeJSONString(w *bufio.Writer, s string) {
	w.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch r {
		case '"':
			w.WriteString(`\"`)
		case '\\':
			w.WriteString(`\\`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		case '\b':
			w.WriteString(`\b`)
		case '\f':
			w.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(w, `\u%04x`, r)
			} else {
				w.WriteRune(r)
			}
		}
	}
	w.WriteByte('"')
}

// pyFloat formats f as Python's repr does: the shortest digits that read back
// as f, with ".0" on integral values and an exponent below 1e-4 or from 1e16.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyStr formats a value as Python's str() does, for --graph --vars.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

func pyRepr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case float64:
		return pyFloat(v)
	case string:
		return pyQuote(v)
	case []any:
		parts := make([]string, len(v))
		for i, it := range v {
			parts[i] = pyRepr(it)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		var parts []string
		for _, k := range sortedKeys(v) {
			parts = append(parts, pyQuote(k)+": "+pyRepr(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// pyQuote is Python's repr of a str: single quotes unless the text holds one
// and no double quote.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
