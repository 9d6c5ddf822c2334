package plan

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// settle is a test module with arguments a run would refuse: a duration, and
// a path that must be absolute.
type settle struct {
	For  arg.Duration `yaml:"for"`
	Path string       `yaml:"path"`
}

func (*settle) Run(context.Context, *modules.Host) (modules.Result, error) {
	return modules.Result{}, nil
}

func (s *settle) Validate() error {
	if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
		return &modules.FieldError{Field: "path", Msg: "must be absolute"}
	}
	return nil
}

func checkRegistry() *modules.Registry {
	r := testRegistry()
	r.Register(modules.Info{Name: "settle", New: func() modules.Module { return new(settle) }, Doc: modules.Doc{Summary: "settle"}})
	r.RegisterFacts(modules.Facts{Name: "etcd", Sample: map[string]any{}, Gather: func(context.Context, *modules.Host) (any, error) { return nil, nil }})
	return r
}

const checkInv = `all:
  children:
    db:
      vars: { ansible_connection: local, pause: 1s, limit: 0.5 }
      hosts:
        db1: {}
        db2: { pause: soon }
        db3: { pause: soon, limit: "0.5" }
`

func checkValues(t *testing.T, runbook string, extra map[string]any, tags ...string) diag.Diags {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inv.yml"), []byte(checkInv), 0o644); err != nil {
		t.Fatal(err)
	}
	i, ds := inventory.Load(filepath.Join(dir, "inv.yml"))
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	reg := checkRegistry()
	rb, ds := spec.LoadBytes("rb.yml", []byte(runbook), reg, spec.LoadOptions{
		Vars: MergeVars(i.AllVarNames(), extra), Extra: reg.FactSamples(),
	})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	p, ds := Build(rb, i, Options{ExtraVars: extra, Registry: reg})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	return p.CheckValues(CheckOptions{Tags: tags})
}

