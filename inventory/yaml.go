package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/inventory/vault"
)

// yamlErrLineRe finds the line in yaml.v3's error messages ("yaml: line 3: ...").
var yamlErrLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAMLDoc parses data as one YAML document and returns its root node, or
// nil for an empty document.
func parseYAMLDoc(file string, data []byte) (*yaml.Node, diag.Diags) {
	var ds diag.Diags
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		ds = append(ds, yamlErrDiag(file, err))
		return nil, ds
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		ds = append(ds, yamlErrDiag(file, err))
	default:
		ds.Add(diag.Pos{File: file, Line: extra.Line, Col: extra.Column}, "a second YAML document in the file",
			"an inventory or vars file holds one document: remove the extra \"---\"")
	}
	if len(doc.Content) == 0 {
		return nil, ds
	}
	return doc.Content[0], ds
}

// yamlParserErrors are the messages of yaml.v3's parser, as opposed to its scanner.
var yamlParserErrors = map[string]bool{
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

func yamlErrDiag(file string, err error) diag.Diag {
	msg := err.Error()
	if m := yamlErrLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if yamlParserErrors[m[2]] {
			line++ // yaml.v3 reports parser (not scanner) errors with a 0-based line
		}
		return diag.Diag{Pos: diag.Pos{File: file, Line: line}, Summary: "invalid YAML: " + m[2]}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if yamlParserErrors[msg] {
		return diag.Diag{Pos: diag.Pos{File: file, Line: 1}, Summary: "invalid YAML: " + msg} // the 0-based line 0
	}
	return diag.Diag{Pos: diag.Pos{File: file}, Summary: "invalid YAML: " + msg}
}

// yconv turns YAML nodes into plain values (map[string]any, []any, string, int,
// float64, bool, nil) the way Ansible's YAML loader reads them, recording
// problems with their positions.
type yconv struct {
	file   string
	ds     *diag.Diags
	budget int         // nodes left to convert: aliases must not expand without bound
	vault  *vaultState // decrypts !vault values; nil refuses them
}

// maxYAMLNodes bounds alias expansion ("billion laughs") in one file.
const maxYAMLNodes = 1 << 20

func newYconv(file string, ds *diag.Diags) *yconv {
	return &yconv{file: file, ds: ds, budget: maxYAMLNodes}
}

func (c *yconv) pos(n *yaml.Node) diag.Pos {
	return diag.Pos{File: c.file, Line: n.Line, Col: n.Column}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
	}
	return "value"
}

type ypair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n with merge keys (<<) applied: merged
// entries first, then the mapping's own, which win. A key given twice is a
// warning and the last value wins, as in Ansible (it keeps the first one's place).
func (c *yconv) pairs(n *yaml.Node) []ypair {
	return c.pairsDepth(resolve(n), 0)
}

func (c *yconv) pairsDepth(n *yaml.Node, depth int) []ypair {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	if depth > 20 {
		c.ds.Add(c.pos(n), "merge keys (<<) nested too deep", "")
		return nil
	}
	var merged, own []ypair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			v = resolve(v)
			var srcs []*yaml.Node
			switch v.Kind {
			case yaml.MappingNode:
				srcs = []*yaml.Node{v}
			case yaml.SequenceNode:
				for _, it := range v.Content {
					srcs = append(srcs, resolve(it))
				}
			}
			// In a list of merged mappings, the earlier ones win: add them last.
			for j := len(srcs) - 1; j >= 0; j-- {
				if srcs[j].Kind != yaml.MappingNode {
					c.ds.Add(c.pos(srcs[j]), "a merge key (<<) takes a mapping or a list of mappings", "")
					continue
				}
				merged = append(merged, c.pairsDepth(srcs[j], depth+1)...)
			}
			if v.Kind != yaml.MappingNode && v.Kind != yaml.SequenceNode {
				c.ds.Add(c.pos(v), "a merge key (<<) takes a mapping or a list of mappings", "")
			}
			continue
		}
		if rk := resolve(k); rk.Kind != yaml.ScalarNode {
			c.ds.Add(c.pos(k), "a mapping key must be a plain name, not a "+kindName(k), "")
			continue
		}
		own = append(own, ypair{key: resolve(k), val: v})
	}
	var out []ypair
	at := map[string]int{}
	ownAt := map[string]*yaml.Node{}
	for i, p := range append(merged, own...) {
		isOwn := i >= len(merged)
		if isOwn {
			if first, dup := ownAt[p.key.Value]; dup {
				c.ds.Warnf(c.pos(p.key), "key %q is given twice (first at line %d); the last one wins", p.key.Value, first.Line)
			}
			ownAt[p.key.Value] = p.key
		}
		if j, seen := at[p.key.Value]; seen {
			out[j].val = p.val
			if isOwn {
				out[j].key = p.key
			}
			continue
		}
		at[p.key.Value] = len(out)
		out = append(out, p)
	}
	return out
}

