package eval

import (
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		pos    diag.Pos
		strict bool
		kind   Kind
		want   []string
	}{
		{
			name: "unknown name suggests", src: "etcd_versoin == '3.6.16'", pos: at, strict: true,
			want: []string{`rb.yml:12:9: unknown name "etcd_versoin" in expression; did you mean "etcd_version"?`},
		},
		{
			name: "unknown name without a close one", src: "count > 1 and zzzz", pos: at, strict: true,
			want: []string{`rb.yml:12:23: unknown name "zzzz" in expression`},
		},
		{
			name: "host field", src: "host.nmae == 'etcd-1'", pos: at,
			want: []string{`rb.yml:12:14: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			name: "run field", src: "run.btach > 1", pos: at,
			want: []string{`rb.yml:12:13: run has no field "btach"; it has id, batch, started, resumed`},
		},
		{
			// when: 'host.nmae' — the caller passes the column after the quote.
			name: "quoted scalar offset", src: "host.nmae", pos: diag.Pos{File: "rb.yml", Line: 4, Col: 12},
			want: []string{`rb.yml:4:17: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			// when: |
			//   count > 1 and
			//     host.nmae == "x"
			name: "block scalar, later line", src: "count > 1 and\n  host.nmae == \"x\"\n", pos: diag.Pos{File: "rb.yml", Line: 7, Col: 5},
			want: []string{`rb.yml:8:12: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			name: "third line", src: "count > 1\nand\ncount == 'x'", pos: diag.Pos{File: "rb.yml", Line: 7, Col: 5},
			want: []string{`rb.yml:9:11: invalid operation: == (mismatched types int and string)`},
		},
		{
			name: "type mismatch", src: "etcd_version > 3", pos: at,
			want: []string{`rb.yml:12:22: invalid operation: > (mismatched types string and int)`},
		},
		{
			name: "field of a string", src: "etcd_bin.path", pos: at,
			want: []string{`rb.yml:12:18: a value of type string has no field "path"`},
		},
		{
			name: "field of a host from group", src: `group("etcd")[0].adr`, pos: at,
			want: []string{`rb.yml:12:26: host has no field "adr"; it has name, addr, groups, vars`},
		},
		{
			name: "bool guard gives a string", src: "etcd_version", pos: at, kind: Bool,
			want: []string{`rb.yml:12:9: expression gives string, but it must give true or false; compare it, e.g. x == "yes" or x > 0`},
		},
		{
			name: "assignment instead of comparison", src: "count = 3", pos: at,
			want: []string{`rb.yml:12:15: unexpected =; use == to compare`},
		},
		{
			name: "syntax", src: "count >", pos: at,
			want: []string{`rb.yml:12:15: unexpected token EOF`},
		},
		{
			name: "unclosed string", src: "host.name == 'etcd", pos: at,
			want: []string{`rb.yml:12:27: literal not terminated`},
		},
		{
			name: "empty", src: "  ", pos: at,
			want: []string{`rb.yml:12:9: empty expression; write an expression, such as host.name == "etcd-1"`},
		},
		{
			name: "unknown function, not strict", src: `grup("etcd")`, pos: at,
			want: []string{`rb.yml:12:9: unknown function "grup"; did you mean "group"?`},
		},
		{
			name: "unknown function, strict", src: `count > 1 && semver_lte(etcd_version, "3.6.0")`, pos: at, strict: true,
			want: []string{`rb.yml:12:22: unknown function "semver_lte"; did you mean "semver_le"?`},
		},
		{
			name: "too few arguments", src: `semver_lt(etcd_version)`, pos: at,
			want: []string{`rb.yml:12:9: not enough arguments to call semver_lt; want semver_lt(a, b string) bool`},
		},
		{
			name: "too many arguments", src: `semver_major("3.6.0", "3.6.1")`, pos: at,
			want: []string{`rb.yml:12:9: too many arguments to call semver_major; want semver_major(v string) int`},
		},
		{
			name: "version written as a number", src: `semver_lt(etcd_version, 3.6)`, pos: at,
			want: []string{`rb.yml:12:33: semver_lt: cannot use float64 as an argument of type string; a version is a string: quote it in YAML ("3.6"), or it is read as a number`},
		},
		{
			name: "bound function argument", src: `group(1)`, pos: at,
			want: []string{`rb.yml:12:15: group: cannot use int as an argument of type string; want group(name string) []host`},
		},
		{
			name: "bad version literal", src: `semver_lt(etcd_version, "3.x")`, pos: at,
			want: []string{`rb.yml:12:33: semver_lt: "3.x" is not a version; write one such as 3.6.16 or v3.6.16`},
		},
		{
			name: "bad window literal", src: `in_window("Mon-Fry 02:00-05:00 UTC")`, pos: at,
			want: []string{`rb.yml:12:19: in_window: "Mon-Fry 02:00-05:00 UTC": unknown day "Fry"; days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, as a list (Sat,Sun) or a range (Mon-Fri)`},
		},
		{
			name: "seconds of a string", src: `seconds("90s")`, pos: at,
			want: []string{`rb.yml:12:17: seconds: cannot use string as an argument of type time.Duration; want seconds(d duration) float`},
		},
		{
			name: "two errors", src: `grup("x") || semver_lt("1.0", "x")`, pos: at,
			want: []string{
				`rb.yml:12:9: unknown function "grup"; did you mean "group"?`,
				`rb.yml:12:39: semver_lt: "x" is not a version; write one such as 3.6.16 or v3.6.16`,
			},
		},
		{
			name: "multi-byte runes count as one column", src: `"é" == host.nmae`, pos: at,
			want: []string{`rb.yml:12:21: host has no field "nmae"; it has name, addr, groups, vars`},
		},
		{
			name: "result not in scope", src: `result.rc == 0`, pos: at, strict: true,
			want: []string{`rb.yml:12:9: unknown name "result" in expression`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(tt.strict)
			if strings.Contains(tt.src, "result") {
				env.Result = false
			}
			p, ds := Compile(tt.src, tt.pos, env, tt.kind)
			if p != nil {
				t.Errorf("got a program, want errors")
			}
			if got := lines(ds); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCompileOK(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		strict bool
		kind   Kind
	}{
		{"unknown name allowed without inventory", "some_host_var == 'x'", false, Bool},
		{"nil sample is any, not nil", "etcd_data_dir == '/var/lib/etcd' || etcd_data_dir.sub == 1", true, Bool},
		{"nested map keys are not checked", "limits.cpu > 1 && limits.mem == nil", true, Bool},
		{"registered", "health.rc == 0", true, Bool},
		{"result", "result.rc != 0 && result.stdout contains 'ok'", true, Bool},
		{"failed and completed", "failed.name == 'swap' && 'stop' in completed", true, Bool},
		{"extra", "etcd.leader == host.name", true, Bool},
		{"pipe and predicate", "group('etcd') | map(#.vars.etcd_url) | join(',')", true, Any},
		{"method of a time", "run.started.Hour() < 6", true, Bool},
		{"let", "let n = len(group('etcd')); n >= 3", true, Bool},
		{"builtins", "duration('90s') > duration('1m') && toJSON(tags) != ''", true, Bool},
		{"block scalar", "count > 1\n  and ratio < 1\n", true, Bool},
		{"map literal with braces", `{"a": {"b": 1}}.a.b == 1`, true, Bool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ds := Compile(tt.src, at, testEnv(tt.strict), tt.kind)
			if p == nil || len(ds) > 0 {
				t.Fatalf("Compile: %v", lines(ds))
			}
			if p.Src != tt.src || p.Pos != at || p.Kind != tt.kind {
				t.Errorf("program = {%q %v %v}, want {%q %v %v}", p.Src, p.Pos, p.Kind, tt.src, at, tt.kind)
			}
		})
	}
}

func TestCompileWarnings(t *testing.T) {
	p, ds := Compile("etcd_versoin == '3.6' && other_var", at, testEnv(false), Bool)
	if p == nil {
		t.Fatalf("want a program with warnings, got errors %v", lines(ds))
	}
	want := []string{`rb.yml:12:9: warning: unknown name "etcd_versoin" in expression; did you mean "etcd_version"? (it may still come from the inventory)`}
	if got := lines(ds); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
	// A let-declared name is no typo of anything.
	if _, ds := Compile("let etcd_versio = '1'; etcd_versio", at, testEnv(false), Any); len(ds) > 0 {
		t.Errorf("let: %v", lines(ds))
	}
}

func TestShadowing(t *testing.T) {
	env := &Env{Vars: map[string]any{"host": "a var", "group": "a var", "count": 1}, Strict: true}
	p, ds := Compile("host.name + group", at, env, Any)
	if p == nil {
		t.Fatalf("Compile: %v", lines(ds))
	}
	got, err := p.Eval(&Scope{Vars: env.Vars, Host: Host{Name: "h1"}})
	if err != nil || got != "h1a var" {
		t.Errorf("Eval = %v, %v; want host to stay the host and group to be the var", got, err)
	}
	if _, ds := Compile(`group("etcd")`, at, env, Any); !ds.HasErrors() {
		t.Errorf("a var named group must hide the function")
	}
}

func TestNilEnv(t *testing.T) {
	p, ds := Compile("1 + 2", diag.Pos{}, nil, Any)
	if p == nil {
		t.Fatalf("Compile: %v", lines(ds))
	}
	if v, err := p.Eval(nil); err != nil || v != 3 {
		t.Errorf("Eval = %v, %v", v, err)
	}
}
