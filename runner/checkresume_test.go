package runner_test

import (
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/runner"
)

func TestCheckResume(t *testing.T) {
	st := &journal.State{RunID: "r1", Info: event.RunInfo{Runbook: "rb.yml", Inventory: "inv.yml",
		RunbookDigest: "sha256:1", InventoryDigest: "sha256:2",
		Hosts: []string{"h1", "h2"}, Batches: [][]string{{"h1"}, {"h2"}}}}
	same := func() *plan.Plan {
		return &plan.Plan{RunbookDigest: "sha256:1", InventoryDigest: "sha256:2",
			HostNames: []string{"h1", "h2"}, Batches: [][]string{{"h1"}, {"h2"}}}
	}
	tests := []struct {
		name   string
		change func(p *plan.Plan)
		want   string
	}{
		{"the same plan", func(*plan.Plan) {}, ""},
		{"the runbook changed", func(p *plan.Plan) { p.RunbookDigest = "sha256:9" }, "runbook rb.yml changed since the run started"},
		{"the inventory changed", func(p *plan.Plan) { p.InventoryDigest = "sha256:9" }, "inventory inv.yml changed since the run started"},
		{"other hosts", func(p *plan.Plan) { p.HostNames = []string{"h1"} }, "its hosts [h1 h2] differ from the plan's [h1]"},
		{"other batches", func(p *plan.Plan) { p.Batches = [][]string{{"h1", "h2"}} }, "its batches [[h1] [h2]] differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := same()
			tt.change(p)
			err := runner.CheckResume(st, p)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestResumePlanVars(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	st := &journal.State{RunID: "r1", Info: event.RunInfo{Hosts: []string{"h1"}, Batches: [][]string{{"h1"}},
		VarsDigest: plan.VarsDigest(key, map[string]any{"token": "a"})}}
	for _, tt := range []struct {
		extra map[string]any
		ok    bool
	}{
		{map[string]any{"token": "a"}, true},
		{map[string]any{"token": "b"}, false},
		{nil, false},
	} {
		p := &plan.Plan{HostNames: []string{"h1"}, Batches: [][]string{{"h1"}}, ExtraVars: tt.extra}
		got, err := runner.ResumePlan(st, p, key)
		switch {
		case tt.ok && (err != nil || got != p):
			t.Errorf("-e %v: refused (%v) or another plan", tt.extra, err)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), "the -e variables changed since the run started")):
			t.Errorf("-e %v: got %v, want the -e variables refused", tt.extra, err)
		}
	}
}
