package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: "3.6.16"}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func TestValidate(t *testing.T) {
	eps := arg.StringList{"http://10.0.0.1:2379"}
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"dest only", Module{Etcd: &Etcd{Dest: "backups/etcd.db"}}, "", ""},
		{"every argument", Module{Etcd: &Etcd{Dest: "/var/backups/etcd.db", From: "etcd-2", Conn: etcdarg.Conn{Endpoints: eps}}}, "", ""},
		{"templated dest", Module{Etcd: &Etcd{Dest: "backups/{{ host.name }}.db"}}, "", ""},

		{"no store", Module{}, "", "no store given; give etcd"},
		{"empty dest", Module{Etcd: &Etcd{}}, "etcd.dest", "is empty"},
		{"folder dest", Module{Etcd: &Etcd{Dest: "backups/"}}, "etcd.dest", `"backups/" is a folder; name the file, like backups/etcd.db`},
		{"bad endpoint", Module{Etcd: &Etcd{Dest: "a.db", Conn: etcdarg.Conn{Endpoints: arg.StringList{"10.0.0.1"}}}}, "etcd.endpoints", "not a client URL"},
		{"ca with http", Module{Etcd: &Etcd{Dest: "a.db", Conn: etcdarg.Conn{Endpoints: eps, CAFile: "ca.pem"}}}, "etcd.ca_file", "only used with https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func TestDefaults(t *testing.T) {
	m := &Module{Etcd: &Etcd{Dest: "a.db"}}
	d := m.Defaults()
	if d.Etcd.From != Leader || d.Etcd.TransferTimeout.Std() != 10*time.Minute || d.Etcd.Timeout.Std() != 5*time.Second || d.Etcd.DialTimeout.Std() != 2*time.Second {
		t.Errorf("Defaults = %+v", *d.Etcd)
	}
	if m.Etcd.From != "" {
		t.Error("Defaults changed the decoded value")
	}
}

// inventory is the group look-up the engine gives a step through its scope.
type inventory map[string][]eval.Host

func (i inventory) Group(name string) []eval.Host { return i[name] }

// host is the step's host as the engine builds it, with the lab's members
// as the inventory's etcd group, so the step finds them by default.
func host(t *testing.T, c *etcdlab.Cluster) *modules.Host {
	var hosts []eval.Host
	for _, m := range c.Members {
		hosts = append(hosts, eval.Host{Name: m.Name, Addr: m.Addr, Vars: map[string]any{"etcd_url": m.ClientURL}})
	}
	return &modules.Host{Name: "m1", Vars: map[string]any{"etcd_url": c.Members[0].ClientURL},
		RunbookDir: t.TempDir(), Log: zerolog.Nop(), Scope: &eval.Scope{Inventory: inventory{"etcd": hosts}}}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestSnapshotFromTheLeader(t *testing.T) {
	c := lab.Get(t)
	cli, err := c.Client("")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put, err := cli.Put(testCtx(t), "/snapshot/key", strings.Repeat("x", 1000))
	if err != nil {
		t.Fatal(err)
	}
	h := host(t, c)
	res, err := (&Module{Etcd: &Etcd{Dest: "backups/etcd.db"}}).Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	d := res.Data
	dest := filepath.Join(h.RunbookDir, "backups", "etcd.db")
	if !res.Changed || d["path"] != dest || d["member"] != leader || d["endpoint"] != c.Member(leader).ClientURL ||
		d["member_id"] != etcdctl.ID(c.Member(leader).ID) || d["cluster_id"] != etcdctl.ID(c.ClusterID) ||
		d["server_version"] != "3.6.16" || d["cluster_version"] != "3.6.0" || d["storage_version"] != "3.6.0" ||
		d["replaced"] != false || len(d["members"].([]map[string]any)) != 3 {
		t.Errorf("result = %v", res)
	}
	if rev := d["revision"].(int64); rev < put.Header.Revision {
		t.Errorf("revision %d, want at least %d, the revision of the last write", rev, put.Header.Revision)
	}
	size, sum, err := etcdctl.VerifySnapshot(dest)
	if err != nil {
		t.Fatal(err)
	}
	if d["size"] != size || d["sha256"] != sum {
		t.Errorf("size %v sha256 %v; the file has %d %s", d["size"], d["sha256"], size, sum)
	}
}

func TestSnapshotFromAMember(t *testing.T) {
	c := lab.Get(t)
	h := host(t, c)
	m := &Module{Etcd: &Etcd{Dest: filepath.Join(h.RunbookDir, "m3.db"), From: "m3",
		Conn: etcdarg.Conn{Endpoints: arg.StringList(c.Endpoints())}}}
	res, err := m.Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["member"] != "m3" || res.Data["endpoint"] != c.Member("m3").ClientURL {
		t.Errorf("result = %v, want the snapshot from m3", res.Data)
	}
	again, err := m.Run(testCtx(t), h)
	if err != nil || again.Data["replaced"] != true {
		t.Errorf("second run = %v, %v; want the file replaced", again.Data, err)
	}
}

func TestSnapshotCheckSavesNothing(t *testing.T) {
	c := lab.Get(t)
	h := host(t, c)
	res, err := (&Module{Etcd: &Etcd{Dest: "b/etcd.db"}}).Check(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Data["member"] == "" || res.Data["db_size"].(int64) <= 0 {
		t.Errorf("result = %v", res)
	}
	if _, err := os.Stat(filepath.Join(h.RunbookDir, "b")); !os.IsNotExist(err) {
		t.Errorf("--check made the folder: %v", err)
	}
}

func TestSnapshotErrors(t *testing.T) {
	c := lab.Get(t)
	tests := []struct {
		name    string
		m       *Module
		vars    map[string]any
		wantErr string
	}{
		{"unknown member", &Module{Etcd: &Etcd{Dest: "a.db", From: "m9"}}, nil, `from: no member is called "m9"; the members are [m1 m2 m3]`},
		{"no endpoints anywhere", &Module{Etcd: &Etcd{Dest: "a.db"}}, map[string]any{"etcd_group": "nothing"}, "group nothing has no hosts"},
		{"dest is a folder", &Module{Etcd: &Etcd{Dest: "."}}, nil, "is not a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(t, c)
			for k, v := range tt.vars {
				h.Vars[k] = v
			}
			_, err := tt.m.Run(testCtx(t), h)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
