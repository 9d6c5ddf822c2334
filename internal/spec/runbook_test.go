package spec

import (
	"reflect"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules/arg"
)

func loadValid(t *testing.T, name string) *Runbook {
	t.Helper()
	rb, ds := Load("testdata/valid/"+name, testRegistry(), LoadOptions{})
	for _, d := range ds {
		t.Error(d.Error())
	}
	if rb == nil {
		t.Fatal("no runbook")
	}
	return rb
}

// TestEveryField checks that each key of every-field.yml lands where it belongs.
func TestEveryField(t *testing.T) {
	rb := loadValid(t, "every-field.yml")
	file := "testdata/valid/every-field.yml"
	pos := func(line, col int) diag.Pos { return diag.Pos{File: file, Line: line, Col: col} }

	if rb.Name != "every-field" || rb.Hosts != "etcd:&prod" || rb.Description != "Exercises the whole format.\n" {
		t.Errorf("name %q, hosts %q, description %q", rb.Name, rb.Hosts, rb.Description)
	}
	if rb.NamePos != pos(3, 10) || rb.HostsPos != pos(6, 8) {
		t.Errorf("NamePos %v, HostsPos %v", rb.NamePos, rb.HostsPos)
	}
	wantVars := map[string]any{
		"etcd_bin": "/usr/local/bin/etcd",
		"ports":    []any{2379, 2380},
		"limits":   map[string]any{"nofile": 65536},
		"defaults": map[string]any{"service": "etcd", "wait": "30s"},
	}
	if !reflect.DeepEqual(rb.Vars, wantVars) {
		t.Errorf("vars = %#v", rb.Vars)
	}
	if rb.VarPos["ports"] != pos(9, 3) {
		t.Errorf("VarPos[ports] = %v", rb.VarPos["ports"])
	}
	if got := rb.Serial.String(); got != "1, 50%, 100%" {
		t.Errorf("serial = %s", got)
	}
	if rb.Order.Kind != OrderExpr || rb.Order.Expr == nil || rb.Order.Expr.Src != "host.vars.rank ?? 0" {
		t.Errorf("order = %+v", rb.Order)
	}
	if !rb.MaxFail.IsPercent || rb.MaxFail.Percent != 10 || rb.MaxFail.Pos != pos(16, 11) {
		t.Errorf("max_fail = %+v", rb.MaxFail)
	}
	if rb.OnAbort != OnAbortRollbackCompleted {
		t.Errorf("on_abort = %s", rb.OnAbort)
	}

	pre := rb.Preflight[0]
	if pre.Phase != PhasePreflight || pre.ID != "preflight[0]" || pre.Register != "health" || !pre.RunOnce ||
		pre.DelegateTo != Controller || pre.ChangedWhen == nil || pre.Name != "command" {
		t.Errorf("preflight[0] = %+v", pre)
	}
	if args, ok := pre.Literal.(*commandArgs); !ok || !reflect.DeepEqual(args.Cmd, arg.Argv{"etcdctl", "endpoint", "health"}) {
		t.Errorf("preflight[0] literal = %#v", pre.Literal)
	}

	stop := rb.Steps[0]
	if stop.Module != "stop" || stop.ModulePos != pos(26, 5) || stop.NameTemplate == nil || len(stop.When) != 2 ||
		!reflect.DeepEqual(stop.Tags, []string{"upgrade", "etcd"}) || !stop.Become || stop.BecomeUser != "etcd" {
		t.Errorf("steps[0] = %+v", stop)
	}
	if args, ok := stop.Literal.(*serviceArgs); !ok || args.Service != "etcd" || args.Wait.Std() != 45*time.Second {
		t.Errorf("steps[0] literal (merge key, explicit wait wins) = %#v", stop.Literal)
	}
	if stop.When[1].Pos != pos(29, 9) {
		t.Errorf("when[1] pos = %v", stop.When[1].Pos)
	}

	snap := rb.Steps[1]
	if snap.Register != "snap" || snap.Retries != 3 || snap.Delay.Std() != 5*time.Second || snap.Until == nil ||
		snap.Timeout.Std() != 2*time.Minute || snap.FailedWhen == nil || snap.ChangedWhen == nil || snap.IgnoreErrors ||
		!snap.NoLog || !reflect.DeepEqual(snap.Tags, []string{"snapshot"}) {
		t.Errorf("steps[1] = %+v", snap)
	}
	if args, ok := snap.Literal.(*commandArgs); !ok || !reflect.DeepEqual(args.Cmd, arg.Argv{"etcdctl", "snapshot", "save", "/var/backups/etcd 1.db"}) {
		t.Errorf("steps[1] literal = %#v", snap.Literal)
	}
	if snap.Name != "command etcdctl snapshot save '/var/backups/etcd 1.db'" {
		t.Errorf("default name = %q", snap.Name)
	}

	block := rb.Steps[2]
	if !block.IsBlock() || len(block.Block) != 2 || block.Rollback == nil || len(block.Rollback.Steps) != 2 ||
		block.DelegateTemplate == nil || block.Name != "block" {
		t.Fatalf("steps[2] = %+v", block)
	}
	swap := block.Block[0]
	if swap.ID != "steps[2].block[0]" || swap.Literal != nil || len(swap.Templates) != 1 {
		t.Errorf("templated swap: %+v", swap)
	}
	if tmpl := swap.Templates[pos(45, 41)]; tmpl == nil || tmpl.Src != "{{ etcd_bin }}" {
		t.Errorf("templates = %v", swap.Templates)
	}
	if rbStep := block.Rollback.Steps[0]; rbStep.ID != "steps[2].rollback[0]" || len(rbStep.When) != 1 {
		t.Errorf("block rollback = %+v", rbStep)
	}

	metric := rb.Steps[3]
	if metric.Literal != nil || len(metric.Templates) != 1 {
		t.Errorf("templated assert-metric: literal %#v, templates %v", metric.Literal, metric.Templates)
	}
	if len(metric.When) != 1 || metric.When[0].Src != "false" {
		t.Errorf("when: false = %v", metric.When)
	}

	if rb.Rollback.Auto() || rb.Rollback.None || len(rb.Rollback.Steps) != 1 || rb.Rollback.Steps[0].Phase != PhaseRollback {
		t.Errorf("rollback = %+v", rb.Rollback)
	}
	if len(rb.BetweenBatches) != 1 || rb.Post != nil {
		t.Errorf("between_batches %v, post %v", rb.BetweenBatches, rb.Post)
	}

	var ids []string
	for _, s := range rb.AllSteps() {
		ids = append(ids, s.ID)
	}
	wantIDs := []string{"preflight[0]", "steps[0]", "steps[1]", "steps[2]", "steps[2].block[0]", "steps[2].block[1]",
		"steps[2].rollback[0]", "steps[2].rollback[1]", "steps[3]", "rollback[0]", "between_batches[0]"}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Errorf("AllSteps = %v", ids)
	}
	if src := rb.Sources()[file]; len(src) == 0 {
		t.Error("Sources has no source")
	}
}

