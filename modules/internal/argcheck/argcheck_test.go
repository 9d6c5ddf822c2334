package argcheck

import (
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	tests := []struct {
		name    string
		check   func(string) error
		in      string
		wantErr string // "" means accepted
	}{
		{"abs path", AbsPath, "/usr/local/bin/etcd", ""},
		{"root", AbsPath, "/", ""},
		{"templated path", AbsPath, "{{ etcd_bin }}", ""},
		{"empty path", AbsPath, "", "is empty"},
		{"relative path", AbsPath, "./bin/etcd", `"./bin/etcd" is relative; give an absolute path on the host, like /bin/etcd`},
		{"folder", AbsPath, "/usr/bin/", "ends in /"},
		{"unclean path", AbsPath, "/usr/./bin/etcd", `write "/usr/bin/etcd"`},

		{"host:port", HostPort, "127.0.0.1:2379", ""},
		{"name:port", HostPort, "etcd1.lan:2379", ""},
		{"ipv6", HostPort, "[::1]:2379", ""},
		{"templated addr", HostPort, "{{ host.addr }}:2379", ""},
		{"no port", HostPort, "127.0.0.1", "is not host:port"},
		{"bare ipv6", HostPort, "::1:2379", "is not host:port"},
		{"no host", HostPort, ":2379", "has no host"},
		{"port zero", HostPort, "a:0", "not a number from 1 to 65535"},
		{"named port", HostPort, "a:http", "not a number from 1 to 65535"},

		{"http", URL, "http://127.0.0.1:2379/health", ""},
		{"https", URL, "https://etcd1:2379/readyz?verbose", ""},
		{"templated url", URL, "{{ url }}", ""},
		{"no scheme", URL, "127.0.0.1:2379/health", "want an http:// or https:// URL"},
		{"other scheme", URL, "unix:///run/etcd.sock", "want an http:// or https:// URL"},
		{"no host in url", URL, "http:///health", "has no host"},
		{"bad url", URL, "http://a b/", "is not a URL"},

		{"signal", Signal, "TERM", ""},
		{"SIG signal", Signal, "SIGHUP", ""},
		{"lower-case signal", Signal, "term", "is not a signal"},
		{"unknown signal", Signal, "SIGSTOP", "use one of HUP, INT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%q: %v, want it accepted", tt.in, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%q: %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestOneOf(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"open", ""},
		{"Open", `did you mean "open"?`},
		{"opne", `did you mean "open"?`},
		{"half", `"half" is not a port state; use one of open, closed`},
	}
	for _, tt := range tests {
		err := OneOf("a port state", tt.in, "open", "closed")
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("OneOf(%q) = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}
