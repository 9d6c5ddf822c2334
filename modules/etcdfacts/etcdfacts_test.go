package etcdfacts

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
)

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: "3.6.16"}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type inventory map[string][]eval.Host

func (i inventory) Group(name string) []eval.Host { return i[name] }

// host is member name of the lab as the engine gives it to Gather: its
// etcd_url var, and the members as the inventory's etcd group.
func host(c *etcdlab.Cluster, name string) *modules.Host {
	var hosts []eval.Host
	for _, m := range c.Members {
		hosts = append(hosts, eval.Host{Name: m.Name, Vars: map[string]any{"etcd_url": m.ClientURL}})
	}
	return &modules.Host{Name: name, Log: zerolog.Nop(), Vars: map[string]any{"etcd_url": c.Member(name).ClientURL},
		Scope: &eval.Scope{Inventory: inventory{"etcd": hosts}}}
}

func TestRegistered(t *testing.T) {
	f, ok := modules.Default.LookupFacts("etcd")
	if !ok || f.Doc != Doc {
		t.Fatal("the etcd facts are not registered")
	}
	if _, ok := f.Sample.(Facts); !ok {
		t.Errorf("sample is %T, want Facts", f.Sample)
	}
}

// TestExpressions compiles guards against the sample's type, as the loader
// does, and runs them on gathered facts.
func TestExpressions(t *testing.T) {
	c := lab.Get(t)
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	h := host(c, leader)
	// A new cluster's members write their storage version a while after the
	// cluster version is agreed (etcd's storage version monitor); until
	// then it is rightly empty.
	var facts Facts
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if facts, err = Gather(testCtx(t), h); err != nil {
			t.Fatal(err)
		}
		if facts.StorageVersion != "" || time.Now().After(deadline) {
			break
		}
	}
	env := &eval.Env{Vars: map[string]any{"etcd_target": "3.6.16"}, Extra: map[string]any{"etcd": Facts{}}}
	scope := &eval.Scope{Vars: env.Vars, Host: eval.Host{Name: leader}, Extra: map[string]any{"etcd": facts}}
	tests := []struct {
		src  string
		want bool
	}{
		{`etcd.leader == host.name`, true},
		{`etcd.member.version == etcd_target`, true},
		{`etcd.member.leader && etcd.healthy`, true},
		{`etcd.cluster_version == "3.6.0" && etcd.storage_version == "3.6.0"`, true},
		{`len(etcd.members) == 3 && all(etcd.members, .answered && !.learner && .applied_index > 0)`, true},
		{`etcd.server_versions["m2"] == "3.6.16"`, true},
		{`etcd.leader_id == etcd.member.id`, true},
		{`etcd.cluster_id != ""`, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, ds := eval.Compile(tt.src, diag.Pos{}, env, eval.Bool)
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			got, err := p.Bool(scope)
			if err != nil || got != tt.want {
				t.Errorf("%s = %v, %v; facts %+v", tt.src, got, err, facts)
			}
		})
	}
	if _, ds := eval.Compile(`etcd.leadr == host.name`, diag.Pos{}, env, eval.Bool); !ds.HasErrors() {
		t.Error("a typo in a facts field compiles")
	}
}

func TestFollowerAndMemberDown(t *testing.T) {
	c := lab.Get(t)
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	down := "m3"
	if leader == down {
		down = "m2"
	}
	t.Cleanup(func() {
		if err := c.Restart(testCtx(t), down); err != nil {
			t.Fatal(err)
		}
	})
	if err := c.Stop(down); err != nil {
		t.Fatal(err)
	}
	f, err := Gather(testCtx(t), host(c, down))
	if err != nil {
		t.Fatalf("Gather with %s down: %v", down, err)
	}
	if f.Healthy || f.Leader != leader || f.Member.Name != down || f.Member.Answered || f.Member.Version != "" ||
		f.Member.URL != c.Member(down).ClientURL || len(f.ServerVersions) != 2 {
		t.Errorf("facts = %+v", f)
	}
}

func TestEndpointsFromVars(t *testing.T) {
	c := lab.Get(t)
	h := &modules.Host{Name: "m2", Log: zerolog.Nop(), Vars: map[string]any{"etcd_endpoints": []any{c.Member("m2").ClientURL}}}
	f, err := Gather(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	// One endpoint of three: the view is partial, and says so.
	if f.Healthy || f.Member.Name != "m2" || !f.Member.Answered || len(f.Members) != 3 {
		t.Errorf("facts = %+v", f)
	}
	h.Vars["etcd_endpoints"] = []any{"http://127.0.0.29:1"}
	if _, err := Gather(testCtx(t), h); err == nil || !strings.Contains(err.Error(), "no endpoint answers") {
		t.Errorf("Gather with no endpoint up = %v", err)
	}
	h.Vars["etcd_endpoints"] = nil
	if _, err := Gather(testCtx(t), h); err == nil || !strings.Contains(err.Error(), etcdctl.VarEndpoints) {
		t.Errorf("Gather without endpoints = %v", err)
	}
}

// A member restarted on another binary between two readings is read as the
// process it now is: the reading after the restart gives its new version,
// although the reading before left connections open to the old process.
func TestRestartedMemberReadAfresh(t *testing.T) {
	c := lab.Get(t)
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	name := "m3"
	if leader == name {
		name = "m2"
	}
	h := host(c, name)
	read := func(want string) {
		t.Helper()
		f, err := Gather(testCtx(t), h)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Member.Answered || f.Member.Name != name || f.Member.Version != want || f.ServerVersions[name] != want {
			t.Errorf("member %s = %+v, versions %v; want it answering on %s", name, f.Member, f.ServerVersions, want)
		}
	}
	read("3.6.16")
	if err := c.Upgrade(testCtx(t), name, "3.7.3"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Upgrade(testCtx(t), name, "3.6.16"); err != nil {
			t.Fatal(err)
		}
	})
	read("3.7.3")
}
