package inventory

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/input"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with the file, or rewrites the file under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update to accept):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// mustLoad loads an inventory that must have no errors.
func mustLoad(t testing.TB, path string) *Inventory {
	t.Helper()
	inv, ds := Load(path)
	if ds.HasErrors() {
		var b bytes.Buffer
		_ = diag.WriteText(&b, ds, inv.Sources())
		t.Fatalf("Load(%s):\n%s", path, b.String())
	}
	return inv
}

func hostNames(hs []*Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

func TestYAMLAndINIAgree(t *testing.T) {
	y := mustLoad(t, "testdata/basic/hosts.yml")
	i := mustLoad(t, "testdata/basic/hosts.ini")
	if got, want := hostNames(i.Hosts()), hostNames(y.Hosts()); !slices.Equal(got, want) {
		t.Errorf("hosts: INI %v, YAML %v", got, want)
	}
	if got, want := i.Groups(), y.Groups(); !slices.Equal(got, want) {
		t.Errorf("groups: INI %v, YAML %v", got, want)
	}
	for _, yh := range y.Hosts() {
		ih, ok := i.Host(yh.Name)
		if !ok {
			t.Errorf("host %s missing from INI", yh.Name)
			continue
		}
		if !reflect.DeepEqual(ih.Vars, yh.Vars) {
			t.Errorf("%s vars: INI %#v, YAML %#v", yh.Name, ih.Vars, yh.Vars)
		}
		if !slices.Equal(ih.Groups, yh.Groups) {
			t.Errorf("%s groups: INI %v, YAML %v", yh.Name, ih.Groups, yh.Groups)
		}
	}
	for _, name := range y.Groups() {
		yg, _ := y.Group(name)
		ig, _ := i.Group(name)
		if !slices.Equal(yg.Hosts, ig.Hosts) || !slices.Equal(yg.Children, ig.Children) || !reflect.DeepEqual(yg.Vars, ig.Vars) {
			t.Errorf("group %s: INI %+v, YAML %+v", name, ig, yg)
		}
	}
	var yl, il bytes.Buffer
	if err := y.WriteList(&yl); err != nil {
		t.Fatal(err)
	}
	if err := i.WriteList(&il); err != nil {
		t.Fatal(err)
	}
	if yl.String() != il.String() {
		t.Errorf("--list differs:\nINI:\n%s\nYAML:\n%s", il.String(), yl.String())
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name, path string
		write      func(inv *Inventory, w *bytes.Buffer) error
	}{
		{"basic.list.json", "testdata/basic/hosts.yml", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteList(w) }},
		{"basic.graph.txt", "testdata/basic/hosts.yml", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteGraph(w, "") }},
		{"basic.graph-web.txt", "testdata/basic/hosts.ini", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteGraph(w, "web") }},
		{"basic.graph-vars.txt", "testdata/basic/hosts.ini", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteGraphVars(w, "all") }},
		{"basic.host-web02.json", "testdata/basic/hosts.yml", func(inv *Inventory, w *bytes.Buffer) error {
			b, err := inv.HostVars("web02")
			w.Write(b)
			return err
		}},
		{"precedence.list.json", "testdata/precedence/hosts.yml", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteList(w) }},
		{"precedence.graph-vars.txt", "testdata/precedence/hosts.yml", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteGraphVars(w, "") }},
		{"dir.list.json", "testdata/dir", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteList(w) }},
		{"dir.graph.txt", "testdata/dir", func(inv *Inventory, w *bytes.Buffer) error { return inv.WriteGraph(w, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := mustLoad(t, tt.path)
			var b bytes.Buffer
			if err := tt.write(inv, &b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata/golden", tt.name), b.Bytes())
		})
	}
}

func TestPrecedence(t *testing.T) {
	inv := mustLoad(t, "testdata/precedence/hosts.yml")
	tests := []struct {
		host, name string
		want       any
		why        string
	}{
		{"h1", "who", "h1-file", "host_vars/ beats everything in the inventory"},
		{"h2", "who", "h2-inv", "the host's inventory vars beat group_vars/"},
		{"h3", "who", "all-file", "group_vars/all.yml beats all's inventory vars"},
		{"h1", "level", "child-file", "group_vars/child.yml beats the inventory's group vars"},
		{"h2", "level", "child-file", "the same for every host of the group"},
		{"h3", "level", "all", "a host only in groups without the var gets all's"},
		{"h1", "quirk", "all-file", "group_vars/all beats even a child group's inventory vars, as in Ansible"},
		{"h1", "tie", "b", "same depth and priority: the later name wins"},
		{"h3", "prio", "high", "ansible_group_priority beats the name order"},
		{"h1", "from_parent", true, "YAML 1.1 yes is a boolean, as in Ansible"},
		{"h1", "folder", "override", "a group_vars folder is merged in name order"},
		{"h1", "nested", map[string]any{"a": 9}, "maps are replaced, not merged"},
		{"h2", "deep", true, "subfolders are read, backups (~) are not"},
		{"h2", "extra", "from-host-file", "host_vars/NAME without extension"},
		{"h3", "gv_all", 1, "group_vars/all applies to every host"},
	}
	for _, tt := range tests {
		t.Run(tt.host+"."+tt.name, func(t *testing.T) {
			h, ok := inv.Host(tt.host)
			if !ok {
				t.Fatalf("no host %s", tt.host)
			}
			got, ok := h.Var(tt.name)
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v (set: %v), want %#v: %s", tt.name, got, ok, tt.want, tt.why)
			}
		})
	}
	if _, ok := inv.groups["prio_high"].Vars["ansible_group_priority"]; ok {
		t.Error("ansible_group_priority is the group's priority, not a variable")
	}
	if got := inv.groups["prio_high"].Priority; got != 10 {
		t.Errorf("priority = %d, want 10", got)
	}
	h1, _ := inv.Host("h1")
	if p, ok := h1.VarPos("who"); !ok || p != (diag.Pos{File: "testdata/precedence/host_vars/h1.yml", Line: 1, Col: 6}) {
		t.Errorf("VarPos(who) = %v, %v", p, ok)
	}
	if p, _ := h1.VarPos("tie"); p != (diag.Pos{File: "testdata/precedence/hosts.yml", Line: 30, Col: 14}) {
		t.Errorf("VarPos(tie) = %v", p)
	}
}

