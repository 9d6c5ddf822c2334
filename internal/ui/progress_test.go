package ui

import "testing"

func TestProgressText(t *testing.T) {
	tests := []struct {
		data map[string]any
		want string
	}{
		{map[string]any{"metric": "error-rate", "n": 2, "value": 0.0123456, "baseline": 0.01, "verdict": "successful"}, "error-rate #2: 0.01235 (baseline 0.01) successful"},
		{map[string]any{"metric": "error-rate", "n": 3.0, "verdict": "error", "error": "connection refused"}, "error-rate #3: error: connection refused"},
		{map[string]any{"msg": "halfway"}, "halfway"},
		{nil, "progress"},
	}
	for _, tt := range tests {
		if got := progressText(tt.data); got != tt.want {
			t.Errorf("progressText(%v) = %q, want %q", tt.data, got, tt.want)
		}
	}
}
