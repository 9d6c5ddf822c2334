package eval

import (
	"sync"
	"testing"
)

// TestWhy: a guard that is false names its false clause and the values it
// saw there, not the whole expression.
func TestWhy(t *testing.T) {
	tests := []struct{ src, want string }{
		{`count == 3 && ratio > 0.9 && host.name == "etcd-1"`, `ratio > 0.9: was 0.5`},
		// Both operands read the scope: both values.
		{`count > 0 and etcd_version == semver_minor_of(etcd_version)`, `etcd_version == semver_minor_of(etcd_version): was "3.6.16" == "3.6"`},
		{`1 < 0 || count > 5`, `1 < 0: was 1 < 0; and count > 5: was 3`},
		{`count == 3 && (ratio == 0 || len(tags) > 2)`, `ratio == 0: was 0.5; and len(tags) > 2: was 2`},
		{`count == 3 && !("a" in tags)`, `!("a" in tags): "a" in tags was true`},
		{`count == 3 && result.changed == false`, `result.changed == false: was true`},
		{`semver_lt(etcd_version, "3.6.0")`, `semver_lt(etcd_version, "3.6.0") was false`},
		{`etcd.leader == host.name && count == 4`, `count == 4: was 3`},
		// A long value is cut; the clause is not.
		{`string(group("etcd")) == ""`, `string(group("etcd")) == "": was "[{`},
		// True: nothing to explain.
		{`count == 3`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p := mustCompile(t, tt.src, Bool)
			got := p.Why(testScope())
			if tt.want == "" && got != "" || len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("Why = %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestWhyConcurrent: Why compiles the clauses once, from any goroutine; run
// with -race.
func TestWhyConcurrent(t *testing.T) {
	p := mustCompile(t, `count == 3 && ratio > 0.9`, Bool)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := p.Why(testScope()); got != "ratio > 0.9: was 0.5" {
				t.Errorf("Why = %q", got)
			}
		})
	}
	wg.Wait()
}
