package plan

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
)

// noop is a test module with one argument and an undo.
type noop struct {
	Msg string `yaml:"msg" doc:"text"`
}

func (*noop) Run(context.Context, *modules.Host) (modules.Result, error) {
	return modules.Result{}, nil
}
func (*noop) Undo(context.Context, *modules.Host, modules.Result) error { return nil }

func testRegistry() *modules.Registry {
	r := &modules.Registry{}
	r.Register(modules.Info{Name: "noop", New: func() modules.Module { return new(noop) }, Doc: modules.Doc{Summary: "nothing", Undo: "nothing to undo"}})
	r.Register(modules.Info{Name: "once", New: func() modules.Module { return new(onceMod) }, Doc: modules.Doc{Summary: "irreversible"}})
	return r
}

type onceMod struct{}

func (*onceMod) Run(context.Context, *modules.Host) (modules.Result, error) {
	return modules.Result{}, nil
}

const inv = `all:
  children:
    db:
      vars: { ansible_connection: local }
      hosts:
        db1: { rank: 3, zone: b }
        db2: { rank: 1, zone: a }
        db3: { rank: 2, zone: a }
        db4: { rank: 4, zone: c }
        db5: { rank: 0, zone: b }
`

func build(t *testing.T, runbook string, opts Options) (*Plan, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inv.yml"), []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	i, ds := inventory.Load(filepath.Join(dir, "inv.yml"))
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	reg := testRegistry()
	opts.Registry = reg
	rb, ds := spec.LoadBytes("rb.yml", []byte(runbook), reg, spec.LoadOptions{Vars: MergeVars(i.AllVarNames(), opts.ExtraVars)})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	p, ds := Build(rb, i, opts)
	if ds.HasErrors() {
		return nil, ds.Err().Error()
	}
	return p, ""
}

