package hostfile

import (
	"testing"

	"github.com/runbookhq/runbook/internal/redact"
)

func TestMatchesRedacted(t *testing.T) {
	const p = redact.Placeholder
	tests := []struct {
		rec, actual string
		want        bool
	}{
		{"/opt/etcd-" + p + "/bin", "/opt/etcd-v3/bin", true},
		{"/opt/etcd-" + p + "/bin", "/opt/etcd-/bin", false},
		{"/opt/" + p + "-" + p, "/opt/a-b", true},
		{"/opt/" + p + "-" + p, "/opt/a-", false},
		{p, "x", true},
		{"/a/" + p, "/b/x", false},
		{"/a/" + p + "/x", "/a/x", false},
	}
	for _, tt := range tests {
		if got := MatchesRedacted(tt.rec, tt.actual); got != tt.want {
			t.Errorf("MatchesRedacted(%q, %q) = %v, want %v", tt.rec, tt.actual, got, tt.want)
		}
	}
}
