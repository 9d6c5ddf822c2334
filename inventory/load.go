package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/input"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/inventory/vault"
)

// yamlExts are the extensions Ansible reads as YAML (JSON being YAML).
var yamlExts = []string{".yml", ".yaml", ".json"}

// ignoredExts are skipped in an inventory directory: Ansible's default
// INVENTORY_IGNORE_EXTS (backups, docs, retry files).
var ignoredExts = []string{".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry"}

// maxInventoryBytes bounds the files of one inventory together (a folder,
// group_vars, host_vars).
var maxInventoryBytes int64 = 64 << 20 // a var: tests lower it

// maxDirDepth bounds the walk of an inventory directory (symlinks can loop).
const maxDirDepth = 20

// Load reads the inventory at path, as ansible-inventory -i path would:
//   - a .yml, .yaml or .json file is a YAML inventory;
//   - any other file is an INI inventory (a file with no extension is read as
//     YAML when it holds a YAML mapping, as Ansible tries YAML first);
//   - a directory is every inventory file in it, recursively, in name order,
//     skipping hidden files and Ansible's ignored extensions (.md, .txt, .bak, ...).
//
// group_vars/ and host_vars/ next to the file (or in the directory) are read too.
//
// The returned diagnostics may hold warnings only; when they hold an error, the
// Inventory is incomplete and good only for Sources, to print the errors.
//
// Vault-encrypted data is refused; LoadWith decrypts it.
func Load(path string) (*Inventory, diag.Diags) { return LoadWith(path, Options{}) }

// LoadWith is Load with options: the vault passwords that decrypt group_vars/ and
// host_vars/ files encrypted whole with ansible-vault encrypt, and !vault values
// in YAML files. Every decrypted value is listed by Secrets, and commands that
// print variables (WriteList, HostVars, WriteGraphVars) show a placeholder for it.
func LoadWith(path string, opts Options) (*Inventory, diag.Diags) {
	l := newLoader(opts)
	l.load(path)
	l.done()
	return l.inv, l.ds
}

func (l *loader) load(path string) {
	st, err := os.Stat(path)
	if err != nil {
		l.ds.Add(diag.Pos{File: path}, "cannot read inventory: "+describeErr(err), "")
		return
	}
	baseDir := filepath.Dir(path)
	if st.IsDir() {
		baseDir = path
		l.loadDir(path, 0)
	} else {
		l.loadFile(path)
	}
	l.reconcile()
	l.loadVarsDirs(baseDir)
	l.finish()
	if len(l.inv.hosts) == 0 && !l.ds.HasErrors() {
		l.ds.Warnf(diag.Pos{File: path}, "the inventory has no hosts")
	}
	l.ds.Sort()
}

// done hands the decrypted values to the inventory and takes them out of the
// diagnostics: a message quoting a bad value ("ansible_port: ... is not an
// integer") must not print a secret.
func (l *loader) done() {
	l.inv.vaulted = l.vault.plain
	if len(l.vault.plain) == 0 {
		return
	}
	values := l.inv.VaultedValues()
	l.inv.secrets.Add(values...)
	var set redact.Set
	set.Add(values...)
	for i := range l.ds {
		l.ds[i].Summary = set.Redact(l.ds[i].Summary)
		l.ds[i].Detail = set.Redact(l.ds[i].Detail)
	}
}

func describeErr(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file or directory"
	case errors.As(err, &pe):
		return pe.Err.Error()
	}
	return err.Error()
}

type loader struct {
	inv     *Inventory
	ds      diag.Diags
	visited map[string]bool // real paths of directories walked
	vault   *vaultState
	read    int64 // bytes read from every file so far
}

func newLoader(opts Options) *loader {
	l := &loader{
		vault: newVaultState(opts.Vault),
		inv: &Inventory{
			hostByName: map[string]*Host{},
			groups:     map[string]*Group{},
			sources:    diag.Sources{},
		},
		visited: map[string]bool{},
	}
	all := l.addGroup("all", diag.Pos{})
	l.addChild(all, l.addGroup("ungrouped", diag.Pos{}), diag.Pos{})
	return l
}

