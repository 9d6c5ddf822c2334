package promql

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		query      string
		ok         bool
		line, col  int
		templateOK bool // CheckTemplated could check it
	}{
		{query: `sum(rate(http_requests_total{code=~"5.."}[1m]))`, ok: true, templateOK: true},
		{query: `sum(rate(http_requests_total[1m])`, line: 1, col: 34, templateOK: true},
		{query: "sum(\n  rate(x[1m]) +)", line: 2, col: 16, templateOK: true},
		{query: `sum(rate(x[1m])))`, line: 1, col: 17, templateOK: true}, // at the ) too many
		{query: `x]`, line: 1, col: 2, templateOK: true},
		{query: `rate(x{instance="{{ host.addr }}:8080"}[1m])`, ok: true, templateOK: true},
		{query: `rate(x{instance="{{ host.addr }}:8080"}[1m]) >`, line: 1, col: 47, templateOK: true},
		{query: `rate(x[{{ window }}])`, ok: true},
		{query: ``, line: 1, col: 1, templateOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			checked, err := CheckTemplated(tt.query)
			if checked != tt.templateOK {
				t.Fatalf("CheckTemplated checked = %v, want %v", checked, tt.templateOK)
			}
			if !checked {
				return
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *SyntaxError", err)
			}
			if se.Query != tt.query {
				t.Errorf("Query = %q, want the original text", se.Query)
			}
			if l, c := LineCol(se.Query, se.Offset); l != tt.line || c != tt.col {
				t.Errorf("at %d:%d, want %d:%d (%v)", l, c, tt.line, tt.col, err)
			}
		})
	}
}
