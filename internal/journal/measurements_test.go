package journal

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/runbookhq/runbook/internal/event"
)

// TestMeasurementsTable reads an analysis step's result as the journal
// gives it back (JSON numbers) and prints one row per measurement.
func TestMeasurementsTable(t *testing.T) {
	var result map[string]any
	if err := json.Unmarshal([]byte(`{"phase": "Failed", "metrics": [{"name": "error-rate", "measurements": [
		{"n": 1, "time": "2026-12-07T03:00:00Z", "value": 0.001, "baseline": 0.002, "verdict": "successful"},
		{"n": 2, "time": "2026-12-07T03:00:10Z", "verdict": "error", "error": "prometheus http://127.0.0.1:9090: connection refused"},
		{"n": 3, "time": "2026-12-07T03:00:20Z", "value": 0.08, "baseline": 0.002, "verdict": "failed"}]}]}`), &result); err != nil {
		t.Fatal(err)
	}
	s := &State{Events: []event.Event{
		{Kind: event.StepStart, Host: "web-1", Step: "canary analysis"},
		{Kind: event.StepEnd, Host: "web-1", Step: "canary analysis", Status: event.Failed, Result: result},
	}}
	var b bytes.Buffer
	s.writeMeasurements(&b)
	want := `
measurements:
TIME      HOST   STEP             METRIC      N  VALUE  BASELINE  VERDICT     DETAIL
03:00:00  web-1  canary analysis  error-rate  1  0.001  0.002     successful
03:00:10  web-1  canary analysis  error-rate  2  -      -         error       prometheus http://127.0.0.1:9090: connection refused
03:00:20  web-1  canary analysis  error-rate  3  0.08   0.002     failed
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	(&State{Events: []event.Event{{Kind: event.StepEnd, Result: map[string]any{"rc": 0.0}}}}).writeMeasurements(&b)
	if b.Len() != 0 {
		t.Errorf("a run without analysis printed %q", b.String())
	}
}
