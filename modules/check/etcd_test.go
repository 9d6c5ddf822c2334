package check

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
)

func TestCheckConfigValidate(t *testing.T) {
	n := func(i int) *int { return &i }
	tests := []struct {
		name      string
		c         CheckConfig
		wantField string
		wantMsg   string
	}{
		{"nothing", CheckConfig{}, "", ""},
		{"every rule", CheckConfig{ExpectMembers: Names("a", "b", "c"), CaughtUp: n(0), Consistency: true, ClusterVersion: "3.6",
			StorageVersion: "3.6.0", Versions: &VersionRules{SameMinor: true, Min: "3.6.11", Target: "v3.7.3", Exact: "3.7.3"}}, "", ""},
		{"templated versions", CheckConfig{Versions: &VersionRules{Min: "{{ floor }}"}, ClusterVersion: "{{ x }}"}, "", ""},

		{"bad endpoint", CheckConfig{Conn: etcdarg.Conn{Endpoints: arg.StringList{"a:1"}}}, "etcd.endpoints", "not a client URL"},
		{"negative caught_up", CheckConfig{CaughtUp: n(-1)}, "etcd.caught_up", "-1 is negative"},
		{"empty versions", CheckConfig{Versions: &VersionRules{}}, "etcd.versions", "has no rule"},
		{"bad min", CheckConfig{Versions: &VersionRules{Min: "3.6"}}, "etcd.versions.min", `"3.6" is not an etcd version like 3.6.16`},
		{"bad target", CheckConfig{Versions: &VersionRules{Target: "latest"}}, "etcd.versions.target", "not an etcd version"},
		{"bad exact", CheckConfig{Versions: &VersionRules{Exact: "3.7.3.1"}}, "etcd.versions.exact", "not an etcd version"},
		{"bad cluster version", CheckConfig{ClusterVersion: "3.6.16"}, "etcd.cluster_version", "always X.Y.0"},
		{"bad storage version", CheckConfig{StorageVersion: "three"}, "etcd.storage_version", "not a major.minor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.c.Validate("etcd."), tt.wantField, tt.wantMsg)
		})
	}
}

func TestMemberSetDecode(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
		json    string // the decoded value, as the journal would record it
	}{
		{"expect_members: 3", "", "3"},
		{"expect_members: [m1, m2, m3]", "", `["m1","m2","m3"]`},
		{"expect_members: m1", `args.yml:1:17: "expect_members" must be a count of members (at least 1) or a list of their names, got "m1"`, ""},
		{"expect_members: 0", "must be a count of members (at least 1)", ""},
		{"expect_members: []", `args.yml:1:17: "expect_members" is an empty list`, ""},
		{"expect_members: [m1, m1]", `args.yml:1:22: "expect_members" lists "m1" twice`, ""},
		{"expect_members: [m1, {a: b}]", "must list member names", ""},
		{"expect_members: {a: 1}", "must be a count of members or a list of their names", ""},
		{"expect_members: [m1, '{{ name }}']", "", "null"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			root, ds := spec.Parse("args.yml", []byte(tt.yaml))
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			var c CheckConfig
			d := &arg.Decoder{File: "args.yml", Context: "etcd", OnTemplate: func(*yaml.Node) {}}
			var got diag.Diags
			d.Decode(root, &c, &got)
			if tt.wantErr != "" {
				if len(got) == 0 || !strings.Contains(got[0].Error(), tt.wantErr) {
					t.Fatalf("diagnostics = %v, want %q", got, tt.wantErr)
				}
				return
			}
			if len(got) > 0 {
				t.Fatal(got.Err())
			}
			b, err := json.Marshal(c.ExpectMembers)
			if err != nil || string(b) != tt.json {
				t.Errorf("decoded %s, %v; want %s", b, err, tt.json)
			}
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
