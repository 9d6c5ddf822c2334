package eval

import (
	"time"

	"github.com/runbookhq/runbook/internal/diag"
)

// inventory is a fixed inventory: groups in order, and every host as a
// pattern of its own, as the real inventory resolves host patterns.
type inventory struct {
	hosts  []Host
	groups map[string][]string
}

func (inv *inventory) Group(name string) []Host {
	var out []Host
	for _, h := range inv.hosts {
		if h.Name == name {
			return []Host{h}
		}
	}
	for _, n := range inv.groups[name] {
		for _, h := range inv.hosts {
			if h.Name == n {
				out = append(out, h)
			}
		}
	}
	return out
}

var testInventory = &inventory{
	hosts: []Host{
		{Name: "etcd-1", Addr: "10.0.0.1", Groups: []string{"etcd"}, Vars: map[string]any{"etcd_url": "https://10.0.0.1:2379"}},
		{Name: "etcd-2", Addr: "10.0.0.2", Groups: []string{"etcd"}, Vars: map[string]any{"etcd_url": "https://10.0.0.2:2379"}},
		{Name: "etcd-3", Addr: "10.0.0.3", Groups: []string{"etcd"}, Vars: map[string]any{"etcd_url": "https://10.0.0.3:2379"}},
		{Name: "web-1", Addr: "10.0.1.1", Groups: []string{"web"}},
	},
	groups: map[string][]string{"etcd": {"etcd-3", "etcd-1", "etcd-2"}, "web": {"web-1"}},
}

var started = time.Date(2025, 1, 6, 3, 0, 0, 0, time.UTC)

// testEnv declares what testScope provides.
func testEnv(strict bool) *Env {
	return &Env{
		Vars: map[string]any{
			"etcd_version":  "3.6.16",
			"etcd_bin":      "/usr/local/bin/etcd",
			"etcd_data_dir": nil,
			"count":         3,
			"ratio":         0.5,
			"tags":          []any{"a", "b"},
			"limits":        map[string]any{"cpu": 2},
			"empty":         "",
		},
		Strict:     strict,
		Registered: []string{"health"},
		Result:     true,
		Failed:     true,
		Extra:      map[string]any{"etcd": map[string]any{"leader": ""}},
	}
}

func testScope() *Scope {
	h := testInventory.hosts[0]
	return &Scope{
		Vars: map[string]any{
			"etcd_version":  "3.6.16",
			"etcd_bin":      "/usr/local/bin/etcd",
			"etcd_data_dir": nil,
			"count":         3,
			"ratio":         0.5,
			"tags":          []any{"a", "b"},
			"limits":        map[string]any{"cpu": 2},
			"empty":         "",
		},
		Host:       h,
		Run:        Run{ID: "r-20250106", Batch: 2, Started: started},
		Registered: map[string]any{"health": map[string]any{"rc": 0, "stdout": `{"health": true}`}},
		Result:     map[string]any{"rc": 1, "stdout": "ok", "changed": true},
		Failed:     map[string]any{"name": "swap", "error": "exit 1"},
		Completed:  []string{"snapshot", "stop"},
		Inventory:  testInventory,
		Extra:      map[string]any{"etcd": map[string]any{"leader": "etcd-1"}},
		// The examples' server: promql_test.go asks a real one.
		PromQL: func(string) (float64, error) { return 3, nil },
	}
}

var at = diag.Pos{File: "rb.yml", Line: 12, Col: 9}

// lines returns the diagnostics as they are printed.
func lines(ds diag.Diags) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Error())
	}
	return out
}
