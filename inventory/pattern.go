package inventory

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
)

// PatternError is a host pattern (or --limit) that selects nothing, or a part of
// one that names no host or group. A part that matches nothing is an error even
// when the rest selects hosts, unlike in Ansible (a warning there): a typo in
// "etcd:!etcd-leadr" must not quietly select the leader.
type PatternError struct {
	// What is "host pattern" or "limit".
	What    string
	Pattern string
	// Term is the part that matches nothing; empty when the pattern as a whole
	// selects no host (an empty group, an intersection with nothing in common).
	Term string
	// Err is a problem with the pattern itself (a bad regular expression, a
	// subscript out of range, an unreadable @file); nil otherwise.
	Err error
	// Hint is a did-you-mean for Term, if one is close.
	Hint string
	// Groups are the known group names, sorted.
	Groups []string
}

func (e *PatternError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", e.What, e.Pattern)
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
		return b.String()
	case e.Term != "":
		fmt.Fprintf(&b, ": %q matches no host or group", e.Term)
		if e.Hint != "" {
			b.WriteString("; " + e.Hint)
		}
	default:
		b.WriteString(" selects no hosts")
	}
	fmt.Fprintf(&b, " (groups: %s)", listNames(e.Groups, 30))
	return b.String()
}

func (e *PatternError) Unwrap() error { return e.Err }

func listNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + fmt.Sprintf(", and %d more", len(names)-max)
}

// Select returns the hosts matched by an Ansible host pattern, in inventory order:
//
//	all, *          every host
//	etcd            a group (with its child groups) or a host (the host, if both)
//	web*, etcd-?    a glob on group and host names
//	~web\d+         a regular expression (matched at the start of the name)
//	etcd[0], etcd[1:2], etcd[-1]
//	                a subscript of what the part matches (inclusive slices);
//	                as in Ansible, name[N] is always a subscript, never a glob set
//	a:b, a,b        union; a:&b intersection; a:!b exclusion
//
// Unions are applied first, in order, then intersections, then exclusions, as
// in Ansible; a pattern of only & and ! parts starts from all. Parts are split
// on commas when there are any, else on colons (an IPv6 address stays whole).
// Globs and regular expressions never match the groups all and ungrouped, as
// Ansible documents ("a*" is not every host); name them to use them. Unlike
// Ansible, there is no implicit localhost: list it in the inventory.
func (inv *Inventory) Select(pattern string) ([]*Host, error) {
	sel, err := inv.evaluate("host pattern", pattern, splitPattern(pattern))
	if err != nil {
		return nil, err
	}
	hosts := inv.inOrder(sel)
	if len(hosts) == 0 {
		return nil, &PatternError{What: "host pattern", Pattern: pattern, Groups: inv.Groups()}
	}
	return hosts, nil
}

// Limit keeps the hosts that also match pattern, as --limit does, in their
// order. A part "@file" reads patterns from a file, one a line (such as the
// retry files Ansible writes); the path is relative to the working directory.
func (inv *Inventory) Limit(hosts []*Host, pattern string) ([]*Host, error) {
	var terms []string
	for _, t := range splitPattern(pattern) {
		if !strings.HasPrefix(t, "@") {
			terms = append(terms, t)
			continue
		}
		lines, err := readLimitFile(t[1:])
		if err != nil {
			return nil, &PatternError{What: "limit", Pattern: pattern, Err: err, Groups: inv.Groups()}
		}
		terms = append(terms, lines...)
	}
	sel, err := inv.evaluate("limit", pattern, terms)
	if err != nil {
		return nil, err
	}
	var out []*Host
	for _, h := range hosts {
		if sel[h.Name] {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, &PatternError{What: "limit", Pattern: pattern, Groups: inv.Groups()}
	}
	return out, nil
}

func readLimitFile(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read limit file %s: %s", path, describeErr(err))
	}
	if st.IsDir() {
		return nil, fmt.Errorf("limit file %s is a directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read limit file %s: %s", path, describeErr(err))
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read limit file %s: %w", path, err)
	}
	return out, nil
}

