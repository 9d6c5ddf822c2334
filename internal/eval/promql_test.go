package eval

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/promlab"
)

// TestPromQLSyntaxAtLoad: a query that does not parse fails the compile,
// at the place of its string in the file.
func TestPromQLSyntaxAtLoad(t *testing.T) {
	_, ds := Compile(`promql("sum(rate(x[1m])") > 0`, diag.Pos{File: "rb.yml", Line: 7, Col: 15}, testEnv(true), Bool)
	if !ds.HasErrors() {
		t.Fatal("a PromQL syntax error compiled")
	}
	got := ds[0].Error()
	// At the character where the query goes wrong: its end, here.
	if !strings.HasPrefix(got, "rb.yml:7:38: PromQL syntax error at column 16 of the query: unclosed left parenthesis") {
		t.Errorf("diagnostic %q", got)
	}
	// Escapes in the literal take more characters than they write.
	for _, tt := range []struct{ src, want string }{
		{`promql("sum(up{job=\"etcd\"}) >") > 0`, "rb.yml:7:46: PromQL syntax error at column 22 of the query"},
		{`promql('rate(x[1m]) +\u00e9 1') > 0`, "rb.yml:7:36: PromQL syntax error at column 14 of the query: unexpected character"},
		{"promql(`sum(x) by (`) > 0", "rb.yml:7:34: PromQL syntax error at column 12 of the query"},
	} {
		_, ds := Compile(tt.src, diag.Pos{File: "rb.yml", Line: 7, Col: 15}, testEnv(true), Bool)
		if !ds.HasErrors() || !strings.HasPrefix(ds[0].Error(), tt.want) {
			t.Errorf("%s: diagnostic %v, want %q", tt.src, ds, tt.want)
		}
	}
	if _, ds := Compile(`promql("sum(rate(x[1m]))") > 0`, at, testEnv(true), Bool); ds.HasErrors() {
		t.Errorf("a good query did not compile: %v", ds.Err())
	}
}

// TestPromQLFunc asks a real Prometheus scraping a real endpoint.
func TestPromQLFunc(t *testing.T) {
	promlab.Binary(t)
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "runbook_test_answer", Help: "a value the test sets"})
	g.Set(42)
	reg.MustRegister(g)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	prom := promlab.New(t, []string{strings.TrimPrefix(srv.URL, "http://")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := prom.WaitQuery(ctx, "runbook_test_answer"); err != nil {
		t.Fatal(err)
	}
	p, ds := Compile(`promql("sum(runbook_test_answer)") == 42 && promql("sum(runbook_test_answer{x=\"none\"})") == 0`, at, testEnv(false), Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	s := &Scope{Vars: map[string]any{PrometheusVar: prom.URL}}
	if ok, err := p.Bool(s); err != nil || !ok {
		t.Errorf("promql() = %v, %v; want true", ok, err)
	}
	p, _ = Compile(`promql("runbook_test_answr") == 42`, at, testEnv(false), Bool)
	if _, err := p.Bool(s); err == nil || !strings.Contains(err.Error(), "no series named runbook_test_answr") {
		t.Errorf("a misspelt name: %v", err)
	}
	if _, err := p.Bool(&Scope{}); err == nil || !strings.Contains(err.Error(), "set the var prometheus_url") {
		t.Errorf("without a server: %v", err)
	}
}