// readSource reads a file and keeps it for Files and Sources.
// Each file is bounded by input.MaxFileSize, and all of them together by
// maxInventoryBytes, so a directory of many big files is refused too.
func (l *loader) readSource(file string, pos diag.Pos) ([]byte, bool) {
	data, err := input.ReadFile(file)
	if err != nil {
		l.ds.Add(pos, "cannot read "+file+": "+describeErr(err), "")
		return nil, false
	}
	l.read += int64(len(data))
	if l.read > maxInventoryBytes {
		l.ds.Add(pos, fmt.Sprintf("cannot read %s: the inventory's files hold more than %s together, the limit for one inventory", file, input.Size(maxInventoryBytes)), "")
		return nil, false
	}
	l.inv.files = append(l.inv.files, file)
	l.inv.sources[file] = data
	return data, true
}

func (l *loader) loadDir(dir string, depth int) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		if l.visited[real] {
			return
		}
		l.visited[real] = true
	}
	if depth > maxDirDepth {
		l.ds.Add(diag.Pos{File: dir}, fmt.Sprintf("inventory directories nested more than %d deep", maxDirDepth), "")
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.ds.Add(diag.Pos{File: dir}, "cannot read inventory directory: "+describeErr(err), "")
		return
	}
	for _, e := range entries {
		name := e.Name()
		if ignoredInDir(name) {
			continue
		}
		full := filepath.Join(dir, name)
		st, err := os.Stat(full) // follows symlinks, as Ansible does
		if err != nil {
			l.ds.Add(diag.Pos{File: full}, "cannot read "+full+": "+describeErr(err), "")
			continue
		}
		switch {
		case st.IsDir():
			l.loadDir(full, depth+1)
		case st.Mode().IsRegular():
			l.loadFile(full)
		}
	}
}

