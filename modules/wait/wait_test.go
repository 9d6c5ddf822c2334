package wait

import (
	"testing"
	"time"

	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

func dur(d time.Duration) arg.Duration { return arg.Duration(d) }

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"for", Module{For: dur(30 * time.Second)}, "", ""},
		{"port", Module{Port: "127.0.0.1:2379"}, "", ""},
		{"port closed with times", Module{Port: "localhost:2380", State: "closed", Timeout: dur(90 * time.Second), Interval: dur(2 * time.Second)}, "", ""},
		{"path absent", Module{Path: "/var/lib/etcd/member/wal", State: "absent"}, "", ""},
		{"templated port", Module{Port: "{{ host.addr }}:2379"}, "", ""},

		{"nothing", Module{}, "", "nothing to wait for"},
		{"for and port", Module{For: dur(time.Second), Port: "a:1"}, "port", "for is also given"},
		{"port and path", Module{Port: "a:1", Path: "/x"}, "path", "port is also given"},
		{"for with state", Module{For: dur(time.Second), State: "open"}, "state", "is for port and path"},
		{"for with timeout", Module{For: dur(time.Second), Timeout: dur(time.Minute)}, "timeout", "is for port and path"},
		{"for with interval", Module{For: dur(time.Second), Interval: dur(time.Second)}, "interval", "is for port and path"},
		{"port state of a path", Module{Port: "a:1", State: "present"}, "state", `"present" is not a port state; use one of open, closed`},
		{"path state of a port", Module{Path: "/x", State: "open"}, "state", `"open" is not a path state; use one of present, absent`},
		{"state in capitals", Module{Port: "a:1", State: "Closed"}, "state", `did you mean "closed"?`},
		{"port without host", Module{Port: "2379"}, "port", "is not host:port"},
		{"relative path", Module{Path: "var/lib/etcd"}, "path", "is relative"},
		{"interval over timeout", Module{Port: "a:1", Timeout: dur(5 * time.Second), Interval: dur(10 * time.Second)}, "interval", "longer than timeout (5s)"},
		{"timeout under the default interval", Module{Path: "/x", Timeout: dur(500 * time.Millisecond)}, "timeout", "interval (1s) is longer than timeout (500ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		m    Module
		want Module
	}{
		{Module{Port: "a:1"}, Module{Port: "a:1", State: "open", Timeout: dur(time.Minute), Interval: dur(time.Second)}},
		{Module{Path: "/x", Interval: dur(5 * time.Second)}, Module{Path: "/x", State: "present", Timeout: dur(time.Minute), Interval: dur(5 * time.Second)}},
		{Module{Port: "a:1", State: "closed"}, Module{Port: "a:1", State: "closed", Timeout: dur(time.Minute), Interval: dur(time.Second)}},
	}
	for _, tt := range tests {
		if got := tt.m.Defaults(); *got != tt.want {
			t.Errorf("Defaults(%+v) = %+v, want %+v", tt.m, *got, tt.want)
		}
	}
}