func TestBuild(t *testing.T) {
	head := "runbook: t\nhosts: db\nsteps:\n  - noop: { msg: hi }\n"
	tests := []struct {
		name    string
		extra   string // more top-level keys
		opts    Options
		hosts   []string
		batches [][]string
		maxFail int
		wantErr string
		// hostsOverride replaces the runbook's host pattern.
		hostsOverride string
	}{
		{name: "one batch by default", hosts: []string{"db1", "db2", "db3", "db4", "db5"},
			batches: [][]string{{"db1", "db2", "db3", "db4", "db5"}}},
		{name: "serial count", extra: "serial: 2\n",
			batches: [][]string{{"db1", "db2"}, {"db3", "db4"}, {"db5"}}},
		{name: "serial percent rounds down but at least one", extra: "serial: \"10%\"\n",
			batches: [][]string{{"db1"}, {"db2"}, {"db3"}, {"db4"}, {"db5"}}},
		{name: "canary then widen", extra: "serial: [1, \"40%\", \"100%\"]\n",
			batches: [][]string{{"db1"}, {"db2", "db3"}, {"db4", "db5"}}},
		{name: "reverse", extra: "order: reverse\nserial: 5\n",
			batches: [][]string{{"db5", "db4", "db3", "db2", "db1"}}},
		{name: "expr key numbers", extra: "order: 'host.vars.rank'\nserial: 5\n",
			batches: [][]string{{"db5", "db2", "db3", "db1", "db4"}}},
		{name: "expr key strings stable", extra: "order: 'host.vars.zone'\nserial: 5\n",
			batches: [][]string{{"db2", "db3", "db1", "db5", "db4"}}},
		{name: "shuffle with a seed is repeatable", extra: "order: shuffle\nserial: 5\n", opts: Options{Seed: 42},
			batches: [][]string{shuffled(t)}},
		{name: "limit", opts: Options{Limit: "db:!db2:!db4"}, hosts: []string{"db1", "db3", "db5"}},
		{name: "max_fail percent of the hosts", extra: "max_fail: \"40%\"\n", maxFail: 2},
		{name: "limit leaving nothing", opts: Options{Limit: "db1:&db2"}, wantErr: "--limit"},
		{name: "pattern matching nothing", extra: "", wantErr: "dbx", hostsOverride: "dbx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := head + tt.extra
			if tt.hostsOverride != "" {
				rb = strings.Replace(rb, "hosts: db", "hosts: "+tt.hostsOverride, 1)
			}
			p, err := build(t, rb, tt.opts)
			if tt.wantErr != "" {
				if !strings.Contains(err, tt.wantErr) {
					t.Fatalf("error %q, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != "" {
				t.Fatal(err)
			}
			if tt.hosts != nil && !reflect.DeepEqual(p.HostNames, tt.hosts) {
				t.Errorf("hosts %v, want %v", p.HostNames, tt.hosts)
			}
			if tt.batches != nil && !reflect.DeepEqual(p.Batches, tt.batches) {
				t.Errorf("batches %v, want %v", p.Batches, tt.batches)
			}
			if p.MaxFail != tt.maxFail {
				t.Errorf("max_fail %d, want %d", p.MaxFail, tt.maxFail)
			}
		})
	}
}

// shuffled is the order seed 42 gives; computed once so the test states the
// property (same seed, same order, recorded in the plan) rather than a constant.
func shuffled(t *testing.T) []string {
	p, err := build(t, "runbook: t\nhosts: db\norder: shuffle\nserial: 5\nsteps:\n  - noop: {}\n", Options{Seed: 42})
	if err != "" {
		t.Fatal(err)
	}
	if p.Seed != 42 {
		t.Fatalf("seed %d not recorded", p.Seed)
	}
	return p.Batches[0]
}

func TestShufflePicksAndRecordsASeed(t *testing.T) {
	p, err := build(t, "runbook: t\nhosts: db\norder: shuffle\nsteps:\n  - noop: {}\n", Options{})
	if err != "" {
		t.Fatal(err)
	}
	if p.Seed == 0 {
		t.Fatal("no seed recorded for a shuffled plan")
	}
	again, _ := build(t, "runbook: t\nhosts: db\norder: shuffle\nsteps:\n  - noop: {}\n", Options{Seed: p.Seed})
	if !reflect.DeepEqual(p.HostNames, again.HostNames) {
		t.Errorf("same seed, different order: %v vs %v", p.HostNames, again.HostNames)
	}
}

func TestVarsPrecedence(t *testing.T) {
	rb := "runbook: t\nhosts: db\nvars: { zone: none, only_rb: 1, rank: 9 }\nsteps:\n  - noop: {}\n"
	p, err := build(t, rb, Options{ExtraVars: map[string]any{"rank": "from -e"}})
	if err != "" {
		t.Fatal(err)
	}
	h := p.Hosts[0]
	if h.Vars["zone"] != "b" || h.Vars["only_rb"] != 1 || h.Vars["rank"] != "from -e" {
		t.Errorf("vars %v: want inventory over runbook, -e over both", h.Vars)
	}
}

func TestUndoShownNewestFirst(t *testing.T) {
	rb := "runbook: t\nhosts: db\nsteps:\n  - name: first\n    noop: {}\n  - name: second\n    once: {}\n  - name: third\n    noop: {}\n"
	p, err := build(t, rb, Options{})
	if err != "" {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	want := "  third: nothing to undo\n  second: irreversible\n  first: nothing to undo\n"
	if !strings.Contains(out, want) {
		t.Errorf("automatic rollback not listed newest first:\n%s", out)
	}
}

func TestDigestsChangeWithInputs(t *testing.T) {
	a, _ := build(t, "runbook: t\nhosts: db\nsteps:\n  - noop: {}\n", Options{})
	b, _ := build(t, "runbook: t\nhosts: db\nsteps:\n  - noop: { msg: x }\n", Options{})
	if a.RunbookDigest == b.RunbookDigest {
		t.Error("runbook digest did not change with the runbook")
	}
	if a.InventoryDigest != b.InventoryDigest || !strings.HasPrefix(a.InventoryDigest, "sha256:") {
		t.Errorf("inventory digest %q vs %q", a.InventoryDigest, b.InventoryDigest)
	}
}

func TestTemplatedVars(t *testing.T) {
	tests := []struct {
		name    string
		vars    string
		extra   map[string]any
		want    map[string]any // on db2
		wantErr string
	}{
		{name: "in dependency order, typed when whole",
			vars: "{ root: /srv, dir: '{{ base }}/data', base: '{{ root }}/{{ host.name }}', n: '{{ rank * 10 }}' }",
			want: map[string]any{"dir": "/srv/db2/data", "base": "/srv/db2", "n": 10}},
		{name: "inside lists and maps",
			vars: "{ urls: ['http://{{ host.name }}:2379'], m: { z: '{{ zone }}' } }",
			want: map[string]any{"urls": []any{"http://db2:2379"}, "m": map[string]any{"z": "a"}}},
		{name: "-e wins and is rendered too", vars: "{ dir: /x }", extra: map[string]any{"dir": "{{ zone }}-e"},
			want: map[string]any{"dir": "a-e"}},
		{name: "a cycle is an error", vars: "{ a: '{{ b }}', b: '{{ a }}' }", wantErr: "cycle: a → b → a"},
		{name: "unknown name", vars: "{ a: '{{ nope }}' }", wantErr: `unknown name "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := "runbook: t\nhosts: db\nvars: " + tt.vars + "\nsteps:\n  - noop: {}\n"
			p, err := build(t, rb, Options{ExtraVars: tt.extra})
			if tt.wantErr != "" {
				if !strings.Contains(err, tt.wantErr) {
					t.Fatalf("error %q, want %q", err, tt.wantErr)
				}
				return
			}
			if err != "" {
				t.Fatal(err)
			}
			h := p.Hosts[1]
			for k, want := range tt.want {
				if got := h.Vars[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

func TestOrderAtStartFromFacts(t *testing.T) {
	reg := testRegistry()
	reg.RegisterFacts(modules.Facts{Name: "lab", Sample: map[string]any{"leader": ""},
		Gather: func(context.Context, *modules.Host) (any, error) { return nil, nil }})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "inv.yml"), []byte(inv), 0o644)
	i, _ := inventory.Load(filepath.Join(dir, "inv.yml"))
	src := "runbook: t\nhosts: db\nserial: 2\norder: 'lab.leader == host.name ? 1 : 0'\nsteps:\n  - noop: {}\n"
	rb, ds := spec.LoadBytes("rb.yml", []byte(src), reg, spec.LoadOptions{Extra: reg.FactSamples()})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	p, ds := Build(rb, i, Options{Registry: reg})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if !p.OrderAtStart || !strings.Contains(p.Order, "decided when the run starts") {
		t.Fatalf("plan does not defer the order: %+v", p.Order)
	}
	if want := [][]string{{"db1", "db2"}, {"db3", "db4"}, {"db5"}}; !reflect.DeepEqual(p.Batches, want) {
		t.Errorf("batches before ordering %v, want inventory order", p.Batches)
	}
	ordered, err := p.OrderBy(func(h *Host) (map[string]any, error) {
		return map[string]any{"lab": map[string]any{"leader": "db2"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"db1", "db3"}, {"db4", "db5"}, {"db2"}}; !reflect.DeepEqual(ordered.Batches, want) {
		t.Errorf("batches %v, want the leader last: %v", ordered.Batches, want)
	}
	if want := [][]string{{"db1", "db2"}, {"db3", "db4"}, {"db5"}}; !reflect.DeepEqual(p.Batches, want) || !p.OrderAtStart {
		t.Errorf("OrderBy changed the plan it was given: batches %v", p.Batches)
	}
	reordered, err := ordered.Reorder([]string{"db5", "db4", "db3", "db2", "db1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"db5", "db4"}, {"db3", "db2"}, {"db1"}}; !reflect.DeepEqual(reordered.Batches, want) {
		t.Errorf("reordered batches %v, want %v", reordered.Batches, want)
	}
	if want := [][]string{{"db1", "db3"}, {"db4", "db5"}, {"db2"}}; !reflect.DeepEqual(ordered.Batches, want) {
		t.Errorf("Reorder changed the plan it was given: batches %v", ordered.Batches)
	}
	if _, err := ordered.Reorder([]string{"db1"}); err == nil {
		t.Error("Reorder accepted a different host list")
	}
}

func TestLoopShown(t *testing.T) {
	rb := "runbook: t\nhosts: db\nsteps:\n  - name: each\n    noop: { msg: '{{ item.name }}' }\n    loop: '{{ group(\"db\") }}'\n  - name: plain\n    noop: {}\n"
	p, err := build(t, rb, Options{})
	if err != "" {
		t.Fatal(err)
	}
	steps := p.stepsPhase()
	if steps[0].Loop != `{{ group("db") }}` || steps[1].Loop != "" {
		t.Errorf("loops %q, %q", steps[0].Loop, steps[1].Loop)
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  1. each [noop] line 4\n     loop: {{ group(\"db\") }}\n  2. plain",
		"  each: per item, newest first: nothing to undo\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text plan lacks %q:\n%s", want, b.String())
		}
	}
}
