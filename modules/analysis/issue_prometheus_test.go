package analysis

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/promlab"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// TestIssueQueriesAgainstPrometheus runs the issue's step, its queries and
// conditions as written, against a real Prometheus scraping real services
// at ADDR:8080 on loopback addresses of their own (the queries name port
// 8080): a canary as good as its peers passes, a canary with 10% errors
// fails at once, and one with 3% errors beside peers with none is
// inconclusive twice and held. Only the schedule is shortened.
func TestIssueQueriesAgainstPrometheus(t *testing.T) {
	promlab.Binary(t)
	listen := func(addr string) net.Listener {
		l, err := net.Listen("tcp", addr+":8080")
		if err != nil {
			t.Skipf("port 8080 of %s is not free here: %v", addr, err)
		}
		return l
	}
	// Two fleets, each with its own Prometheus: a good canary and a bad one
	// among the first; a slightly bad one beside a clean peer in the second.
	good, peer, bad := listen("127.0.0.21"), listen("127.0.0.22"), listen("127.0.0.23")
	meh, clean := listen("127.0.0.24"), listen("127.0.0.25")
	fleet1 := []*service{serveOn(t, good, 0), serveOn(t, peer, 0), serveOn(t, bad, 10)}
	fleet2 := []*service{serveOn(t, meh, 3), serveOn(t, clean, 0)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func(fleet []*service) *promlab.Server {
		var targets []string
		for _, s := range fleet {
			targets = append(targets, s.addr)
		}
		prom := promlab.New(t, targets)
		for _, s := range fleet {
			if err := prom.WaitQuery(ctx, `count_over_time(http_requests_total{instance="`+s.addr+`",code="200"}[1m]) >= 3`); err != nil {
				t.Fatal(err)
			}
		}
		return prom
	}
	prom1, prom2 := start(fleet1), start(fleet2)
	for _, w := range []struct {
		prom *promlab.Server
		addr string
	}{{prom1, "127.0.0.23:8080"}, {prom2, "127.0.0.24:8080"}} {
		if err := w.prom.WaitQuery(ctx, `sum(rate(http_requests_total{instance="`+w.addr+`",code=~"5.."}[1m])) > 0`); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range []struct {
		name    string
		prom    *promlab.Server
		addr    string
		want    Phase
		taken   int
		wantErr string
		hold    bool
	}{
		{"a good canary passes", prom1, "127.0.0.21", PhaseSuccessful, 3, "", false},
		{"a canary with 10% errors fails at once", prom1, "127.0.0.23", PhaseFailed, 1, "analysis failed: error-rate failed: 1 failed measurement of 1 measurement", false},
		{"3% errors beside a clean peer: inconclusive, held", prom2, "127.0.0.24", PhaseInconclusive, 2, "error-rate is inconclusive", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]any{"prometheus_url": tt.prom.URL}
			rb, ds := spec.LoadBytes("canary.yml", []byte(issueStep), modules.Default, spec.LoadOptions{Vars: vars})
			if err := ds.Err(); err != nil {
				t.Fatal(err)
			}
			args, err := rb.Steps[0].NewArgs(modules.Default, &eval.Scope{Vars: vars, Host: eval.Host{Name: "web", Addr: tt.addr}})
			if err != nil {
				t.Fatal(err)
			}
			m := args.(*Module)
			m.Interval, m.Count = arg.Duration(time.Second), 3 // the rest is the issue's
			res, err := m.Run(ctx, testHost())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q\n%v", err, tt.wantErr, res.Data)
			}
			var he *modules.HoldError
			if errors.As(err, &he) != tt.hold {
				t.Errorf("held = %v, want %v", errors.As(err, &he), tt.hold)
			}
			mt := res.Data["metrics"].([]any)[0].(map[string]any)
			ms := mt["measurements"].([]any)
			if res.Data["phase"] != string(tt.want) || len(ms) != tt.taken {
				t.Fatalf("phase %v after %d measurements, want %s after %d: %v", res.Data["phase"], len(ms), tt.want, tt.taken, mt)
			}
			for _, x := range ms {
				if v := x.(map[string]any); v["value"] == nil || v["baseline"] == nil {
					t.Errorf("measurement %v: want a value and a baseline", v)
				}
			}
		})
	}
}