func TestCheckValues(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		extra map[string]any
		tags  []string // --tags
		want  []string // diagnostics, by their text after the file name
	}{
		{
			name:  "every host right",
			steps: "  - settle: { for: '{{ pause }}' }",
			extra: map[string]any{"pause": "2s"},
		},
		{
			name:  "one diagnostic for the hosts that have the bad value",
			steps: "  - settle: { for: '{{ pause }}' }",
			want:  []string{`6:20: "for" must be a positive duration like "90s", got "soon"; units are ms, s, m and h; for db2, db3; pause is set at \S*inv.yml:7:23; pause is set at \S*inv.yml:8:23$`},
		},
		{
			name:  "-e for every host",
			steps: "  - settle: { for: '{{ pause }}' }",
			extra: map[string]any{"pause": "0s"},
			want:  []string{`6:20: "for" must be a positive duration like "90s", got "0s"; for db1, db2, db3; pause is set by -e`},
		},
		{
			name:  "Validate at the key, the var behind the template",
			steps: "  - settle: { path: '{{ base }}/x' }",
			want:  []string{`6:15: settle: path: must be absolute; for db1, db2, db3; base is set at rb.yml:3:9$`},
		},
		{
			name:  "a guard that is false for a host skips it, as the run does",
			steps: "  - settle: { for: '{{ pause }}' }\n    when: 'host.name == \"db2\"'",
			want:  []string{`6:20: "for" must be a positive duration like "90s", got "soon"; units are ms, s, m and h; for db2;`},
		},
		{
			name:  "a guard that reads facts does not",
			steps: "  - settle: { for: '{{ pause }}' }\n    when: 'etcd.leader == host.name'",
			want:  []string{`for db2, db3;`},
		},
		{
			name:  "a guard on the clock does not skip the check",
			steps: "  - settle: { for: '{{ pause }}' }\n    when: 'in_window(\"Sat 02:00-02:01 UTC\") && now().Year() < 2000'",
			want:  []string{`for db2, db3;`},
		},
		{
			name:  "run_once: only the first host of the batch runs it",
			steps: "  - settle: { for: '{{ pause }}' }\n    run_once: true",
		},
		{
			name:  "run_once does not hold in rollback: every host rolls back",
			steps: "  - settle: { for: 1s }\nrollback:\n  - settle: { for: '{{ pause }}' }\n    run_once: true",
			want:  []string{`8:20: "for" must be a positive duration like "90s", got "soon"; units are ms, s, m and h; for db2, db3;`},
		},
		{
			name:  "a step tagged never is left out by default, as the run does",
			steps: "  - settle: { for: '{{ pause }}' }\n    tags: [never, debug]",
		},
		{
			name:  "--tags asks for it",
			steps: "  - settle: { for: '{{ pause }}' }\n    tags: [never, debug]",
			tags:  []string{"debug"},
			want:  []string{`6:20: "for" must be a positive duration like "90s", got "soon"; units are ms, s, m and h; for db2, db3;`},
		},
		{
			name:  "--tags leaves out the others, also inside a block",
			steps: "  - block:\n      - settle: { for: '{{ pause }}' }\n    tags: [other]",
			tags:  []string{"debug"},
		},
		{
			name:  "a template that reads facts waits for the run",
			steps: "  - settle: { for: '{{ etcd.soak ?? pause }}' }",
		},
		{
			name:  "a template that reads a registered result waits",
			steps: "  - settle: { for: 1s }\n    register: touched\n  - settle: { for: '{{ touched.msg ?? pause }}' }",
		},
		{
			name:  "preflight: once, with the first host's vars",
			steps: "  - settle: { for: 1s }\npreflight:\n  - settle: { for: '{{ pause }}' }",
		},
		{
			name:  "post with a bad -e",
			steps: "  - settle: { for: 1s }\npost:\n  - settle: { for: '{{ pause }}' }",
			extra: map[string]any{"pause": "x"},
			want:  []string{`8:20: "for" must be a positive duration like "90s", got "x"; units are ms, s, m and h; for the controller, with the vars of db1; pause is set by -e`},
		},
		{
			name:  "an expression whose inputs are known fails now",
			steps: "  - settle: { for: 1s }\n    when: 'semver_lt(base, \"3.6.0\")'",
			want:  []string{`7:12: "when": semver_lt: "rel" is not a version.*; for db1, db2, db3; base is set at rb.yml:3:9$`},
		},
		{
			name:  "no_log: where, never the value",
			steps: "  - block:\n      - settle: { for: '{{ pause }}' }\n    no_log: true",
			extra: map[string]any{"pause": "s3cret"},
			want:  []string{`7:24: settle: a value here is not valid \(the error has been hidden because no_log: true\); for db1, db2, db3; pause is set by -e$`},
		},
		{
			name:  "delegate_to a host the inventory lacks",
			steps: "  - settle: { for: 1s }\n    delegate_to: '{{ base }}-1'",
			want:  []string{`7:18: delegate_to "rel-1": no such host in the inventory; for db1, db2, db3; base is set at rb.yml:3:9$`},
		},
		{
			name:  "delegate_to a host of the inventory, or the controller",
			steps: "  - settle: { for: 1s }\n    delegate_to: '{{ \"db\" + \"1\" }}'\n  - settle: { for: 1s }\n    delegate_to: '{{ \"controller\" }}'",
		},
		{
			name:  "a host whose var has another type, in an expression that waits",
			steps: "  - settle: { for: 1s }\n    register: touched\n  - settle: { for: 1s }\n    when: 'touched.changed && 1 > limit'",
			want:  []string{`9:35: limit is the string "0.5" \(set at \S*inv.yml:8:\d+\), but > needs a number here; it is quoted, so it is a string; write 0.5 without quotes; for db3$`},
		},
		{
			name:  "known items are checked one by one",
			steps: "  - settle: { for: '{{ item }}' }\n    loop: [1s, soon]",
			want:  []string{`6:20: "for" must be a positive duration like "90s", got "soon"; units are ms, s, m and h; for db1, db2, db3$`},
		},
		{
			name:  "a guard on the item skips it, as the run does",
			steps: "  - settle: { for: '{{ item }}' }\n    loop: [1s, soon]\n    when: 'item != \"soon\"'",
		},
		{
			name:  "items from the inventory, delegated to each",
			steps: "  - settle: { for: 1s }\n    loop: '{{ group(\"db\") }}'\n    delegate_to: '{{ item.name }}x'",
			want:  []string{`8:18: delegate_to "db1x": no such host in the inventory; for db1, db2, db3$`, `8:18: delegate_to "db2x"`, `8:18: delegate_to "db3x"`},
		},
		{
			name:  "a loop over an empty list runs nothing",
			steps: "  - settle: { for: '{{ pause }}' }\n    loop: '{{ [] }}'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := "runbook: t\nhosts: db\nvars: { base: rel }\nsteps:\n" + tt.steps + "\n"
			rb = strings.Replace(rb, "steps:\n", "steps:\n  - noop: {}\n", 1)
			ds := checkValues(t, rb, tt.extra, tt.tags...)
			if len(ds) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%v", len(ds), len(tt.want), ds.Err())
			}
			for i, d := range ds {
				if strings.Contains(d.Error(), "s3cret") {
					t.Errorf("a no_log value is shown: %s", d.Error())
				}
				if !matches(t, tt.want[i], d.Error()) {
					t.Errorf("diagnostic %d:\n got %s\nwant %s", i, d.Error(), tt.want[i])
				}
			}
		})
	}
}

func matches(t *testing.T, pattern, got string) bool {
	t.Helper()
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return re.MatchString(got)
}

// TestRunTimeChecks: the plan names the fields that wait for the run and
// what they read; everything else was checked before.
func TestRunTimeChecks(t *testing.T) {
	tests := []struct {
		name, step string
		want       []string
	}{
		{"known inputs", "  - settle: { for: '{{ pause }}', path: '/{{ host.name }}' }", nil},
		{"facts", "  - settle: { for: '{{ etcd.soak }}' }", []string{"for reads etcd"}},
		{"a guard reading facts", "  - settle: { for: 1s }\n    when: 'etcd.leader == host.name'", []string{"when reads etcd"}},
		{"a registered result and item", "  - settle: { for: 1s }\n    register: touched\n  - settle: { path: '/{{ touched.msg }}/{{ item }}' }\n    loop: [a]",
			[]string{"path reads touched"}},
		{"items the run gives", "  - settle: { path: '/{{ item }}' }\n    loop: '{{ etcd.members }}'",
			[]string{"loop reads etcd", "path reads item"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := checkRegistry()
			rb, ds := spec.LoadBytes("rb.yml", []byte("runbook: t\nhosts: db\nvars: { pause: 1s }\nsteps:\n"+tt.step+"\n"), reg,
				spec.LoadOptions{Extra: reg.FactSamples()})
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			rt := newRunTimeNames(rb, reg)
			last := rb.Steps[len(rb.Steps)-1]
			got := rt.runTimeChecks(last)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("run-time checks = %q, want %q", got, tt.want)
			}
		})
	}
}