// value converts n into a plain value.
func (c *yconv) value(n *yaml.Node) any { return c.valueDepth(n, 0) }

func (c *yconv) valueDepth(n *yaml.Node, depth int) any {
	if n == nil {
		return nil
	}
	if c.budget <= 0 {
		return nil // already reported
	}
	c.budget--
	if c.budget == 0 {
		c.ds.Add(c.pos(n), "too many values (aliases expand to more than a million)", "")
		return nil
	}
	if depth > 200 {
		c.budget = 0
		c.ds.Add(c.pos(n), "values nested too deep", "")
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return c.valueDepth(n.Content[0], depth+1)
	case yaml.AliasNode:
		return c.valueDepth(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, it := range n.Content {
			out = append(out, c.valueDepth(it, depth+1))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for _, p := range c.pairsDepth(n, 0) {
			out[p.key.Value] = c.valueDepth(p.val, depth+1)
		}
		return out
	}
	return c.scalar(n)
}

// Plain scalars are resolved by YAML 1.1 rules, as Ansible's loader (PyYAML)
// does, not by yaml.v3's YAML 1.2 ones: "become: yes" is a boolean, 0755 is
// octal, 1e3 and 0o17 are strings. These are PyYAML's implicit resolvers.
var (
	yaml11Bools = map[string]bool{
		"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
		"true": true, "True": true, "TRUE": true,
		"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
		"false": false, "False": false, "FALSE": false,
	}
	yaml11FloatRe = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	yaml11IntRe   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
)

// yaml11Plain resolves a plain (unquoted, untagged) scalar as PyYAML does:
// null, bool, float, int, else the text itself (timestamps included).
func yaml11Plain(s string) any {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return nil
	}
	if b, ok := yaml11Bools[s]; ok {
		return b
	}
	if yaml11FloatRe.MatchString(s) {
		if f, ok := yaml11Float(s); ok {
			return f
		}
		return s
	}
	if yaml11IntRe.MatchString(s) {
		if n, ok := yaml11Int(s); ok {
			return n
		}
	}
	return s
}

func yaml11Sign(s string) (string, float64) {
	switch {
	case strings.HasPrefix(s, "-"):
		return s[1:], -1
	case strings.HasPrefix(s, "+"):
		return s[1:], 1
	}
	return s, 1
}

// yaml11Sexagesimal reads "1:30:05" (base 60), which YAML 1.1 allows for numbers.
func yaml11Sexagesimal(s string) float64 {
	v := 0.0
	for _, part := range strings.Split(s, ":") {
		f, _ := strconv.ParseFloat(part, 64)
		v = v*60 + f
	}
	return v
}

func yaml11Float(s string) (float64, bool) {
	s, sign := yaml11Sign(strings.ToLower(strings.ReplaceAll(s, "_", "")))
	switch {
	case s == ".inf":
		return sign * math.Inf(1), true
	case s == ".nan":
		return math.NaN(), true
	case strings.Contains(s, ":"):
		return sign * yaml11Sexagesimal(s), true
	}
	f, err := strconv.ParseFloat(s, 64)
	return sign * f, err == nil
}

func yaml11Int(s string) (any, bool) {
	s, sign := yaml11Sign(strings.ReplaceAll(s, "_", ""))
	var n int64
	var err error
	switch {
	case s == "0":
		return 0, true
	case strings.HasPrefix(s, "0b"):
		n, err = strconv.ParseInt(s[2:], 2, 64)
	case strings.HasPrefix(s, "0x"):
		n, err = strconv.ParseInt(s[2:], 16, 64)
	case strings.HasPrefix(s, "0"):
		n, err = strconv.ParseInt(s[1:], 8, 64)
	case strings.Contains(s, ":"):
		f := yaml11Sexagesimal(s)
		if f > math.MaxInt64/2 {
			return nil, false
		}
		n = int64(f)
	default:
		n, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil {
		return nil, false // beyond 64 bits: kept as text
	}
	return int(int64(sign) * n), true
}

func (c *yconv) scalar(n *yaml.Node) any {
	switch {
	case n.Tag == "!vault":
		return c.vaultValue(n)
	case n.Tag == "!unsafe":
		return n.Value
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
		c.ds.Add(c.pos(n), fmt.Sprintf("unsupported YAML tag %s", n.Tag), "only !vault and !unsafe are known")
		return n.Value
	}
	if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		return yaml11Plain(n.Value)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		c.ds.Add(c.pos(n), "invalid value: "+strings.TrimPrefix(err.Error(), "yaml: "), "")
		return n.Value
	}
	if _, isTime := v.(time.Time); isTime {
		return n.Value // PyYAML reads dates, but they reach templates as text
	}
	return v
}

// vaultValue decrypts a !vault value. Its plaintext is a string, never YAML, as
// in Ansible.
func (c *yconv) vaultValue(n *yaml.Node) any {
	v := c.vault
	if v == nil {
		v = newVaultState(nil)
	}
	plain, ok := v.decrypt([]byte(n.Value), c.pos(n), "the !vault value", c.ds)
	if !ok {
		return nil
	}
	s := string(plain)
	v.inline(s, n.Value)
	return s
}

// parseYAMLInventory reads a YAML inventory: top-level keys are groups (usually
// just all), each with hosts, vars and children.
func (l *loader) parseYAMLInventory(file string, root *yaml.Node) {
	c := newYconv(file, &l.ds)
	c.vault = l.vault
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		l.ds.Add(c.pos(root), "a YAML inventory is a mapping of group names, got a "+kindName(root),
			`start it with "all:" and put hosts, vars and children under it`)
		return
	}
	top := c.pairs(root)
	for _, p := range top {
		if p.key.Value == "plugin" {
			l.ds.Add(c.pos(p.key), "inventory plugin configuration (plugin:) is not supported",
				"use a static YAML or INI inventory")
			return
		}
	}
	for _, p := range top {
		l.yamlGroup(c, p.key, p.val, 0)
	}
}

