package etcdctl

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// authPassword is the root password of the auth lab; no message may show it.
const authPassword = "s3cret-Pa55word"

// TestCheckWithAuth runs a check against a real etcd with auth enabled:
// without credentials it says which vars to set, with a wrong password it
// says so without showing it, and with etcd_user/etcd_password it passes,
// hashes and all (which need the root role).
func TestCheckWithAuth(t *testing.T) {
	t.Parallel()
	c := etcdlab.New(t, etcdlab.Options{Version: labVersion, Members: 1})
	cli, err := c.Client("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := cli.UserAdd(ctx, "root", authPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	cli.Close()

	check := func(vars map[string]any) (*Report, error) {
		cfg, err := Resolve(Settings{Endpoints: c.Endpoints(), Timeout: 0}, Env{Vars: vars})
		if err != nil {
			return nil, err
		}
		return Check(ctx, cfg, &Rules{ExpectMembers: Names("m1"), AllowSmall: true, Consistency: true})
	}
	tests := []struct {
		name string
		vars map[string]any
		err  string // substring; empty for none
	}{
		{"no credentials", nil, "the cluster has auth enabled: set vars etcd_user and etcd_password"},
		{"wrong password", map[string]any{VarUser: "root", VarPassword: "not-the-" + authPassword}, `check etcd_user ("root") and etcd_password`},
		{"right password", map[string]any{VarUser: "root", VarPassword: authPassword}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := check(tt.vars)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if r.Hash == nil || !r.Hash.Equal || len(r.Members) != 1 || !r.Members[0].Answered {
					t.Errorf("report = %+v, hash %+v", r, r.Hash)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if strings.Contains(err.Error(), authPassword) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]any
		user string
		err  string
	}{
		{"none", nil, "", ""},
		{"nulls", map[string]any{VarUser: nil, VarPassword: nil}, "", ""},
		{"both", map[string]any{VarUser: "root", VarPassword: authPassword}, "root", ""},
		{"user alone", map[string]any{VarUser: "root"}, "", "var etcd_user is set without etcd_password"},
		{"password alone", map[string]any{VarPassword: authPassword}, "", "var etcd_password is set without etcd_user"},
		{"empty user", map[string]any{VarUser: " ", VarPassword: authPassword}, "", "var etcd_user must be a user name"},
		{"password not a string", map[string]any{VarUser: "root", VarPassword: 12345678}, "", "var etcd_password must be a non-empty string (its value is not shown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Resolve(Settings{Endpoints: []string{"http://127.0.0.1:2379"}}, Env{Vars: tt.vars})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), authPassword) || strings.Contains(err.Error(), "12345678") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil || cfg.Username != tt.user {
				t.Fatalf("user %q, err %v; want %q", cfg.Username, err, tt.user)
			}
		})
	}
}

// TestSecretNeverPrinted: a Config holding a password shows <hidden> in
// every format a log or an error could use.
func TestSecretNeverPrinted(t *testing.T) {
	cfg := Config{Endpoints: []string{"http://127.0.0.1:2379"}, Username: "root", Password: authPassword, Timeout: time.Second}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Password), string(j)} {
		if strings.Contains(s, authPassword) || !strings.Contains(s, "hidden") {
			t.Errorf("printed as %s", s)
		}
	}
}