// patternTermRe is Ansible's split on colons: anything but whitespace, colons
// and brackets, or a whole [..] (so etcd[1:2] and ~web[0-9] stay one part).
var patternTermRe = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)

// splitPattern splits a pattern into its parts as Ansible's split_host_pattern.
func splitPattern(pattern string) []string {
	var parts []string
	switch {
	case strings.Contains(pattern, ","):
		parts = strings.Split(pattern, ",")
	case isIPv6(strings.TrimSpace(pattern)):
		parts = []string{pattern}
	default:
		parts = patternTermRe.FindAllString(pattern, -1)
	}
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(strings.TrimLeft(s, "!&"))
	return err == nil && a.Is6()
}

// evaluate applies the parts in Ansible's order and returns the names selected.
func (inv *Inventory) evaluate(what, pattern string, terms []string) (map[string]bool, error) {
	if len(terms) == 0 {
		// Ansible would read an empty pattern as all: too easy to get by accident.
		return nil, &PatternError{What: what, Pattern: pattern, Err: errors.New("the pattern is empty")}
	}
	var regular, and, not []string
	for _, t := range terms {
		switch t[0] {
		case '&':
			and = append(and, t)
		case '!':
			not = append(not, t)
		default:
			regular = append(regular, t)
		}
	}
	if len(regular) == 0 {
		regular = []string{"all"}
	}
	sel := map[string]bool{}
	for _, t := range append(append(regular, and...), not...) {
		hosts, err := inv.matchTerm(t)
		if err != nil {
			err.What, err.Pattern = what, pattern
			return nil, err
		}
		switch t[0] {
		case '&':
			keep := map[string]bool{}
			for _, h := range hosts {
				if sel[h.Name] {
					keep[h.Name] = true
				}
			}
			sel = keep
		case '!':
			for _, h := range hosts {
				delete(sel, h.Name)
			}
		default:
			for _, h := range hosts {
				sel[h.Name] = true
			}
		}
	}
	return sel, nil
}

func (inv *Inventory) inOrder(sel map[string]bool) []*Host {
	var out []*Host
	for _, h := range inv.hosts {
		if sel[h.Name] {
			out = append(out, h)
		}
	}
	return out
}

// subscriptRe is Ansible's PATTERN_WITH_SUBSCRIPT: name[i], name[i:j], name[i:].
var subscriptRe = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

// matchTerm returns the hosts one part matches, in inventory order.
func (inv *Inventory) matchTerm(term string) ([]*Host, *PatternError) {
	expr := strings.TrimLeft(term, "&!")
	whole := expr // as written, for messages: "etcd-[13]" rather than "etcd-"
	if expr == "" {
		return nil, &PatternError{Err: fmt.Errorf("%q names nothing", term)}
	}
	if expr[0] == '~' {
		re, err := regexp.Compile(`^(?:` + expr[1:] + `)`)
		if err != nil {
			return nil, &PatternError{Err: fmt.Errorf("invalid regular expression %q: %v", expr[1:], err)}
		}
		hosts, ok := inv.matchNames(re.MatchString)
		if !ok {
			return nil, inv.noMatch(whole, expr)
		}
		return hosts, nil
	}
	var sub *[2]int // [start, end] with end -1 for "to the last"; end -2 for a single index
	if m := subscriptRe.FindStringSubmatch(expr); m != nil {
		expr = m[1]
		if m[2] != "" {
			i, err := strconv.Atoi(m[2])
			if err != nil {
				return nil, &PatternError{Err: fmt.Errorf("subscript [%s] is out of range", m[2])}
			}
			sub = &[2]int{i, -2}
		} else {
			start, err1 := strconv.Atoi(m[3])
			end, err2 := -1, error(nil)
			if m[5] != "" {
				end, err2 = strconv.Atoi(m[5])
			}
			if err1 != nil || err2 != nil {
				return nil, &PatternError{Err: fmt.Errorf("subscript [%s%s%s] is out of range", m[3], m[4], m[5])}
			}
			sub = &[2]int{start, end}
		}
	}
	var hosts []*Host
	switch {
	case expr == "all" || expr == "*":
		hosts = inv.hosts
	case inv.hostByName[expr] != nil:
		hosts = []*Host{inv.hostByName[expr]}
	case strings.ContainsAny(expr, "*?["):
		re, err := globRegexp(expr)
		if err != nil {
			return nil, &PatternError{Err: fmt.Errorf("invalid pattern %q: %v", expr, err)}
		}
		var ok bool
		if hosts, ok = inv.matchNames(re.MatchString); !ok {
			return nil, inv.noMatch(whole, expr)
		}
	default:
		g, ok := inv.groups[expr]
		if !ok {
			return nil, inv.noMatch(whole, expr)
		}
		hosts = g.members
	}
	if sub == nil {
		return hosts, nil
	}
	return applySubscript(term, hosts, *sub)
}