func TestDepth(t *testing.T) {
	inv := mustLoad(t, "testdata/precedence/hosts.yml")
	for name, want := range map[string]int{"all": 0, "ungrouped": 1, "parent": 1, "child": 2, "a_same": 1} {
		if g, _ := inv.Group(name); g.Depth != want {
			t.Errorf("%s depth = %d, want %d", name, g.Depth, want)
		}
	}
}

func TestHostGroups(t *testing.T) {
	inv := mustLoad(t, "testdata/basic/hosts.yml")
	tests := map[string][]string{
		"bastion":       {"all", "ungrouped"},
		"etcd2.example": {"all", "etcd"},
		"web02":         {"all", "web", "web_canary"},
		"db-a":          {"all", "db"},
	}
	for host, want := range tests {
		h, _ := inv.Host(host)
		if !slices.Equal(h.Groups, want) {
			t.Errorf("%s groups = %v, want %v", host, h.Groups, want)
		}
		for _, g := range want {
			if !h.InGroup(g) {
				t.Errorf("%s.InGroup(%s) = false", host, g)
			}
		}
		if h.InGroup("nope") {
			t.Errorf("%s.InGroup(nope) = true", host)
		}
	}
}

func TestDirectory(t *testing.T) {
	inv, ds := Load("testdata/dir")
	if len(ds) != 0 {
		t.Fatalf("diagnostics: %v", ds)
	}
	if got, want := hostNames(inv.Hosts()), []string{"etcd1", "etcd2", "etcd3", "web1", "web2"}; !slices.Equal(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	wantFiles := []string{
		"testdata/dir/01-hosts.ini",
		"testdata/dir/02-more.yml",
		"testdata/dir/sub/03-extra",
		"testdata/dir/group_vars/etcd.yml",
		"testdata/dir/host_vars/web1.yml",
	}
	if got := inv.Files(); !slices.Equal(got, wantFiles) {
		t.Errorf("Files() = %v, want %v", got, wantFiles)
	}
	for _, f := range wantFiles {
		if _, ok := inv.Sources()[f]; !ok {
			t.Errorf("Sources() lacks %s", f)
		}
	}
	e3, _ := inv.Host("etcd3")
	if e3.Vars["etcd_port"] != 2379 {
		t.Errorf("etcd3 vars = %v", e3.Vars)
	}
	w1, _ := inv.Host("web1")
	if w1.Vars["web_role"] != "front" {
		t.Errorf("web1 vars = %v", w1.Vars)
	}
}

func TestAllVarNames(t *testing.T) {
	inv := mustLoad(t, "testdata/basic/hosts.yml")
	got := inv.AllVarNames()
	want := map[string]any{
		"ansible_host": "10.0.0.1", "ansible_user": "deploy", "ntp": "pool.ntp.org",
		"ansible_become": true, "etcd_port": 2379, "etcd_role": "member",
		"http_port": 8080, "tags": []any{"a", "b"}, "canary": true, "ansible_port": 2222,
	}
	// Ansible's magic vars, absolute wherever the test runs from.
	abs, err := filepath.Abs("testdata/basic/hosts.yml")
	if err != nil {
		t.Fatal(err)
	}
	want["inventory_file"], want["inventory_dir"] = abs, filepath.Dir(abs)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AllVarNames() = %#v\nwant %#v", got, want)
	}
}

// TestMagicVars: every host gets the file that declared it and its folder,
// absolute, below every variable the inventory sets (inventory --list shows
// only what the inventory sets, as ansible-inventory does).
func TestMagicVars(t *testing.T) {
	inv := mustLoad(t, "testdata/basic/hosts.yml")
	h, ok := inv.Host("web01")
	if !ok {
		t.Fatal("no web01")
	}
	m := h.MagicVars()
	dir, _ := m["inventory_dir"].(string)
	file, _ := m["inventory_file"].(string)
	if !filepath.IsAbs(dir) || !filepath.IsAbs(file) || filepath.Dir(file) != dir || filepath.Base(file) != "hosts.yml" {
		t.Errorf("MagicVars() = %v", m)
	}
	if _, set := h.Vars["inventory_dir"]; set {
		t.Errorf("inventory_dir is in the host's own vars: %v", h.Vars)
	}
}

