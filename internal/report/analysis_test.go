package report

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/runbookhq/runbook/internal/journal"
)

// TestAnalysisGolden: every measurement of an analysis step (its time,
// value, baseline, verdict and what it read or why it failed) is in the
// JSON and markdown reports. testdata/analysis.jsonl is a real run whose
// endpoint came up late: errors, then inconclusive measurements.
func TestAnalysisGolden(t *testing.T) {
	f, err := os.Open("testdata/analysis.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := journal.Replay(f)
	if err != nil {
		t.Fatal(err)
	}
	r := Build(st, "")
	if len(r.Analyses) != 1 || len(r.Analyses[0].Metrics) != 1 || len(r.Analyses[0].Metrics[0].Measurements) != 6 {
		t.Fatalf("analyses = %+v, want one step with 6 measurements", r.Analyses)
	}
	a := r.Analyses[0]
	last := a.Metrics[0].Measurements[5]
	if a.Host != "web1" || a.Verdict != "Inconclusive" || a.Status != "failed" || last.N != 6 || last.Value != 0.03 || last.Verdict != "inconclusive" {
		t.Errorf("analysis = %+v, last measurement %+v", a, last)
	}
	for _, tt := range []struct{ format, file string }{{"json", "analysis.json"}, {"markdown", "analysis.md"}, {"html", "analysis.html"}} {
		t.Run(tt.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.Write(&b, tt.format); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s; run go test ./internal/report -update and review the diff", tt.format, golden)
			}
		})
	}
}
