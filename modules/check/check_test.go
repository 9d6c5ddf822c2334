package check

import (
	"testing"

	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

func expr(src string) arg.Expr { return arg.Expr{Src: src} }

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"command", Module{Command: arg.Argv{"etcdctl", "endpoint", "health"}}, "", ""},
		{"command with expect", Module{Command: arg.Argv{"etcd", "--version"}, Expect: expr(`result.stdout contains "3.7"`)}, "", ""},
		{"http", Module{HTTP: &HTTP{URL: "https://10.0.0.1:2379/health", Method: "GET", Status: Statuses{200, 204},
			Headers: map[string]string{"Authorization": "Bearer x"}, CAFile: "ca.pem"}}, "", ""},
		{"http templated url", Module{HTTP: &HTTP{URL: "{{ url }}", CAFile: "ca.pem"}}, "", ""},
		{"tcp", Module{TCP: &TCP{Addr: "[::1]:2379", Closed: true}}, "", ""},
		{"tcp templated", Module{TCP: &TCP{Addr: "{{ host.addr }}:2379"}}, "", ""},
		{"etcd", Module{Etcd: &CheckConfig{ExpectMembers: Count(3), Consistency: true}}, "", ""},

		{"no probe", Module{}, "", "no probe given; give one of command, http, tcp or etcd"},
		{"expect alone", Module{Expect: expr("result.rc == 0")}, "expect", "no command is given"},
		{"two probes", Module{Command: arg.Argv{"true"}, TCP: &TCP{Addr: "a:1"}}, "tcp", "command is also given"},
		{"three probes", Module{Command: arg.Argv{"true"}, HTTP: &HTTP{URL: "http://a"}, TCP: &TCP{Addr: "a:1"}}, "http", "command is also given"},
		{"top-level expect with http", Module{Expect: expr("true"), HTTP: &HTTP{URL: "http://a"}}, "expect", "put expect inside it"},
		{"empty command", Module{Command: arg.Argv{""}}, "command", "is empty"},
		{"http without scheme", Module{HTTP: &HTTP{URL: "10.0.0.1:2379/health"}}, "http.url", "want an http:// or https:// URL"},
		{"http without host", Module{HTTP: &HTTP{URL: "http:///health"}}, "http.url", "has no host"},
		{"http lower-case method", Module{HTTP: &HTTP{URL: "http://a", Method: "get"}}, "http.method", `did you mean "GET"?`},
		{"http unknown method", Module{HTTP: &HTTP{URL: "http://a", Method: "BREW"}}, "http.method", "use one of GET"},
		{"http status out of range", Module{HTTP: &HTTP{URL: "http://a", Status: Statuses{200, 2000}}}, "http.status", "2000 is not an HTTP status"},
		{"http empty status list", Module{HTTP: &HTTP{URL: "http://a", Status: Statuses{}}}, "http.status", "empty list"},
		{"http body with HEAD", Module{HTTP: &HTTP{URL: "http://a", Method: "HEAD", BodyContains: "ok"}}, "http.body_contains", "no body"},
		{"http bad header", Module{HTTP: &HTTP{URL: "http://a", Headers: map[string]string{"X-Ok": "", "Bad Name": ""}}}, "http.headers", `"Bad Name"`},
		{"http ca_file without https", Module{HTTP: &HTTP{URL: "http://a", CAFile: "ca.pem"}}, "http.ca_file", "only used for https://"},
		{"tcp without port", Module{TCP: &TCP{Addr: "10.0.0.1"}}, "tcp.addr", "is not host:port"},
		{"tcp port out of range", Module{TCP: &TCP{Addr: "10.0.0.1:70000"}}, "tcp.addr", "not a number from 1 to 65535"},
		{"tcp without host", Module{TCP: &TCP{Addr: ":2379"}}, "tcp.addr", "has no host"},
		{"etcd and tcp", Module{TCP: &TCP{Addr: "a:1"}, Etcd: &CheckConfig{}}, "etcd", "tcp is also given"},
		{"expect with etcd", Module{Expect: expr("true"), Etcd: &CheckConfig{}}, "expect", "the etcd probe has rules of its own"},
		{"etcd rule", Module{Etcd: &CheckConfig{Versions: &VersionRules{Min: "3.6"}}}, "etcd.versions.min", "not an etcd version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func TestDefaults(t *testing.T) {
	m := &Module{HTTP: &HTTP{URL: "http://a"}, TCP: &TCP{Addr: "a:1"}}
	d := m.Defaults()
	if d.HTTP.Method != "GET" || len(d.HTTP.Status) != 1 || d.HTTP.Status[0] != 200 || d.HTTP.Timeout == 0 || d.TCP.Timeout == 0 {
		t.Errorf("Defaults = http %+v tcp %+v", *d.HTTP, *d.TCP)
	}
	if m.HTTP.Method != "" || m.HTTP.Status != nil {
		t.Errorf("Defaults changed the decoded http section: %+v", *m.HTTP)
	}
}