// maxGroupDepth bounds children nesting, which aliases could make endless.
const maxGroupDepth = 100

func (l *loader) yamlGroup(c *yconv, key, data *yaml.Node, depth int) *Group {
	name := key.Value
	if name == "" {
		l.ds.Add(c.pos(key), "empty group name", "")
		return nil
	}
	if depth > maxGroupDepth {
		l.ds.Add(c.pos(key), fmt.Sprintf("groups nested more than %d deep under %q", maxGroupDepth, name), "")
		return nil
	}
	g := l.addGroup(name, c.pos(key))
	if isNull(data) {
		return g
	}
	data = resolve(data)
	if data.Kind != yaml.MappingNode {
		l.ds.Add(c.pos(data), fmt.Sprintf("group %q must be a mapping, got a %s", name, kindName(data)),
			"a group has hosts, vars and children, each a mapping")
		return g
	}
	for _, p := range c.pairs(data) {
		switch p.key.Value {
		case "hosts":
			l.yamlHosts(c, g, p.val)
		case "vars":
			l.yamlGroupVars(c, g, p.val)
		case "children":
			l.yamlChildren(c, g, p.val, depth)
		default:
			detail := diag.Suggest(p.key.Value, groupKeys)
			if detail != "" {
				detail += " "
			}
			detail += "(a group has only hosts, vars and children)"
			l.ds.Add(c.pos(p.key), fmt.Sprintf("unknown key %q in group %q", p.key.Value, name), detail)
		}
	}
	return g
}

var groupKeys = []string{"hosts", "vars", "children"}