// TestErrors loads each inventory under testdata/errors and compares the
// diagnostics, printed with their source line, with its .golden file.
func TestErrors(t *testing.T) {
	entries, err := os.ReadDir("testdata/errors")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".golden") {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			path := filepath.Join("testdata/errors", e.Name())
			inv, ds := Load(path)
			if !ds.HasErrors() {
				t.Fatalf("no error; diagnostics: %v", ds)
			}
			var b bytes.Buffer
			if err := diag.WriteText(&b, ds, inv.Sources()); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), "hunter2") {
				t.Errorf("a password was printed:\n%s", b.String())
			}
			golden(t, path+".golden", b.Bytes())
		})
	}
}

func TestWarnings(t *testing.T) {
	_, ds := Load("testdata/warnings/hosts.yml")
	if ds.HasErrors() {
		t.Fatalf("errors: %v", ds)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Error())
	}
	want := []string{
		`testdata/warnings/group_vars/child.json: warning: testdata/warnings/group_vars/child.json is ignored because testdata/warnings/group_vars/child.yml exists (as in Ansible, only the first of child, child.yml, child.yaml, child.json is read)`,
		`testdata/warnings/group_vars/chlid.yml: warning: no group "chlid" in the inventory, so this file is not read; did you mean "child"?`,
		`testdata/warnings/host_vars/h3.yml: warning: no host "h3" in the inventory, so this file is not read; did you mean "h1"?`,
		`testdata/warnings/hosts.yml:5:9: warning: "h1" is both a host and a group; patterns naming it select the host`,
		`testdata/warnings/hosts.yml:7:11: warning: key "x" is given twice (first at line 6); the last one wins`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadMissing(t *testing.T) {
	_, ds := Load(filepath.Join(t.TempDir(), "nope.yml"))
	if !ds.HasErrors() || !strings.Contains(ds.Err().Error(), "cannot read inventory: no such file or directory") {
		t.Errorf("Load(missing) = %v", ds)
	}
}

func TestEmptyInventory(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "empty.yml")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, ds := Load(p)
	if ds.HasErrors() || len(ds) != 2 {
		t.Fatalf("diagnostics: %v", ds)
	}
	if _, err := inv.Select("all"); err == nil {
		t.Error("Select(all) on an empty inventory: no error")
	}
}

// TestNoExtension reads a file without extension as YAML when it is a YAML
// mapping and as INI otherwise, as Ansible's plugin order does.
func TestNoExtension(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	y := mustLoad(t, write("yamlish", "all:\n  hosts:\n    y1:\n"))
	if _, ok := y.Host("y1"); !ok {
		t.Errorf("YAML without extension: hosts %v", hostNames(y.Hosts()))
	}
	i := mustLoad(t, write("inish", "[g]\ni1 a=1\n"))
	if h, ok := i.Host("i1"); !ok || h.Vars["a"] != 1 {
		t.Errorf("INI without extension: hosts %v", hostNames(i.Hosts()))
	}
	p := mustLoad(t, write("plain", "p1\np2:2200\n"))
	if got := hostNames(p.Hosts()); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Errorf("host list without extension: %v", got)
	}
}

func TestLocalExample(t *testing.T) {
	inv := mustLoad(t, "../runbooks/inventory/local.yml")
	hosts, err := inv.Select("app")
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(hosts); !slices.Equal(got, []string{"app1", "app2", "app3"}) {
		t.Fatalf("app = %v", got)
	}
	for i, h := range hosts {
		if h.Connection() != "local" {
			t.Errorf("%s connection = %s", h.Name, h.Connection())
		}
		if h.Vars["app_port"] != 18081+i {
			t.Errorf("%s app_port = %v", h.Name, h.Vars["app_port"])
		}
	}
}

func TestSizeLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		body := "[g]\nh1\n" + strings.Repeat("#", n)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("big/inv.ini", input.MaxFileSize)
	write("many/a.ini", 1000)
	write("many/b.ini", 1000)
	write("many/group_vars/g.yml", 0)

	_, ds := Load(filepath.Join(dir, "big/inv.ini"))
	if err := ds.Err(); err == nil || !strings.Contains(err.Error(), "inv.ini: the file is larger than 4 MiB") {
		t.Errorf("one big file: %v", err)
	}

	old := maxInventoryBytes
	maxInventoryBytes = 1500
	defer func() { maxInventoryBytes = old }()
	_, ds = Load(filepath.Join(dir, "many"))
	if err := ds.Err(); err == nil || !strings.Contains(err.Error(), "b.ini: the inventory's files hold more than 1500 bytes together") {
		t.Errorf("many files: %v", err)
	}
}