// ignoredInDir mirrors Ansible's IGNORED pattern for inventory directories.
func ignoredInDir(name string) bool {
	if strings.HasPrefix(name, ".") || name == "group_vars" || name == "host_vars" || name == "vars_plugins" {
		return true
	}
	for _, ext := range ignoredExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func (l *loader) loadFile(file string) {
	data, ok := l.readSource(file, diag.Pos{File: file})
	if !ok {
		return
	}
	start := diag.Pos{File: file, Line: 1, Col: 1}
	switch {
	case bytes.HasPrefix(data, []byte("#!")):
		l.ds.Add(start, "executable inventory scripts are not supported",
			"write the inventory as YAML or INI (ansible-inventory -i SCRIPT --list -y prints it as YAML)")
		return
	case vault.IsEncrypted(data):
		l.ds.Add(start, "vault-encrypted inventory files are not supported",
			"encrypt the group_vars/ and host_vars/ files instead, or single values with ansible-vault encrypt_string, and keep the hosts in clear")
		return
	}
	ext := filepath.Ext(file)
	switch {
	case contains(yamlExts, ext):
		root, ds := parseYAMLDoc(file, data)
		l.ds.Append(ds)
		if ds.HasErrors() {
			return
		}
		if root == nil || isNull(root) {
			l.ds.Warnf(diag.Pos{File: file}, "empty inventory file")
			return
		}
		l.parseYAMLInventory(file, root)
	case ext == ".toml":
		l.ds.Add(start, "TOML inventories are not supported", "convert it to YAML or INI")
	case ext == "":
		// Ansible tries its YAML plugin first on a file without extension.
		if root, ds := parseYAMLDoc(file, data); !ds.HasErrors() && root != nil && resolve(root).Kind == yaml.MappingNode {
			l.ds.Append(ds)
			l.parseYAMLInventory(file, root)
			return
		}
		l.parseINI(file, data)
	default:
		l.parseINI(file, data)
	}
}

// addGroup returns the group called name, creating it on first use.
func (l *loader) addGroup(name string, pos diag.Pos) *Group {
	if g, ok := l.inv.groups[name]; ok {
		return g
	}
	if i := strings.IndexAny(name, " \t,:!&*?[]"); i >= 0 || strings.HasPrefix(name, "~") {
		bad := "~"
		if i >= 0 {
			bad = name[i : i+1]
		}
		l.ds.Warnf(pos, "group name %q cannot be used in host patterns (it contains %q)", name, bad)
	}
	g := &Group{Name: name, Pos: pos, Priority: 1}
	l.inv.groups[name] = g
	l.inv.groupOrder = append(l.inv.groupOrder, g)
	return g
}

// addHost returns the host called name, creating it on first use, and makes it
// a member of g.
func (l *loader) addHost(name string, g *Group, pos diag.Pos) *Host {
	h, ok := l.inv.hostByName[name]
	if !ok {
		h = &Host{Name: name, Pos: pos}
		l.inv.hostByName[name] = h
		l.inv.hosts = append(l.inv.hosts, h)
	}
	if g != nil && !hasGroup(h.direct, g) { // h.direct is short; g.hosts may be long
		g.hosts = append(g.hosts, h)
		h.direct = append(h.direct, g)
	}
	return h
}

func hasGroup(list []*Group, g *Group) bool {
	for _, x := range list {
		if x == g {
			return true
		}
	}
	return false
}

// addChild makes child a child group of parent, refusing cycles: Ansible fails
// on them too, and a cycle would make variable precedence meaningless.
func (l *loader) addChild(parent, child *Group, pos diag.Pos) {
	if hasGroup(parent.children, child) {
		return
	}
	if child.Name == "all" {
		l.ds.Add(pos, fmt.Sprintf("group \"all\" cannot be a child of %q", parent.Name),
			"every group is already in all")
		return
	}
	if child == parent {
		l.ds.Add(pos, fmt.Sprintf("group %q cannot be its own child", child.Name), "")
		return
	}
	if path := groupPath(child, parent, map[*Group]bool{}); path != nil {
		l.ds.Add(pos, fmt.Sprintf("group %q would be its own ancestor: %s -> %s", child.Name, strings.Join(path, " -> "), child.Name),
			"a group cannot contain itself, directly or through its children")
		return
	}
	parent.children = append(parent.children, child)
	child.parents = append(child.parents, parent)
}

// groupPath returns the names on a path of child links from "from" to "to", or nil.
func groupPath(from, to *Group, seen map[*Group]bool) []string {
	if from == to {
		return []string{to.Name}
	}
	if seen[from] {
		return nil
	}
	seen[from] = true
	for _, c := range from.children {
		if p := groupPath(c, to, seen); p != nil {
			return append([]string{from.Name}, p...)
		}
	}
	return nil
}

// setGroupVar sets a variable of the inventory source on g. As in Ansible,
// ansible_group_priority is the group's priority, not a variable.
func (l *loader) setGroupVar(g *Group, name string, v any, pos diag.Pos) {
	if name != "ansible_group_priority" {
		g.invVars.set(name, v, pos)
		return
	}
	n, ok := toInt(v)
	if !ok {
		l.ds.Add(pos, fmt.Sprintf("ansible_group_priority: %s is not an integer", showValue(v)),
			"the group with the higher priority wins among groups of the same depth")
		return
	}
	g.Priority = n
}

// reconcile applies Ansible's rules once every source is read: a group with no
// parent is a child of all, and a host in no group but all is in ungrouped (and
// only such hosts are).
func (l *loader) reconcile() {
	all, ungrouped := l.inv.groups["all"], l.inv.groups["ungrouped"]
	for _, g := range l.inv.groupOrder {
		if g != all && len(g.parents) == 0 {
			l.addChild(all, g, g.Pos)
		}
	}
	leave := map[*Host]bool{}
	for _, h := range l.inv.hosts {
		others := false
		for _, g := range h.direct {
			if g != all && g != ungrouped {
				others = true
			}
		}
		in := hasGroup(h.direct, ungrouped)
		switch {
		case in && others:
			leave[h] = true
			h.direct = removeGroup(h.direct, ungrouped)
		case !in && !others:
			ungrouped.hosts = append(ungrouped.hosts, h)
			h.direct = append(h.direct, ungrouped)
		}
		h.direct = removeGroup(h.direct, all)
	}
	if len(leave) > 0 {
		kept := ungrouped.hosts[:0]
		for _, h := range ungrouped.hosts {
			if !leave[h] {
				kept = append(kept, h)
			}
		}
		ungrouped.hosts = kept
	}
	// Every host is in all; listing some as its direct members (those under
	// all.hosts in YAML) would only make YAML and INI inventories differ.
	all.hosts = nil
}

func removeGroup(list []*Group, g *Group) []*Group {
	out := list[:0]
	for _, x := range list {
		if x != g {
			out = append(out, x)
		}
	}
	return out
}

// loadVarsDirs reads group_vars/ and host_vars/ in baseDir, for the groups and
// hosts that exist, as Ansible's host_group_vars plugin does.
func (l *loader) loadVarsDirs(baseDir string) {
	for _, kind := range []string{"group_vars", "host_vars"} {
		dir := filepath.Join(baseDir, kind)
		st, err := os.Stat(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				l.ds.Add(diag.Pos{File: dir}, "cannot read "+dir+": "+describeErr(err), "")
			}
			continue
		}
		if !st.IsDir() {
			continue
		}
		claimed := map[string]bool{}
		var names []string
		if kind == "group_vars" {
			for _, g := range l.inv.groupOrder {
				names = append(names, g.Name)
				for _, f := range l.findVarsFiles(dir, g.Name, claimed) {
					if vm, ok := l.loadVarsFile(f); ok {
						g.fileVars.overlay(vm)
					}
				}
			}
		} else {
			for _, h := range l.inv.hosts {
				names = append(names, h.Name)
				for _, f := range l.findVarsFiles(dir, h.Name, claimed) {
					if vm, ok := l.loadVarsFile(f); ok {
						h.fileVars.overlay(vm)
					}
				}
			}
		}
		l.warnUnclaimed(dir, kind, claimed, names)
	}
}

