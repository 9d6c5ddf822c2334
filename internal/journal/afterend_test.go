package journal

import (
	"strings"
	"testing"
)

// TestAfterEnd: a notification given up after the run ended is journaled
// after run_end; any other kind there is still damage.
func TestAfterEnd(t *testing.T) {
	const head = `{"seq":1,"time":"2026-12-07T10:00:00Z","run_id":"R","kind":"run_start","data":{"runbook":"rb.yml"}}
{"seq":2,"time":"2026-12-07T10:00:01Z","run_id":"R","kind":"run_end","status":"ok","data":{"exit_code":0}}
`
	for _, tt := range []struct {
		kind, wantErr string
	}{
		{"notify_failed", ""},
		{"abort", "comes after run_end"},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			j := head + `{"seq":3,"time":"2026-12-07T10:00:02Z","run_id":"R","kind":"` + tt.kind + `","error":"x"}` + "\n"
			st, err := Replay(strings.NewReader(j))
			if tt.wantErr == "" {
				if err != nil || !st.Finished || st.ExitCode != 0 || len(st.Events) != 3 {
					t.Fatalf("Replay = %v; want the run ended ok with 3 events", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Replay error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