// matchNames returns the hosts of every group whose name matches (all and
// ungrouped excepted, as Ansible documents) and every host whose name matches.
// ok is false when no name matched at all.
func (inv *Inventory) matchNames(match func(string) bool) ([]*Host, bool) {
	sel := map[string]bool{}
	matched := false
	for _, g := range inv.groupOrder {
		if g.Name == "all" || g.Name == "ungrouped" || !match(g.Name) {
			continue
		}
		matched = true
		for _, h := range g.members {
			sel[h.Name] = true
		}
	}
	for _, h := range inv.hosts {
		if match(h.Name) {
			matched = true
			sel[h.Name] = true
		}
	}
	return inv.inOrder(sel), matched
}

func applySubscript(term string, hosts []*Host, sub [2]int) ([]*Host, *PatternError) {
	if len(hosts) == 0 {
		return hosts, nil
	}
	start, end := sub[0], sub[1]
	if end == -2 { // a single index, negative from the end, as in Python
		i := start
		if i < 0 {
			i += len(hosts)
		}
		if i < 0 || i >= len(hosts) {
			return nil, &PatternError{Err: fmt.Errorf("%q: index %d is out of range (%d hosts)", term, start, len(hosts))}
		}
		return hosts[i : i+1], nil
	}
	if end == -1 || end >= len(hosts) {
		end = len(hosts) - 1
	}
	if start > end {
		return nil, nil
	}
	return hosts[start : end+1], nil
}

// noMatch reports the part whole, whose name (without subscript) is name.
func (inv *Inventory) noMatch(whole, name string) *PatternError {
	names := inv.Groups()
	for _, h := range inv.hosts {
		names = append(names, h.Name)
	}
	return &PatternError{Term: whole, Hint: diag.Suggest(name, names), Groups: inv.Groups()}
}

// globRegexp translates a shell glob as Python's fnmatch does: * any text, ?
// one character, [abc] / [!abc] a set; the whole name must match.
func globRegexp(glob string) (*regexp.Regexp, error) {
	g := []rune(glob)
	var b strings.Builder
	b.WriteString("^(?s:")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(g) && g[j] == '!' {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++
			}
			for j < len(g) && g[j] != ']' {
				j++
			}
			if j >= len(g) {
				b.WriteString(`\[`)
				continue
			}
			set := string(g[i+1 : j])
			i = j
			neg := strings.HasPrefix(set, "!")
			set = strings.TrimPrefix(set, "!")
			set = strings.ReplaceAll(set, `\`, `\\`)
			set = strings.ReplaceAll(set, `[`, `\[`)
			if strings.HasPrefix(set, "^") {
				set = `\` + set
			}
			if neg {
				b.WriteString("[^" + set + "]")
			} else {
				b.WriteString("[" + set + "]")
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(")$")
	return regexp.Compile(b.String())
}