// varsFileExts are the names Ansible tries, in order, for an entity's vars:
// NAME (a file or a folder), NAME.yml, NAME.yaml, NAME.json; only the first found is read.
var varsFileExts = []string{"", ".yml", ".yaml", ".json"}

func (l *loader) findVarsFiles(dir, name string, claimed map[string]bool) []string {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return nil // never a path outside dir
	}
	var found []string
	first := ""
	for _, ext := range varsFileExts {
		p := filepath.Join(dir, name+ext)
		st, err := os.Stat(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				l.ds.Add(diag.Pos{File: p}, "cannot read "+p+": "+describeErr(err), "")
			}
			continue
		}
		claimed[name+ext] = true
		if first != "" {
			l.ds.Warnf(diag.Pos{File: p}, "%s is ignored because %s exists (as in Ansible, only the first of %s, %s.yml, %s.yaml, %s.json is read)",
				p, first, name, name, name, name)
			continue
		}
		first = p
		if st.IsDir() {
			found = l.dirVarsFiles(p, 0)
		} else {
			found = []string{p}
		}
	}
	return found
}

// dirVarsFiles lists the vars files of a group_vars/NAME/ folder as Ansible
// does: in name order, recursing into folders without an extension, keeping
// files without an extension or with a YAML one, skipping hidden and backup files.
func (l *loader) dirVarsFiles(dir string, depth int) []string {
	if depth > maxDirDepth {
		l.ds.Add(diag.Pos{File: dir}, fmt.Sprintf("vars folders nested more than %d deep", maxDirDepth), "")
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.ds.Add(diag.Pos{File: dir}, "cannot read "+dir+": "+describeErr(err), "")
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		full := filepath.Join(dir, name)
		st, err := os.Stat(full)
		if err != nil {
			l.ds.Add(diag.Pos{File: full}, "cannot read "+full+": "+describeErr(err), "")
			continue
		}
		ext := filepath.Ext(name)
		switch {
		case st.IsDir() && ext == "":
			out = append(out, l.dirVarsFiles(full, depth+1)...)
		case st.Mode().IsRegular() && (ext == "" || contains(yamlExts, ext)):
			out = append(out, full)
		}
	}
	return out
}

// warnUnclaimed warns about vars files for no known group or host: Ansible
// ignores them silently, which hides typos such as group_vars/etcdd.yml.
func (l *loader) warnUnclaimed(dir, kind string, claimed map[string]bool, names []string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // reported by findVarsFiles
	}
	what := "group"
	if kind == "host_vars" {
		what = "host"
	}
	for _, e := range entries {
		name := e.Name()
		if claimed[name] || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		ext := filepath.Ext(name)
		entity := name
		if contains(yamlExts, ext) {
			entity = strings.TrimSuffix(name, ext)
		} else if ext != "" && !e.IsDir() {
			continue // not a vars file name at all (README.md)
		}
		detail := diag.Suggest(entity, names)
		l.ds.Warnf(diag.Pos{File: filepath.Join(dir, name)}, "no %s %q in the inventory, so this file is not read%s",
			what, entity, prefixIf("; ", detail))
	}
}

