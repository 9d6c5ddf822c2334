package spec

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
)

// TestCheckArgs checks a step's arguments before a run: the templates whose
// inputs are known are rendered and decoded as NewArgs would, the ones that
// wait for the run are left alone, and Validate runs only when none waits.
func TestCheckArgs(t *testing.T) {
	const head = "runbook: t\nhosts: all\nvars: { soak: 10s, dest: /opt/x, leader: etcd-1 }\nsteps:\n"
	vars := func(kv ...string) map[string]any {
		m := map[string]any{"soak": "10s", "dest": "/opt/x", "leader": "etcd-1"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	// wait: the names only a run gives a value.
	waits := func(t *eval.Template) bool {
		return slices.ContainsFunc(t.Names(), func(n string) bool { return n == "etcd" || n == "item" || n == "before" })
	}
	tests := []struct {
		name     string
		step     string
		vars     map[string]any
		err      string // the diagnostic, "" for none
		complete bool
	}{
		{
			name: "a rendered duration", step: "  - assert-metric: { url: 'http://x/metrics', expect: 'etcd_server_has_leader == 1', for: '{{ soak }}' }",
			vars: vars(), complete: true,
		},
		{
			name: "a word for a duration", step: "  - assert-metric: { url: 'http://x/metrics', expect: 'etcd_server_has_leader == 1', for: '{{ soak }}' }",
			vars: vars("soak", "banana"),
			err:  `rb.yml:5:91: "for" must be a positive duration like "90s", got "banana"; units are ms, s, m and h`,
		},
		{
			name: "a zero duration", step: "  - start: { service: etcd, wait: '{{ soak }}' }",
			vars: vars("soak", "0s"),
			err:  `rb.yml:5:35: "wait" must be a positive duration like "90s", got "0s"`,
		},
		{
			name: "Validate with the rendered value", step: "  - swap: { src: a, dest: '{{ dest }}' }",
			vars: vars("dest", "relative"),
			err:  `rb.yml:5:21: swap: dest: must be an absolute path`,
		},
		{
			name: "a template that waits leaves Validate to the run", step: "  - swap: { src: '{{ etcd.leader }}', dest: '{{ dest }}' }",
			vars: vars("dest", "relative"), complete: false,
		},
		{
			name: "the known template is still decoded", step: "  - assert-metric: { url: 'http://{{ etcd.leader }}/metrics', expect: 'etcd_server_has_leader == 1', for: '{{ soak }}' }",
			vars: vars("soak", "banana"),
			err:  `rb.yml:5:107: "for" must be a positive duration like "90s", got "banana"; units are ms, s, m and h`,
		},
		{
			name: "a rendered value holding braces is a value", step: "  - start: { service: '{{ leader }}' }",
			vars: vars("leader", "{{ not a template }}"), complete: true,
		},
		{
			name: "an error of the template itself", step: "  - start: { service: '{{ semver_minor_of(leader) }}' }",
			vars: vars(),
			err:  `semver_minor_of: "etcd-1" is not a version`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb, ds := LoadBytes("rb.yml", []byte(head+tt.step+"\n"), testRegistry(), LoadOptions{
				Vars: map[string]any{}, Extra: map[string]any{"etcd": map[string]any{}, "before": map[string]any{}},
			})
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			s := rb.Steps[0]
			args, complete, err := s.CheckArgs(testRegistry(), &eval.Scope{Vars: tt.vars, Host: eval.Host{Name: "etcd-1"}}, waits)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v, want %q", err, tt.err)
			case tt.err == "" && complete != tt.complete:
				t.Errorf("complete = %v, want %v", complete, tt.complete)
			}
			if complete {
				// Nothing waited: the run gets exactly these arguments.
				runArgs, runErr := s.NewArgs(testRegistry(), &eval.Scope{Vars: tt.vars, Host: eval.Host{Name: "etcd-1"}})
				if runErr != nil || !reflect.DeepEqual(args, runArgs) {
					t.Errorf("NewArgs = %#v, %v; CheckArgs gave %#v", runArgs, runErr, args)
				}
			}
			if tt.err != "" {
				if _, isDiag := diag.As(err); !isDiag && !strings.Contains(tt.err, "semver") {
					t.Errorf("err %T is not diagnostics", err)
				}
				// The run renders the same value the same way: both fail alike.
				_, runErr := s.NewArgs(testRegistry(), &eval.Scope{Vars: tt.vars, Host: eval.Host{Name: "etcd-1"}})
				if runErr == nil && !strings.Contains(tt.step, "etcd.") {
					t.Errorf("NewArgs accepts what CheckArgs refused: %v", err)
				}
			}
		})
	}
}
