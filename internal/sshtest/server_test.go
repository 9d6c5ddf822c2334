package sshtest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDefaultExec(t *testing.T) {
	tests := []struct {
		cmd    string
		code   int
		stdout string
	}{
		{"true", 0, ""},
		{`printf 'runbook-pgid=%s\n' "$$" >&2 && exec 'true'`, 0, ""},
		{`printf 'runbook-pgid=%s\n' "$$" >&2 && exec 'false'`, 1, ""},
		{`printf 'runbook-pgid=%s\n' "$$" >&2 && exec 'echo' hi there`, 0, "hi there\n"},
		{"sleep 0.01", 0, ""},
		{"no-such", 127, ""},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := DefaultExec(context.Background(), tt.cmd, strings.NewReader(""), &out, &errOut)
		if code != tt.code || out.String() != tt.stdout {
			t.Errorf("%q: %d %q, want %d %q", tt.cmd, code, out.String(), tt.code, tt.stdout)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if code := DefaultExec(ctx, "sleep 600", nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 143 || time.Since(start) > 5*time.Second {
		t.Errorf("a cancelled sleep: %d after %s", code, time.Since(start))
	}
}