func prefixIf(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// finish computes depths, memberships and merged variables, and validates
// connection variables.
func (l *loader) finish() {
	inv := l.inv
	all := inv.groups["all"]
	depth := map[*Group]int{}
	var depthOf func(g *Group, guard int) int
	depthOf = func(g *Group, guard int) int {
		if d, ok := depth[g]; ok {
			return d
		}
		d := 0
		if guard < len(inv.groupOrder)+1 {
			for _, p := range g.parents {
				d = max(d, depthOf(p, guard+1)+1)
			}
		}
		depth[g] = d
		return d
	}
	for _, g := range inv.groupOrder {
		g.Depth = depthOf(g, 0)
	}
	// Ranks computed once, so that each host's groups are put in order by
	// sorting small integers: a host of a deep inventory is in thousands of
	// groups, and comparing them by name and depth for every host was most
	// of the time of loading one.
	//   byPrecedence: Ansible's order, deeper groups win, then higher
	//   priority, then the later name;
	//   byName: group_names' order.
	byPrecedence := slices.Clone(inv.groupOrder)
	sort.SliceStable(byPrecedence, func(i, j int) bool {
		a, b := byPrecedence[i], byPrecedence[j]
		if a.Depth != b.Depth {
			return a.Depth < b.Depth
		}
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		return a.Name < b.Name
	})
	byName := slices.Clone(inv.groupOrder)
	sort.SliceStable(byName, func(i, j int) bool { return byName[i].Name < byName[j].Name })
	precRank := make(map[*Group]int32, len(byPrecedence))
	for i, g := range byPrecedence {
		precRank[g] = int32(i)
	}
	nameRank := make(map[*Group]int32, len(byName))
	for i, g := range byName {
		nameRank[g] = int32(i)
	}
	// seen[rank] == stamp marks the groups of the host being done.
	seen := make([]int, len(byPrecedence))
	var stack []*Group
	var ranks []int32
	for i, h := range inv.hosts {
		h.index = i
		stamp := i + 1
		seen[precRank[all]] = stamp
		ranks = append(ranks[:0], precRank[all])
		stack = append(stack[:0], h.direct...)
		for len(stack) > 0 {
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if r := precRank[g]; seen[r] != stamp {
				seen[r] = stamp
				ranks = append(ranks, r)
				stack = append(stack, g.parents...)
			}
		}
		groups := make([]*Group, 0, len(ranks)-1)
		names := make([]int32, 0, len(ranks))
		slices.Sort(ranks)
		for _, r := range ranks {
			g := byPrecedence[r]
			g.members = append(g.members, h)
			names = append(names, nameRank[g])
			if g != all {
				groups = append(groups, g)
			}
		}
		slices.Sort(names)
		h.Groups = make([]string, len(names))
		for j, r := range names {
			h.Groups[j] = byName[r].Name
		}
		// The order of Ansible's VariableManager: inventory-file vars of all, then
		// of each group; group_vars/all, then group_vars/ of each group; the
		// host's inventory vars; host_vars/.
		var v varMap
		v.overlay(all.invVars)
		for _, g := range groups {
			v.overlay(g.invVars)
		}
		v.overlay(all.fileVars)
		for _, g := range groups {
			v.overlay(g.fileVars)
		}
		v.overlay(h.invVars)
		v.overlay(h.fileVars)
		if v.vals == nil {
			v.vals, v.pos = map[string]any{}, map[string]diag.Pos{}
		}
		h.Vars, h.varPos = v.vals, v.pos
		conn, ds := parseConn(h.Name, h.Vars, h.varPos)
		l.ds.Append(ds)
		h.conn = conn
		h.direct, h.invVars, h.fileVars = nil, varMap{}, varMap{}
		if g, ok := inv.groups[h.Name]; ok {
			l.ds.Warnf(h.Pos, "%q is both a host and a group; patterns naming it select the host", g.Name)
		}
	}
	for _, g := range inv.groupOrder {
		g.Hosts = make([]string, len(g.hosts))
		for i, h := range g.hosts {
			g.Hosts[i] = h.Name
		}
		g.Children = make([]string, len(g.children))
		for i, c := range g.children {
			g.Children[i] = c.Name
		}
		g.Parents = make([]string, len(g.parents))
		for i, p := range g.parents {
			g.Parents[i] = p.Name
		}
		var v varMap
		v.overlay(g.invVars)
		v.overlay(g.fileVars)
		g.Vars = v.vals
		if g.Vars == nil {
			g.Vars = map[string]any{}
		}
	}
}
