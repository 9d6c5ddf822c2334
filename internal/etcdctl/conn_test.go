package etcdctl

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/internal/eval"
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

type inventory map[string][]eval.Host

func (i inventory) Group(name string) []eval.Host { return i[name] }

func TestResolveEndpoints(t *testing.T) {
	inv := inventory{
		"etcd": {
			{Name: "e1", Vars: map[string]any{"etcd_url": "http://10.0.0.1:2379"}},
			{Name: "e2", Vars: map[string]any{"etcd_url": "http://10.0.0.2:2379"}},
		},
		"kv":     {{Name: "k1", Vars: map[string]any{"etcd_url": "http://10.1.0.1:2379"}}},
		"broken": {{Name: "b1", Addr: "10.2.0.1", Vars: map[string]any{}}},
	}
	tests := []struct {
		name    string
		c       Conn
		env     Env
		want    []string
		wantErr string
	}{
		{"given", Conn{Endpoints: arg.StringList{"http://a:1/"}}, Env{Inventory: inv}, []string{"http://a:1"}, ""},
		{"var list", Conn{}, Env{Vars: map[string]any{"etcd_endpoints": []any{"http://a:1", "http://b:1"}}, Inventory: inv}, []string{"http://a:1", "http://b:1"}, ""},
		{"var string", Conn{}, Env{Vars: map[string]any{"etcd_endpoints": "http://a:1"}}, []string{"http://a:1"}, ""},
		{"group etcd", Conn{}, Env{Inventory: inv}, []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}, ""},
		{"etcd_group", Conn{}, Env{Vars: map[string]any{"etcd_group": "kv"}, Inventory: inv}, []string{"http://10.1.0.1:2379"}, ""},

		{"var not a list", Conn{}, Env{Vars: map[string]any{"etcd_endpoints": 3}}, nil, "var etcd_endpoints must be a list of client URLs"},
		{"var with a number", Conn{}, Env{Vars: map[string]any{"etcd_endpoints": []any{"http://a:1", 2}}}, nil, "var etcd_endpoints must be a list"},
		{"no inventory", Conn{}, Env{}, nil, "give endpoints, or set var etcd_endpoints"},
		{"empty group", Conn{}, Env{Vars: map[string]any{"etcd_group": "none"}, Inventory: inv}, nil, "group none has no hosts"},
		{"host without url", Conn{}, Env{Vars: map[string]any{"etcd_group": "broken"}, Inventory: inv}, nil, "host b1 of group broken has no var etcd_url (its client URL, like http://10.2.0.1:2379)"},
		{"bad url in var", Conn{}, Env{Vars: map[string]any{"etcd_endpoints": []any{"10.0.0.1:2379"}}}, nil, "not a client URL"},
		{"twice", Conn{Endpoints: arg.StringList{"http://a:1", "http://a:1/"}}, Env{}, nil, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.c.Resolve(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Endpoints, tt.want) {
				t.Errorf("endpoints = %v, want %v", cfg.Endpoints, tt.want)
			}
			if cfg.DialTimeout != DefaultDialTimeout || cfg.Timeout != DefaultTimeout || cfg.TLS != nil {
				t.Errorf("cfg = %+v, want the default timeouts and no TLS", cfg)
			}
		})
	}
}

func TestResolveTLS(t *testing.T) {
	dir := t.TempDir()
	pki, err := etcdlab.NewPKI(dir, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	eps := arg.StringList{"https://127.0.0.1:2379"}
	tests := []struct {
		name     string
		c        Conn
		vars     map[string]any
		wantErr  string
		wantCert bool
	}{
		{"relative to the runbook", Conn{Endpoints: eps, CAFile: "ca.pem", CertFile: "client.pem", KeyFile: "client-key.pem"}, nil, "", true},
		{"absolute", Conn{Endpoints: eps, CAFile: pki.CAFile}, nil, "", false},
		{"from vars", Conn{Endpoints: eps}, map[string]any{"etcd_ca_file": "ca.pem", "etcd_cert_file": "client.pem", "etcd_key_file": "client-key.pem"}, "", true},
		{"arguments win over vars", Conn{Endpoints: eps, CAFile: "ca.pem"}, map[string]any{"etcd_ca_file": "missing.pem"}, "", false},
		{"missing ca", Conn{Endpoints: eps, CAFile: "missing.pem"}, nil, "ca_file: open", false},
		{"junk ca", Conn{Endpoints: eps, CAFile: "junk.pem"}, nil, "holds no PEM certificate", false},
		{"key that is not the cert's", Conn{Endpoints: eps, CertFile: "client.pem", KeyFile: "server-key.pem"}, nil, "cert_file and key_file", false},
		{"cert var without key var", Conn{Endpoints: eps}, map[string]any{"etcd_cert_file": "client.pem"}, "give both or neither", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.DialTimeout = arg.Duration(time.Second)
			cfg, err := tt.c.Resolve(Env{Vars: tt.vars, Dir: dir})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TLS == nil || cfg.TLS.RootCAs == nil || cfg.TLS.InsecureSkipVerify {
				t.Fatalf("TLS = %+v, want the CA as roots and verification on", cfg.TLS)
			}
			if got := len(cfg.TLS.Certificates) == 1; got != tt.wantCert {
				t.Errorf("client certificate loaded = %v, want %v", got, tt.wantCert)
			}
			if cfg.DialTimeout != time.Second {
				t.Errorf("dial timeout = %s, want the given 1s", cfg.DialTimeout)
			}
		})
	}
}