func TestRollbackNone(t *testing.T) {
	rb := loadValid(t, "minimal.yml")
	if !rb.Rollback.None || rb.Rollback.Auto() || len(rb.Serial) != 0 || rb.Order.Kind != OrderInventory ||
		rb.OnAbort != OnAbortStop || rb.MaxFail.Of(10) != 0 {
		t.Errorf("defaults: %+v", rb)
	}
}

// TestNewArgs renders a templated step per host and decodes it again.
func TestNewArgs(t *testing.T) {
	rb := loadValid(t, "every-field.yml")
	swap := rb.Steps[2].Block[0]
	scope := &eval.Scope{Vars: map[string]any{"etcd_bin": "/opt/etcd"}, Host: eval.Host{Name: "etcd-1"}}
	args, err := swap.NewArgs(testRegistry(), scope)
	if err != nil {
		t.Fatal(err)
	}
	got := args.(*swapArgs)
	if got.Dest != "/opt/etcd" || got.Src != "dist/etcd" || got.Mode != 0o755 {
		t.Errorf("args = %+v", got)
	}

	// A rendered value that fails Validate is an error at the argument.
	scope.Vars["etcd_bin"] = "relative"
	_, err = swap.NewArgs(testRegistry(), scope)
	ds, ok := diag.As(err)
	if !ok || len(ds) != 1 || ds[0].Pos.Line != 45 || ds[0].Summary != "swap: dest: must be an absolute path" {
		t.Errorf("err = %v", err)
	}

	// Expr arguments keep the programs compiled at load.
	metric := rb.Steps[3]
	margs, err := metric.NewArgs(testRegistry(), &eval.Scope{Host: eval.Host{Addr: "10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	m := margs.(*metricArgs)
	wantPos := diag.Pos{File: "testdata/valid/every-field.yml", Line: 60, Col: 9}
	if m.URL != "http://10.0.0.1:2379/metrics" || m.Expect.Program == nil || m.Expect.Pos != wantPos {
		t.Errorf("metric args = %+v", m)
	}
	// A literal step still gets a fresh value per host.
	stop := rb.Steps[0]
	sargs, err := stop.NewArgs(testRegistry(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if sargs == stop.Literal || !reflect.DeepEqual(sargs, stop.Literal) {
		t.Errorf("NewArgs of a literal step = %#v, literal %#v", sargs, stop.Literal)
	}
}