func (l *loader) yamlHosts(c *yconv, g *Group, v *yaml.Node) {
	if isNull(v) {
		return
	}
	v = resolve(v)
	switch v.Kind {
	case yaml.ScalarNode: // "hosts: web1" is allowed by Ansible for a single host
		l.yamlHost(c, g, v, nil)
	case yaml.MappingNode:
		for _, p := range c.pairs(v) {
			l.yamlHost(c, g, p.key, p.val)
		}
	default:
		l.ds.Add(c.pos(v), fmt.Sprintf("hosts of group %q must be a mapping, got a %s", g.Name, kindName(v)),
			`write each host as a key ("web1:"), with its variables under it, not as a list item ("- web1")`)
	}
}

func (l *loader) yamlHost(c *yconv, g *Group, key, vars *yaml.Node) {
	pos := c.pos(key)
	entry, err := parseHostEntry(key.Value)
	if err != nil {
		l.ds.Add(pos, err.Error(), "")
		return
	}
	type kv struct {
		name string
		val  any
		pos  diag.Pos
	}
	var vs []kv
	if !isNull(vars) {
		vars = resolve(vars)
		if vars.Kind != yaml.MappingNode {
			l.ds.Add(c.pos(vars), fmt.Sprintf("variables of host %q must be a mapping, got a %s", key.Value, kindName(vars)),
				`write "name: value" pairs under the host`)
		} else {
			for _, p := range c.pairs(vars) {
				vs = append(vs, kv{p.key.Value, c.value(p.val), c.pos(p.val)})
			}
		}
	}
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

func (l *loader) yamlGroupVars(c *yconv, g *Group, v *yaml.Node) {
	if isNull(v) {
		return
	}
	if resolve(v).Kind != yaml.MappingNode {
		l.ds.Add(c.pos(v), fmt.Sprintf("vars of group %q must be a mapping, got a %s", g.Name, kindName(v)),
			`write "name: value" pairs under vars`)
		return
	}
	for _, p := range c.pairs(v) {
		l.setGroupVar(g, p.key.Value, c.value(p.val), c.pos(p.val))
	}
}

func (l *loader) yamlChildren(c *yconv, g *Group, v *yaml.Node, depth int) {
	if isNull(v) {
		return
	}
	v = resolve(v)
	switch v.Kind {
	case yaml.ScalarNode:
		if child := l.yamlGroup(c, v, nil, depth+1); child != nil {
			l.addChild(g, child, c.pos(v))
		}
	case yaml.MappingNode:
		for _, p := range c.pairs(v) {
			if child := l.yamlGroup(c, p.key, p.val, depth+1); child != nil {
				l.addChild(g, child, c.pos(p.key))
			}
		}
	default:
		l.ds.Add(c.pos(v), fmt.Sprintf("children of group %q must be a mapping, got a %s", g.Name, kindName(v)),
			`write each child group as a key ("etcd:"), not as a list item ("- etcd")`)
	}
}

// loadVarsFile reads a group_vars/ or host_vars/ file: a YAML (or JSON) mapping.
func (l *loader) loadVarsFile(file string) (varMap, bool) {
	var vm varMap
	data, ok := l.readSource(file, diag.Pos{File: file})
	if !ok {
		return vm, false
	}
	// A file encrypted whole is read as its plaintext; its positions name the
	// decrypted text, which has no source line to print (see decryptedSuffix).
	name, whole := file, vault.IsEncrypted(data)
	if whole {
		if data, ok = l.vault.decrypt(data, diag.Pos{File: file, Line: 1, Col: 1}, "the file", &l.ds); !ok {
			return vm, false
		}
		name = file + decryptedSuffix
	}
	root, ds := parseYAMLDoc(name, data)
	l.ds.Append(ds)
	if ds.HasErrors() || root == nil {
		return vm, !ds.HasErrors()
	}
	c := newYconv(name, &l.ds)
	c.vault = l.vault
	if r := resolve(root); r.Kind != yaml.MappingNode {
		if isNull(r) {
			return vm, true
		}
		l.ds.Add(c.pos(r), "a vars file must be a mapping of variable names to values, got a "+kindName(r), "")
		return vm, false
	}
	for _, p := range c.pairs(root) {
		val := c.value(p.val)
		if whole {
			l.vault.whole(val)
		}
		vm.set(p.key.Value, val, c.pos(p.val))
	}
	return vm, true
}
