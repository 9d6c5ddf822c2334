package canary

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/promlab"
)

// lab is a test's time limit and a Prometheus of its own scraping the
// fleet at index i.
func lab(t *testing.T, i int) (context.Context, *promlab.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx, promlab.New(t, targets(i))
}

// Step names of runbooks/canary-deploy.yml.
const (
	analysisStep = "analysis of the new instance against its peers"
	breakerStep  = "circuit breaker, the changed fleet against the rest"
	metric       = "error-rate"
	fleetMetric  = "fleet-error-rate"
)

// TestCanaryRollout rolls version 2.0.0 across four instances in batches of
// 1, 2 and 1, each variant of the new version on a fleet of its own with a
// Prometheus of its own: the analysis compares an instance with its peers,
// and a peer is any instance its Prometheus scrapes, so fleets sharing one
// would judge each other. So isolated, they run at once.
func TestCanaryRollout(t *testing.T) {
	t.Parallel()
	// good: every instance on the new version, each analysed against its
	// peers, the circuit breaker passed after batches 1 and 2.
	t.Run("good", func(t *testing.T) {
		t.Parallel()
		ctx, prom := lab(t, 0)
		f := newFleet(t, 0, prom, nil, nil)
		f.start(ctx)
		before, old := f.look(), f.journals()
		code, out := f.run(ctx, "-e", "variant=good")
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s", code, out)
		}
		after, j := f.look(), readJournal(t, f.newJournal(old))
		f.wantVersions(after, map[string]string{"web1": newVersion, "web2": newVersion, "web3": newVersion, "web4": newVersion})
		for _, h := range hosts {
			f.wantRestarted(h, before, after)
			ms, phase := measurements(t, j.stepEnd("steps", h, analysisStep), metric)
			if phase != "Successful" || verdicts(ms) != "successful,successful,successful,successful" {
				t.Errorf("%s: analysis %s, measurements %s; want 4 successful", h, phase, verdicts(ms))
			}
		}
		if b := j.breaker(); b != "ok,ok,skipped" {
			t.Errorf("circuit breaker %s: want passed after batches 1 and 2, skipped after the last", b)
		}
		if rb := j.find("rollback_start", ""); len(rb) != 0 {
			t.Errorf("rolled back: %+v", rb)
		}
	})

	// bad: the canary fails 5% of its requests, fails its analysis without
	// waiting for the remaining measurements and is rolled back; nothing
	// else is touched.
	t.Run("bad", func(t *testing.T) {
		t.Parallel()
		ctx, prom := lab(t, 1)
		f := newFleet(t, 1, prom, nil, nil)
		f.start(ctx)
		before, old := f.look(), f.journals()
		code, out := f.run(ctx, "-e", "variant=bad")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		after, j := f.look(), readJournal(t, f.newJournal(old))
		f.wantVersions(after, map[string]string{"web1": oldVersion, "web2": oldVersion, "web3": oldVersion, "web4": oldVersion})
		f.wantRestarted("web1", before, after)
		f.wantRolledBack(j, "web1")
		end := j.stepEnd("steps", "web1", analysisStep)
		ms, phase := measurements(t, end, metric)
		t.Logf("canary analysis: %s, %s", phase, describe(ms))
		if phase != "Failed" || len(ms) == 0 || len(ms) == 4 || ms[len(ms)-1].Verdict != "failed" || end.Status != "failed" {
			t.Errorf("canary analysis %s (step %s), measurements %s: want Failed on a failed measurement", phase, end.Status, verdicts(ms))
		}
		for _, h := range hosts[1:] {
			f.wantUntouched(h, before, after, j)
		}
	})

	// slow: the canary fails 1.5%, neither good nor bad; the analysis is
	// inconclusive and, with no terminal to ask, the canary is rolled back
	// and the run stops (exit 3).
	t.Run("slow", func(t *testing.T) {
		t.Parallel()
		ctx, prom := lab(t, 2)
		f := newFleet(t, 2, prom, nil, nil)
		f.start(ctx)
		before, old := f.look(), f.journals()
		code, out := f.run(ctx, "-e", "variant=slow")
		if code != 3 {
			t.Fatalf("exit %d, want 3\n%s", code, out)
		}
		after, j := f.look(), readJournal(t, f.newJournal(old))
		f.wantVersions(after, map[string]string{"web1": oldVersion, "web2": oldVersion, "web3": oldVersion, "web4": oldVersion})
		f.wantRestarted("web1", before, after)
		f.wantRolledBack(j, "web1")
		ms, phase := measurements(t, j.stepEnd("steps", "web1", analysisStep), metric)
		t.Logf("canary analysis: %s, %s", phase, describe(ms))
		if phase != "Inconclusive" || strings.Count(verdicts(ms), "inconclusive") != 2 {
			t.Errorf("canary analysis %s, measurements %s: want Inconclusive after 2 inconclusive measurements", phase, verdicts(ms))
		}
		for _, h := range hosts[1:] {
			f.wantUntouched(h, before, after, j)
		}
	})

	// breaker: the canary is good and passes its analysis; web2 and web3,
	// the second batch, are bad and have no analysis of their own
	// (host_analysis: canary). The circuit breaker after batch 2 fails, the
	// run aborts, and on_abort: rollback_completed rolls back both batches,
	// the canary too; web4, the third batch, is never touched.
	t.Run("breaker", func(t *testing.T) {
		t.Parallel()
		ctx, prom := lab(t, 3)
		bad := map[string]string{"variant": "bad"}
		f := newFleet(t, 3, prom, map[string]string{"host_analysis": "canary"}, map[string]map[string]string{"web2": bad, "web3": bad})
		f.start(ctx)
		before, old := f.look(), f.journals()
		code, out := f.run(ctx)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		after, j := f.look(), readJournal(t, f.newJournal(old))
		f.wantVersions(after, map[string]string{"web1": oldVersion, "web2": oldVersion, "web3": oldVersion, "web4": oldVersion})
		for _, h := range hosts[:3] {
			f.wantRestarted(h, before, after)
			f.wantRolledBack(j, h)
		}
		f.wantUntouched("web4", before, after, j)
		if ms, phase := measurements(t, j.stepEnd("steps", "web1", analysisStep), metric); phase != "Successful" {
			t.Errorf("the canary's analysis %s (%s), want Successful", phase, verdicts(ms))
		}
		for _, h := range []string{"web2", "web3"} {
			if e := j.stepEnd("steps", h, analysisStep); e == nil || e.Status != "skipped" {
				t.Errorf("%s: analysis step %+v, want skipped (host_analysis: canary)", h, e)
			}
		}
		if b := j.breaker(); b != "ok,failed" {
			t.Fatalf("circuit breaker %s: want passed after batch 1 and failed after batch 2", b)
		}
		// Two of the three changed instances fail 5%: the changed fleet's
		// rate is about 3.3%, just over failure (3%), so a measurement may
		// read it inconclusive, which fails a breaker too
		// (on_inconclusive: fail). It never passes one.
		ends := j.breakerEnds()
		ms, phase := measurements(t, &ends[1], fleetMetric)
		t.Logf("breaker after batch 2: %s, %s", phase, describe(ms))
		if last := ms[len(ms)-1]; phase != "Failed" && phase != "Inconclusive" || last.Verdict != "failed" && last.Verdict != "inconclusive" || strings.Contains(verdicts(ms), "successful") {
			t.Errorf("breaker after batch 2: %s, measurements %s; want Failed (or Inconclusive) without a successful measurement", phase, verdicts(ms))
		}
		if len(j.find("abort", "")) != 1 {
			t.Errorf("no abort in the journal")
		}
	})
}

