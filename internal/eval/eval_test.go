package eval

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/diag"
)

func mustCompile(t testing.TB, src string, kind Kind) *Program {
	t.Helper()
	p, ds := Compile(src, at, testEnv(true), kind)
	if ds.HasErrors() {
		t.Fatalf("Compile(%q): %v", src, lines(ds))
	}
	return p
}

func TestEval(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		// names in scope
		{"host.name", "etcd-1"},
		{"host.addr", "10.0.0.1"},
		{"host.groups", []string{"etcd"}},
		{"host.vars.etcd_url", "https://10.0.0.1:2379"},
		{"run.id + '/' + string(run.batch)", "r-20250106/2"},
		{"run.started.Hour()", 3},
		{"etcd_version", "3.6.16"},
		{"etcd_data_dir", nil},
		{"count * 2", 6},
		{"limits.cpu", 2},
		{"health.rc == 0 && fromJSON(health.stdout).health", true},
		{"result.rc", 1},
		{"failed.name", "swap"},
		{"completed", []string{"snapshot", "stop"}},
		{"etcd.leader == host.name", true},
		// semver
		{`semver_cmp("3.6.9", "3.6.16")`, -1},
		{`semver_cmp("v3.6.16", "3.6.16")`, 0},
		{`semver_cmp("3.7.0", etcd_version)`, 1},
		{`semver_lt("3.6.9", "3.6.16")`, true},
		{`semver_lt("3.6.0-rc.1", "3.6.0")`, true},
		{`semver_lt("3.6.16", "3.6.16")`, false},
		{`semver_le("3.6.16", "v3.6.16")`, true},
		{`semver_le("3.6.17", "3.6.16")`, false},
		{`semver_gt("3.10.0", "3.9.9")`, true},
		{`semver_gt("3.6.16", "3.6.16")`, false},
		{`semver_ge("3.6.16", "3.6.16")`, true},
		{`semver_ge("3.5.99", "3.6.0")`, false},
		{`semver_eq("v3.6", "3.6.0")`, true},
		{`semver_eq("3.6.1", "3.6.0")`, false},
		{`semver_major("v3.6.16")`, 3},
		{`semver_minor("3.6.16")`, 6},
		{`semver_patch("3.6.16")`, 16},
		{`semver_minor_of("3.6.16")`, "3.6"},
		{`semver_minor_of("v10.20.30-rc.1")`, "10.20"},
		{`semver_same_minor("3.6.1", "3.6.16")`, true},
		{`semver_same_minor("3.6.1", "3.5.1")`, false},
		{`semver_same_minor("3.6.1", "4.6.1")`, false},
		{`semver_next_minor("3.5.17", "3.6.0")`, true},
		{`semver_next_minor("3.5.17", "3.7.0")`, false},
		{`semver_next_minor("3.5.17", "3.5.18")`, false},
		{`semver_next_minor("3.6.0", "3.5.17")`, false},
		{`semver_next_minor("3.9.0", "4.10.0")`, false},
		// durations
		{`seconds(duration("1m30s"))`, 90.0},
		{`seconds(duration("250ms"))`, 0.25},
		// inventory
		{`group("etcd") | map(#.name)`, []any{"etcd-3", "etcd-1", "etcd-2"}},
		{`group("etcd")[0].vars.etcd_url`, "https://10.0.0.3:2379"},
		{`group("web-1") | map(#.addr)`, []any{"10.0.1.1"}},
		{`len(group("nosuch"))`, 0},
		{`hostvars("etcd-2").etcd_url`, "https://10.0.0.2:2379"},
		{`hostvars("web-1")`, map[string]any{}},
		// helpers
		{`default(etcd_data_dir, "/var/lib/etcd")`, "/var/lib/etcd"},
		{`default(empty, "x")`, "x"},
		{`default(etcd_bin, "x")`, "/usr/local/bin/etcd"},
		{`default(0, 5)`, 0},
		{`default(false, true)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := mustCompile(t, tt.src, Any).Eval(testScope())
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestInWindow(t *testing.T) {
	// 2025-01-06 is a Monday.
	day := func(d int, hhmm string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", fmt.Sprintf("2025-01-%02d %s", 5+d, hhmm))
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	mon, tue, fri, sat, sun := 1, 2, 5, 6, 7
	tests := []struct {
		spec string
		t    time.Time
		want bool
	}{
		{"Mon-Fri 02:00-05:00 UTC", day(mon, "03:00"), true},
		{"Mon-Fri 02:00-05:00 UTC", day(mon, "02:00"), true},
		{"Mon-Fri 02:00-05:00 UTC", day(mon, "05:00"), false},
		{"Mon-Fri 02:00-05:00 UTC", day(mon, "01:59"), false},
		{"Mon-Fri 02:00-05:00 UTC", day(sat, "03:00"), false},
		{"mon-fri 02:00-05:00 UTC", day(fri, "04:59"), true},
		{"Sat,Sun 00:00-24:00 Europe/Berlin", day(sat, "12:00"), true},
		// 23:30 UTC on Sunday is 00:30 on Monday in Berlin (winter).
		{"Sat,Sun 00:00-24:00 Europe/Berlin", day(sun, "23:30"), false},
		// 23:30 UTC on Friday is 00:30 on Saturday in Berlin.
		{"Sat,Sun 00:00-24:00 Europe/Berlin", day(fri, "23:30"), true},
		// Over midnight: Friday 22:00 to Saturday 02:00.
		{"Fri 22:00-02:00 UTC", day(fri, "23:00"), true},
		{"Fri 22:00-02:00 UTC", day(sat, "01:00"), true},
		{"Fri 22:00-02:00 UTC", day(sat, "02:00"), false},
		{"Fri 22:00-02:00 UTC", day(fri, "01:00"), false},
		{"Fri 22:00-02:00 UTC", day(sat, "23:00"), false},
		// A day range over the weekend.
		{"Fri-Mon 10:00-11:00 UTC", day(sun, "10:30"), true},
		{"Fri-Mon 10:00-11:00 UTC", day(tue, "10:30"), false},
		{"Sunday,Tuesday 10:00-11:00 UTC", day(tue, "10:30"), true},
	}
	p := mustCompile(t, "in_window(spec, at)", Any)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s at %s", tt.spec, tt.t.Format("Mon 15:04")), func(t *testing.T) {
			got, err := p.Eval(&Scope{Extra: map[string]any{"spec": tt.spec, "at": tt.t}})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("in_window = %v, want %v", got, tt.want)
			}
		})
	}
	// Without a time, the window is checked against now: every day, all day, is always in.
	if v, err := mustCompile(t, `in_window("Mon-Sun 00:00-24:00 UTC")`, Bool).Bool(nil); err != nil || !v {
		t.Errorf("in_window(all week) = %v, %v", v, err)
	}
}

func TestWindowErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"Mon-Fri 02:00-05:00", `in_window: "Mon-Fri 02:00-05:00" is not a window; write DAYS HH:MM-HH:MM ZONE, such as "Mon-Fri 02:00-05:00 UTC" or "Sat,Sun 22:00-04:00 Europe/Berlin"`},
		{"Mon-Fri 02:00-05:00 Local", `in_window: "Mon-Fri 02:00-05:00 Local": name the time zone (UTC, Europe/Berlin) rather than Local, which depends on the controller`},
		{"Mon-Fri 02:00-05:00 Mars/Base", `in_window: "Mon-Fri 02:00-05:00 Mars/Base": unknown time zone "Mars/Base"; use UTC or an IANA name such as Europe/Berlin`},
		{"Mo 02:00-05:00 UTC", `in_window: "Mo 02:00-05:00 UTC": unknown day "Mo"; days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, as a list (Sat,Sun) or a range (Mon-Fri)`},
		{"Mon 2:00-05:00 UTC", `in_window: "Mon 2:00-05:00 UTC": "2:00" is not a time of day; write HH:MM from 00:00 to 23:59 (24:00 as an end)`},
		{"Mon 24:00-05:00 UTC", `in_window: "Mon 24:00-05:00 UTC": "24:00" is not a time of day; write HH:MM from 00:00 to 23:59 (24:00 as an end)`},
		{"Mon 02:60-05:00 UTC", `in_window: "Mon 02:60-05:00 UTC": "02:60" is not a time of day; write HH:MM from 00:00 to 23:59 (24:00 as an end)`},
		{"Mon +1:00-05:00 UTC", `in_window: "Mon +1:00-05:00 UTC": "+1:00" is not a time of day; write HH:MM from 00:00 to 23:59 (24:00 as an end)`},
		{"Mon 02:00 UTC", `in_window: "Mon 02:00 UTC": "02:00" is not a time range; write HH:MM-HH:MM, such as 02:00-05:00`},
		{"Mon 05:00-05:00 UTC", `in_window: "Mon 05:00-05:00 UTC": the window 05:00-05:00 is empty; for a whole day write 00:00-24:00`},
	}
	p := mustCompile(t, "in_window(spec)", Any)
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := parseWindow(tt.spec)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("parseWindow error:\n got %v\nwant %s", err, tt.want)
			}
			// The same at run time, when the spec comes from a var.
			_, err = p.Eval(&Scope{Extra: map[string]any{"spec": tt.spec}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Eval error:\n got %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name, src string
		kind      Kind
		scope     *Scope
		want      string
	}{
		{
			name: "bad version from a var", src: `semver_lt(v, "3.6.0")`, kind: Bool,
			scope: &Scope{Extra: map[string]any{"v": "latest"}},
			want:  "rb.yml:12:9: when: semver_lt: \"latest\" is not a version; write one such as 3.6.16 or v3.6.16 (in `semver_lt(v, \"3.6.0\")`)",
		},
		{
			name: "version of the wrong type", src: `semver_major(v)`,
			scope: &Scope{Extra: map[string]any{"v": 3.6}},
			want:  "rb.yml:12:9: when: semver_major: want a version string, got float64 3.6 (in `semver_major(v)`)",
		},
		{
			name: "position of the failing part", src: "v != nil and\n  v.x.y == 1",
			scope: &Scope{Extra: map[string]any{"v": map[string]any{"x": 3}}},
			want:  "rb.yml:13:15: when: cannot fetch y from int (in `v != nil and v.x.y == 1`)",
		},
		{
			name: "no inventory", src: `len(group("etcd"))`,
			scope: &Scope{},
			want:  "rb.yml:12:13: when: group(\"etcd\"): no inventory in this run (in `len(group(\"etcd\"))`)",
		},
		{
			name: "unknown host", src: `hostvars("nosuch")`,
			scope: &Scope{Inventory: testInventory},
			want:  "rb.yml:12:9: when: hostvars(\"nosuch\"): no host of that name in the inventory (in `hostvars(\"nosuch\")`)",
		},
		{
			name: "guard gives nil", src: `v`, kind: Bool,
			scope: &Scope{},
			want:  "rb.yml:12:9: when: got nil where true or false is needed; a name in it may be undefined (in `v`)",
		},
		{
			name: "guard gives a string", src: `v`, kind: Bool,
			scope: &Scope{Extra: map[string]any{"v": "yes"}},
			want:  "rb.yml:12:9: when: got string \"yes\" where true or false is needed (in `v`)",
		},
		{
			name: "seconds of a string", src: `seconds(v)`,
			scope: &Scope{Extra: map[string]any{"v": "90s"}},
			want:  "rb.yml:12:9: when: seconds: want a duration, got string (use duration(\"90s\") for a string) (in `seconds(v)`)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// v is declared untyped, as a var whose type is only known at run time.
			p, ds := Compile(tt.src, at, &Env{Extra: map[string]any{"v": nil}, Strict: true}, tt.kind)
			if ds.HasErrors() {
				t.Fatalf("Compile: %v", lines(ds))
			}
			p.Name = "when"
			var err error
			if tt.kind == Bool {
				_, err = p.Bool(tt.scope)
			} else {
				_, err = p.Eval(tt.scope)
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Src != tt.src {
				t.Errorf("error is not an *Error with the source: %#v", err)
			}
		})
	}
	// The cause stays reachable, for callers that look for it.
	p := mustCompile(t, `group("etcd")`, Any)
	if _, err := p.Eval(&Scope{}); !errors.Is(err, errNoInventory) {
		t.Errorf("errors.Is(%v, errNoInventory) = false", err)
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"host.name == 'etcd-1' && 'etcd' in host.groups", true},
		{"semver_lt(etcd_version, '3.6.0')", false},
		{"len(group('etcd')) >= 3 and result.changed", true},
		{"failed.name == 'swap' and not ('start' in completed)", true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := mustCompile(t, tt.src, Bool).Bool(testScope())
			if err != nil || got != tt.want {
				t.Errorf("Bool = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestConcurrent runs one Program and one Template from many goroutines, each
// with its own host, as the runner does; run it with -race.
func TestConcurrent(t *testing.T) {
	p := mustCompile(t, `host.name + ":" + string(len(filter(group("etcd"), #.name != host.name)))`, Any)
	tpl, ds := ParseTemplate(`{{ host.name }}-{{ semver_minor_of(etcd_version) }}-{{ hostvars(host.name).etcd_url }}`, at, testEnv(true))
	if ds.HasErrors() {
		t.Fatal(lines(ds))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := testScope()
			s.Host = testInventory.hosts[i%3]
			for range 50 {
				v, err := p.Eval(s)
				if want := s.Host.Name + ":2"; err != nil || v != want {
					errs <- fmt.Errorf("Eval = %v, %v; want %s", v, err, want)
					return
				}
				r, err := tpl.Render(s)
				if want := s.Host.Name + "-3.6-" + s.Host.Vars["etcd_url"].(string); err != nil || r != want {
					errs <- fmt.Errorf("Render = %v, %v; want %s", r, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrorFormat(t *testing.T) {
	long := strings.Repeat("x and ", 20) + "y"
	e := &Error{Pos: diag.Pos{File: "rb.yml", Line: 3, Col: 4}, Src: long, Err: errors.New("boom")}
	want := "rb.yml:3:4: boom (in `" + string([]rune(long)[:59]) + "…`)"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	e = &Error{Err: errors.New("boom"), Src: "a\n  b"}
	if got := e.Error(); got != "boom (in `a b`)" {
		t.Errorf("Error() = %q", got)
	}
}
