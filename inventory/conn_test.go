package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConnectionVars(t *testing.T) {
	inv := mustLoad(t, "testdata/conn.yml")
	home, _ := os.UserHomeDir()
	type want struct {
		addr, user, conn, key, becomeUser string
		port                              int
		become                            bool
	}
	tests := []struct {
		host string
		want want
	}{
		{"localhost", want{addr: "localhost", conn: "local", port: 22}},
		{"local2", want{addr: "local2", conn: "local", port: 22}},
		{"plain", want{addr: "plain", conn: "ssh", port: 22}},
		{"full", want{addr: "192.0.2.10", user: "deploy", conn: "ssh", key: "/keys/id_deploy", becomeUser: "etcd", port: 2222, become: true}},
		{"sshvars", want{addr: "192.0.2.11", user: "ops", conn: "ssh", key: filepath.Join(home, ".ssh/id_ops"), port: 2200}},
		{"hostport", want{addr: "hostport", conn: "ssh", port: 2201}},
		{"numuser", want{addr: "numuser", user: "1000", conn: "ssh", port: 22}},
		{"localhost2", want{addr: "127.0.0.2", conn: "ssh", port: 22}},
		{"both", want{addr: "both", conn: "ssh", port: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			h, ok := inv.Host(tt.host)
			if !ok {
				t.Fatalf("no host %s", tt.host)
			}
			got := want{h.Addr(), h.User(), h.Connection(), h.KeyFile(), h.BecomeUser(), h.Port(), h.Become()}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestWithVars(t *testing.T) {
	inv := mustLoad(t, "testdata/conn.yml")
	full, _ := inv.Host("full")
	h, err := full.WithVars(map[string]any{"ansible_user": "override", "ansible_port": 2022, "x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if h.User() != "override" || h.Port() != 2022 || h.Vars["x"] != "y" || h.Addr() != "192.0.2.10" {
		t.Errorf("WithVars: user %q port %d vars %v", h.User(), h.Port(), h.Vars)
	}
	if _, ok := h.VarPos("ansible_user"); ok {
		t.Error("an overridden var keeps the position of the value it replaced")
	}
	if full.User() != "deploy" || full.Vars["x"] != nil {
		t.Error("WithVars changed the original host")
	}
	_, err = full.WithVars(map[string]any{"ansible_port": "http"})
	if err == nil || err.Error() != `host "full": ansible_port: "http" is not a port number; want an integer from 1 to 65535` {
		t.Errorf("WithVars(bad port) = %v", err)
	}
}

func TestConnectionValues(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]any
		err  string // substring; empty for none
	}{
		{"port int", map[string]any{"ansible_port": 22}, ""},
		{"port string", map[string]any{"ansible_port": " 22 "}, ""},
		{"port float", map[string]any{"ansible_port": 22.0}, ""},
		{"port fraction", map[string]any{"ansible_port": 22.5}, "22.5 is not a port number"},
		{"port bool", map[string]any{"ansible_port": true}, "true is not a port number"},
		{"port list", map[string]any{"ansible_port": []any{22}}, "a list is not a port number"},
		{"port null is unset", map[string]any{"ansible_port": nil}, ""},
		{"become words", map[string]any{"ansible_become": "On"}, ""},
		{"become int", map[string]any{"ansible_become": 2}, "2 is not a boolean"},
		{"connection", map[string]any{"ansible_connection": "docker"}, `"docker" is not supported`},
		{"connection number", map[string]any{"ansible_connection": 1}, "1 is not supported"},
		{"host with space", map[string]any{"ansible_host": "a b"}, `"a b" is not a host name`},
		{"user map", map[string]any{"ansible_user": map[string]any{}}, "must be a string, not a mapping"},
		{"key template", map[string]any{"ansible_ssh_private_key_file": "{{ k }}"}, "is a template"},
		{"become method", map[string]any{"ansible_become_method": "doas"}, `"doas" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := parseConn("h", tt.vars, nil)
			got := ""
			if err := ds.Err(); err != nil {
				got = err.Error()
			}
			if tt.err == "" && got != "" || tt.err != "" && !strings.Contains(got, tt.err) {
				t.Errorf("parseConn(%v) = %q, want %q", tt.vars, got, tt.err)
			}
		})
	}
}