// TestPrometheusStoppedMidAnalysis stops Prometheus after the canary's
// first measurement: the next ones are query errors, the metric is in
// Error once they pass consecutive_error_limit (3), the step fails and the
// canary is rolled back to the old version.
func TestPrometheusStoppedMidAnalysis(t *testing.T) {
	t.Parallel()
	ctx, prom := lab(t, 4)
	f := newFleet(t, 4, prom, nil, nil)
	f.start(ctx)
	before, old := f.look(), f.journals()

	type exit struct {
		code int
		out  string
	}
	done := make(chan exit, 1)
	go func() {
		code, out := f.run(ctx, "-e", "variant=good")
		done <- exit{code, out}
	}()
	// The first measurement of the canary, taken and judged.
	var path string
	poll(ctx, t, "the canary's first measurement is in the journal", func() (bool, string) {
		if path == "" {
			for _, p := range f.journals() {
				if !slices.Contains(old, p) {
					path = p
				}
			}
			if path == "" {
				return false, "no journal yet"
			}
		}
		for _, e := range readJournal(t, path).find("step_progress", "web1") {
			if e.Step == analysisStep && e.Data["n"] == float64(1) {
				return e.Data["verdict"] == "successful", "first measurement " + e.Data["verdict"].(string)
			}
		}
		return false, "no measurement yet"
	})
	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
	var r exit
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("the run did not end")
	}
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
	}
	after, j := f.look(), readJournal(t, path)
	f.wantVersions(after, map[string]string{"web1": oldVersion, "web2": oldVersion, "web3": oldVersion, "web4": oldVersion})
	f.wantRestarted("web1", before, after)
	f.wantRolledBack(j, "web1")
	end := j.stepEnd("steps", "web1", analysisStep)
	ms, phase := measurements(t, end, metric)
	t.Logf("canary analysis: %s, %s", phase, describe(ms))
	if phase != "Error" || verdicts(ms) != "successful,error,error,error,error" {
		t.Errorf("analysis %s, measurements %s: want Error after 1 successful and 4 errors", phase, verdicts(ms))
	}
	// Each error says that Prometheus did not answer.
	for _, m := range ms[1:] {
		if !strings.Contains(m.Error, "connection refused") {
			t.Errorf("measurement %d: error %q, want Prometheus' connection refused", m.N, m.Error)
		}
	}
	if !strings.Contains(end.Error, "could not be measured: 4 errors in a row, more than consecutive_error_limit 3") {
		t.Errorf("step error %q", end.Error)
	}
	// runbook show prints them as a table, errors included (cut short:
	// the query comes before the cause).
	show := exec.CommandContext(ctx, bins.runbook, "show", "--state-dir", f.state, strings.TrimSuffix(filepath.Base(path), ".jsonl"))
	out, err := show.CombinedOutput()
	if err != nil {
		t.Fatalf("runbook show: %v\n%s", err, out)
	}
	rows := regexp.MustCompile(`(?m)^\S+ +web1 +`+regexp.QuoteMeta(analysisStep)+` +error-rate +[2-5] +- +- +error +prometheus `).FindAll(out, -1)
	if !strings.Contains(string(out), "\nmeasurements:\n") || len(rows) != 4 {
		t.Errorf("runbook show: %d rows of errors, want 4:\n%s", len(rows), out)
	}
	for _, h := range hosts[1:] {
		f.wantUntouched(h, before, after, j)
	}
}

// wantRolledBack fails the test unless host's rollback ended rolled_back.
func (f *fleet) wantRolledBack(j journal, host string) {
	f.t.Helper()
	ends := j.find("rollback_end", host)
	if len(ends) != 1 || ends[0].Status != "rolled_back" {
		f.t.Errorf("%s: rollback ends %+v, want one rolled_back", host, ends)
	}
}

// breakerEnds are the ends of the circuit breaker after each batch.
func (j journal) breakerEnds() []event {
	var out []event
	for _, e := range j.find("step_end", "") {
		if e.Phase == "between_batches" && e.Step == breakerStep {
			out = append(out, e)
		}
	}
	return out
}

// breaker is the circuit breaker's status after each batch, in order.
func (j journal) breaker() string {
	var out []string
	for _, e := range j.breakerEnds() {
		out = append(out, e.Status)
	}
	return strings.Join(out, ",")
}
