package assertmetric

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/load/*.txtar")

func src(s string) arg.Expr { return arg.Expr{Src: s} }

func TestValidate(t *testing.T) {
	const u = "http://10.0.0.11:2381/metrics"
	leader := src(`metric("etcd_server_has_leader") == 1`)
	minute := arg.Duration(time.Minute)
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"url", Module{URL: u, Expect: leader}, "", ""},
		{"urls", Module{URLs: []string{u, "http://10.0.0.12:2381/metrics"}, Expect: leader, For: minute, Interval: arg.Duration(5 * time.Second)}, "", ""},
		{"templated url", Module{URL: "{{ metrics_url }}", Expect: leader, CAFile: "ca.pem"}, "", ""},
		{"https with files", Module{URL: "https://10.0.0.11:2379/metrics", Expect: leader, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem",
			Headers: map[string]string{"Authorization": "Bearer x"}}, "", ""},
		{"within and for", Module{URL: u, Expect: leader, Within: minute, For: minute}, "", ""},
		{"delta with for", Module{URL: u, Expect: loaded(t, `delta("etcd_server_leader_changes_seen_total") <= 1`), For: minute}, "", ""},
		{"settle", Module{URL: u, Expect: loaded(t, `delta("etcd_server_leader_changes_seen_total") <= 1`), For: minute, Settle: 3 * minute}, "", ""},
		{"settle as long as for", Module{URL: u, Expect: loaded(t, `delta("etcd_server_leader_changes_seen_total") <= 1`), For: minute, Settle: minute}, "", ""},
		{"settle without for", Module{URL: u, Expect: loaded(t, `delta("x") == 0`), Within: minute, Settle: minute}, "settle", "for is not given"},
		{"settle with within", Module{URL: u, Expect: loaded(t, `delta("x") == 0`), Within: minute, For: minute, Settle: minute}, "settle", "cannot go with within"},
		{"settle shorter than for", Module{URL: u, Expect: loaded(t, `delta("x") == 0`), For: 2 * minute, Settle: minute}, "settle", "1m0s is shorter than for (2m0s)"},
		{"settle without changes", Module{URL: u, Expect: loaded(t, `metric("x") == 0`), For: minute, Settle: 2 * minute}, "settle", "expect reads none"},

		{"no endpoint", Module{Expect: leader}, "", "no endpoint given; give url, or urls for several"},
		{"url and urls", Module{URL: u, URLs: []string{u}, Expect: leader}, "urls", "url is also given"},
		{"empty urls", Module{URLs: []string{}, Expect: leader}, "urls", "is an empty list"},
		{"bad url", Module{URL: "10.0.0.11:2381/metrics", Expect: leader}, "url", "want an http:// or https:// URL"},
		{"bad url in urls", Module{URLs: []string{u, "http:///metrics"}, Expect: leader}, "urls", "has no host"},
		{"url twice", Module{URLs: []string{u, u}, Expect: leader}, "urls", `"` + u + `" is given twice`},
		{"no expect", Module{URL: u}, "expect", "is required"},
		{"interval alone", Module{URL: u, Expect: leader, Interval: arg.Duration(time.Second)}, "interval", "neither is given"},
		{"delta without a window", Module{URL: u, Expect: loaded(t, `delta("etcd_server_leader_changes_seen_total") <= 1`)}, "expect", "uses delta, which measures changes since the step's first scrape, and without for or within there is no later one: add for or within"},
		{"quantile_delta without a window", Module{URL: u, Expect: loaded(t, `quantile_delta(0.99, "etcd_disk_wal_fsync_duration_seconds") < 0.01`)}, "expect", "uses quantile_delta"},
		{"bad header", Module{URL: u, Expect: leader, Headers: map[string]string{"X-Ok": "", "Bad Name": ""}}, "headers", `"Bad Name" is not a header name`},
		{"cert without key", Module{URL: "https://a/metrics", Expect: leader, CertFile: "c.pem"}, "cert_file", "give key_file too"},
		{"key without cert", Module{URL: "https://a/metrics", Expect: leader, KeyFile: "k.pem"}, "key_file", "give cert_file too"},
		{"ca_file without https", Module{URL: u, Expect: leader, CAFile: "ca.pem"}, "ca_file", "only used for https:// URLs"},
		{"cert_file without https", Module{URL: u, Expect: leader, CertFile: "c.pem", KeyFile: "k.pem"}, "cert_file", "only used for https:// URLs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

// loaded is expect as the loader leaves it: compiled, so Validate can see
// which functions it calls.
func loaded(t *testing.T, s string) arg.Expr {
	t.Helper()
	p, ds := eval.Compile(s, diag.Pos{}, &eval.Env{Result: true, Extra: new(Module).ExprNames("expect")}, eval.Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	return arg.Expr{Src: s, Program: p}
}

func TestDefaults(t *testing.T) {
	m := &Module{URL: "http://a/metrics"}
	d := m.Defaults()
	if d.Interval.Std() != time.Second || d.Timeout.Std() != 5*time.Second {
		t.Errorf("Defaults = interval %s, timeout %s", d.Interval, d.Timeout)
	}
	if m.Interval != 0 || m.Timeout != 0 {
		t.Errorf("Defaults changed the decoded arguments: %+v", m)
	}
}

func TestExprNamesOnlyForExpect(t *testing.T) {
	if names := new(Module).ExprNames("url"); names != nil {
		t.Errorf("ExprNames(url) = %v, want none", names)
	}
}

// TestLoad loads each testdata/load/*.txtar as runbook validate would: its
// runbook.yml must give exactly the diagnostics in its want section (none
// for a runbook that loads).
func TestLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "load", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var rbSrc []byte
			want := -1
			for i, f := range ar.Files {
				switch f.Name {
				case "runbook.yml":
					rbSrc = f.Data
				case "want":
					want = i
				default:
					t.Fatalf("unexpected section %q", f.Name)
				}
			}
			if rbSrc == nil || want < 0 {
				t.Fatal("need runbook.yml and want sections")
			}
			rb, ds := spec.LoadBytes("runbook.yml", rbSrc, modules.Default, spec.LoadOptions{Vars: map[string]any{"members": []any{}}})
			var got bytes.Buffer
			for _, d := range ds {
				got.WriteString(d.Error())
				got.WriteByte('\n')
			}
			if *update {
				ar.Files[want].Data = got.Bytes()
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got.String() != string(ar.Files[want].Data) {
				t.Errorf("diagnostics differ\ngot:\n%s\nwant:\n%s", got.String(), ar.Files[want].Data)
			}
			if (rb == nil) != ds.HasErrors() {
				t.Errorf("LoadBytes returned runbook %v with errors %v", rb != nil, ds.HasErrors())
			}
		})
	}
}

// TestFromRunbook loads a gate whose endpoints are a template, renders its
// arguments for a host as the engine does, and runs it.
func TestFromRunbook(t *testing.T) {
	up := serve(t, textFormat, healthy.page())
	down := serve(t, textFormat, withLeader(healthy, 0).page())
	const rbSrc = `runbook: gates
hosts: etcd
steps:
  - name: every member has a leader
    assert-metric:
      urls: '{{ members }}'
      expect: 'metric("etcd_server_has_leader") == 1 && delta("etcd_server_leader_changes_seen_total") == 0'
      for: 10s
`
	rb, ds := spec.LoadBytes("rb.yml", []byte(rbSrc), modules.Default, spec.LoadOptions{Vars: map[string]any{"members": []any{}}})
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	scope := &eval.Scope{Vars: map[string]any{"members": []any{up.url, down.url}}, Host: eval.Host{Name: "etcd-1"}}
	args, err := rb.Steps[0].NewArgs(modules.Default, scope)
	if err != nil {
		t.Fatal(err)
	}
	m := args.(*Module)
	if len(m.URLs) != 2 || m.URLs[1] != down.url || m.Expect.Program == nil {
		t.Fatalf("rendered arguments = %+v", m)
	}
	m.clock = newFakeClock()
	h := testHost(t)
	h.Scope = scope
	_, err = m.Run(testCtx(t), h)
	checkErr(t, err, []string{"rb.yml:7:16: expect does not hold at the first sample it judges (it must hold for 10s): at " + down.url + ": metric(\"etcd_server_has_leader\") == 1: was 0"}, "")
	if strings.Contains(err.Error(), up.url) {
		t.Errorf("the message names %s, where expect holds: %v", up.url, err)
	}
	if n := up.scrapes.Load(); n != 2 {
		t.Errorf("%s was scraped %d times, want 2: the baseline and the first judged sample", up.url, n)
	}
}

// TestExampleLoads loads the documented example as a runbook's steps: its
// expressions compile with the module's names and its arguments validate.
func TestExampleLoads(t *testing.T) {
	info, ok := modules.Default.Lookup("assert-metric")
	if !ok {
		t.Fatal("assert-metric is not registered")
	}
	var b strings.Builder
	b.WriteString("runbook: example\nhosts: etcd\nsteps:\n")
	for _, line := range strings.Split(info.Doc.Example, "\n") {
		b.WriteString("  " + line + "\n")
	}
	_, ds := spec.LoadBytes("example.yml", []byte(b.String()), modules.Default, spec.LoadOptions{})
	for _, d := range ds {
		t.Errorf("the example does not load cleanly: %s", d.Error())
	}
}
