package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/promlab"
)

// The analysis step of runbooks/upgrade-etcd.yml and its metrics.
const stepAnalysis = "the member does as well as its peers"

var analysisMetrics = []string{"members-scraped", "grpc-error-rate", "proposals-failed", "leader-changes", "wal-fsync-p99-seconds"}

// TestUpgradeEtcdAnalysis runs the upgrade with a threshold no member can
// meet in its analysis against the others (through a real Prometheus
// scraping the lab's members, under write load): the first member's
// analysis fails after it started on the target, and it alone is rolled
// back. The passing case is TestUpgradeEtcd's full_upgrade, which runs the
// same analysis with the lab's thresholds (checkAnalysisPassed).
func TestUpgradeEtcdAnalysis(t *testing.T) {
	for _, sc := range []scenario{
		{
			name:  "analysis_fails",
			addrs: []string{"127.0.0.104", "127.0.0.105", "127.0.0.106"},
			// No fsync takes 0 seconds, and the peers' count for nothing:
			// the first measurement of the first member fails.
			prepare: func(t *testing.T, o *outcome) []string {
				return append(withPrometheus(t, o), `{"etcd_analysis_wal_fsync_p99_max": 0, "etcd_analysis_ratio": 0}`)
			},
			load:     true,
			wantExit: 1,
			check: func(t *testing.T, o *outcome) {
				checkRolledBack(t, o, stepAnalysis, "wal-fsync-p99-seconds failed")
				first := o.j.hostOrder()[0]
				if ends := o.j.stepEnds(first, stepStable); len(ends) != 1 || ends[0].Status != event.OK {
					t.Errorf("%s: the soak before the analysis did not pass: %+v", first, ends)
				}
				fsync := measurements(o.j, first)["wal-fsync-p99-seconds"]
				if len(fsync) != 1 || fsync[0]["verdict"] != "failed" {
					t.Errorf("%s: WAL fsync measurements %v, want one, failed (the step fails at once)", first, fsync)
				}
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.do(t) })
	}
}

// checkAnalysisPassed: every member's analysis passed with the lab's
// thresholds (the leader, upgraded last, too: its hand-over is not held
// against it), each metric measured as often as the lab says, and
// `runbook show` prints the measurements.
func checkAnalysisPassed(t *testing.T, o *outcome) {
	t.Helper()
	for _, h := range o.j.hostOrder() {
		if ends := o.j.stepEnds(h, stepAnalysis); len(ends) != 1 || ends[0].Status != event.OK {
			t.Errorf("%s: ends of %q: %+v, want one, ok", h, stepAnalysis, ends)
		}
		// The lab takes 3 measurements of each metric (runbooks/inventory/lab.yml).
		got := measurements(o.j, h)
		for _, m := range analysisMetrics {
			if len(got[m]) != 3 {
				t.Errorf("%s: %d measurements of %s, want 3: %v", h, len(got[m]), m, got[m])
			}
			for _, d := range got[m] {
				if d["verdict"] != "successful" {
					t.Errorf("%s: a measurement of %s was not successful: %v", h, m, d)
				}
			}
		}
		// Under load every member fsyncs its WAL: a real p99.
		for _, d := range got["wal-fsync-p99-seconds"] {
			if v, ok := d["value"].(float64); !ok || v <= 0 {
				t.Errorf("%s: WAL fsync p99 %v, want a number of seconds above 0", h, d["value"])
			}
		}
	}
	show := o.lab.show(o.j.runID(t))
	for _, want := range append([]string{"measurements:"}, analysisMetrics...) {
		if !strings.Contains(show, want) {
			t.Errorf("runbook show does not say %q:\n%s", want, show)
		}
	}
}

// withPrometheus starts a Prometheus scraping the lab's members' metrics
// (:2381, as runbooks/inventory/lab.yml's etcd_metrics_url names them) and
// returns the -e that points the upgrade's analysis at it.
func withPrometheus(t *testing.T, o *outcome) []string {
	t.Helper()
	targets := make([]string, len(o.lab.addrs))
	for i, a := range o.lab.addrs {
		targets[i] = a + ":2381"
	}
	prom := promlab.New(t, targets)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := prom.WaitQuery(ctx, `count(up{job="lab"} == 1) == 3`); err != nil {
		t.Fatal(err)
	}
	return []string{"prometheus_url=" + prom.URL}
}

// measurements are the analysis measurements the journal holds for host,
// by metric, in order.
func measurements(j journal, host string) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, e := range j.of(event.StepProgress, host) {
		if e.Step != stepAnalysis {
			continue
		}
		m, _ := e.Data["metric"].(string)
		out[m] = append(out[m], e.Data)
	}
	return out
}
