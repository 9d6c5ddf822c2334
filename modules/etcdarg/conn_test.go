package etcdarg

import (
	"errors"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

func TestConnValidate(t *testing.T) {
	tests := []struct {
		name      string
		c         Conn
		wantField string
		wantMsg   string
	}{
		{"nothing: defaults from vars", Conn{}, "", ""},
		{"http endpoints", Conn{Endpoints: arg.StringList{"http://10.0.0.1:2379", "http://10.0.0.2:2379/"}}, "", ""},
		{"https with tls", Conn{Endpoints: arg.StringList{"https://a:2379"}, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}, "", ""},
		{"templated", Conn{Endpoints: arg.StringList{"{{ url }}"}, CAFile: "ca.pem"}, "", ""},
		{"tls files with endpoints from vars", Conn{CAFile: "ca.pem"}, "", ""},

		{"empty list", Conn{Endpoints: arg.StringList{}}, "etcd.endpoints", "empty list"},
		{"no scheme", Conn{Endpoints: arg.StringList{"10.0.0.1:2379"}}, "etcd.endpoints", "not a client URL"},
		{"grpc scheme", Conn{Endpoints: arg.StringList{"unix://x"}}, "etcd.endpoints", "not a client URL"},
		{"no port", Conn{Endpoints: arg.StringList{"http://10.0.0.1"}}, "etcd.endpoints", "no port; etcd's client port is usually 2379: http://10.0.0.1:2379"},
		{"path", Conn{Endpoints: arg.StringList{"http://a:2379/health"}}, "etcd.endpoints", "has a path"},
		{"no host", Conn{Endpoints: arg.StringList{"http://:2379"}}, "etcd.endpoints", "no host"},
		{"cert without key", Conn{CertFile: "c.pem"}, "etcd.cert_file", "without key_file"},
		{"key without cert", Conn{KeyFile: "k.pem"}, "etcd.key_file", "without cert_file"},
		{"ca with http only", Conn{Endpoints: arg.StringList{"http://a:2379"}, CAFile: "ca.pem"}, "etcd.ca_file", "only used with https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.c.Validate("etcd."), tt.wantField, tt.wantMsg)
		})
	}
}

// wantErr fails t unless err is nil (no field, no message) or a FieldError
// on wantField whose message contains wantMsg.
func wantErr(t *testing.T, err error, wantField, wantMsg string) {
	t.Helper()
	var fe *modules.FieldError
	switch {
	case wantField == "" && wantMsg == "":
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
	case !errors.As(err, &fe) || fe.Field != wantField || !strings.Contains(fe.Msg, wantMsg):
		t.Errorf("err = %v, want a FieldError on %s containing %q", err, wantField, wantMsg)
	}
}
