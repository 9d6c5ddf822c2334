package etcdctl

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules/arg"
)

// fm describes a member of a fake cluster.
type fm struct {
	name     string
	version  string
	leader   string // the leader it sees; "" for none
	learner  bool
	down     bool
	cluster  uint64 // its cluster ID; 0 for the usual one
	storage  string
	index    uint64
	applied  uint64
	errs     []string
	health   error
	list     []string // its serializable member list, when it differs
	noEndpnt bool     // not among the endpoints
}

const fakeClusterID = 0xc1

func memberID(name string) uint64 {
	var id uint64 = 0x1000
	for _, r := range name {
		id = id*31 + uint64(r)
	}
	return id
}

// fakeCluster builds the view Gather would have built of these members.
func fakeCluster(members ...fm) *Cluster {
	cl := &Cluster{ClusterID: fakeClusterID, ListFrom: "http://fake", ListLinearizable: true}
	for _, f := range members {
		m := &Member{ID: memberID(f.name), Name: f.name, Learner: f.learner,
			ClientURLs: []string{"http://" + f.name + ":2379"}, PeerURLs: []string{"http://" + f.name + ":2380"}}
		cl.Members = append(cl.Members, m)
	}
	for _, f := range members {
		if f.noEndpnt {
			continue
		}
		m := cl.MemberByName(f.name)
		if f.name == "" {
			m = cl.Members[len(cl.Endpoints)]
		}
		e := &Endpoint{URL: "http://" + f.name + ":2379", Member: m, HealthErr: f.health}
		cl.Endpoints = append(cl.Endpoints, e)
		if f.down {
			e.StatusErr = errors.New("dial tcp: connection refused")
			continue
		}
		var leader uint64
		if f.leader != "" {
			leader = memberID(f.leader)
		}
		cid := uint64(fakeClusterID)
		if f.cluster != 0 {
			cid = f.cluster
		}
		e.Status = &clientv3.StatusResponse{
			Header:  &pb.ResponseHeader{ClusterId: cid, MemberId: m.ID, Revision: 10},
			Version: f.version, Leader: leader, StorageVersion: f.storage,
			RaftIndex: f.index, RaftAppliedIndex: f.applied, Errors: f.errs,
		}
		m.Endpoint = e
		list := f.list
		if list == nil {
			for _, o := range members {
				list = append(list, o.name)
			}
		}
		for _, n := range list {
			e.List = append(e.List, &pb.Member{ID: memberID(n), Name: n})
		}
		e.Versions = &Versions{Server: f.version, Cluster: "3.6.0", Storage: f.storage}
	}
	return cl
}

func healthy(names ...string) []fm {
	var out []fm
	for _, n := range names {
		out = append(out, fm{name: n, version: "3.6.16", leader: names[0], storage: "3.6.0", index: 100, applied: 100})
	}
	return out
}

func with(ms []fm, i int, f func(*fm)) []fm {
	out := append([]fm(nil), ms...)
	f(&out[i])
	return out
}

func TestRules(t *testing.T) {
	three := healthy("m1", "m2", "m3")
	tests := []struct {
		name    string
		members []fm
		cc      CheckConfig
		want    []string // each must be in a problem; none means the check passes
	}{
		{"healthy", three, CheckConfig{}, nil},
		{"expected names", three, CheckConfig{ExpectMembers: Names("m3", "m1", "m2")}, nil},
		{"expected count", three, CheckConfig{ExpectMembers: Count(3)}, nil},
		{"a member down", with(three, 1, func(m *fm) { m.down = true }), CheckConfig{},
			[]string{"member m2 (http://m2:2379) does not answer: dial tcp: connection refused"}},
		{"other names", three, CheckConfig{ExpectMembers: Names("m1", "m2", "m4")}, []string{"members are [m1, m2, m3], expected [m1, m2, m4]"}},
		{"other count", three, CheckConfig{ExpectMembers: Count(5)}, []string{"3 members ([m1, m2, m3]), expected 5"}},
		{"member without endpoint", with(three, 2, func(m *fm) { m.noEndpnt = true }), CheckConfig{},
			[]string{"member m3 is not among the endpoints (it advertises http://m3:2379)", "3 members ([m1, m2, m3]) for 2 endpoints"}},
		{"never started", append(healthy("m1", "m2", "m3"), fm{name: "", noEndpnt: true}), CheckConfig{ExpectMembers: Count(4)},
			[]string{"(never started) (http://:2379) was added but never started (no name); start it or remove it"}},
		{"learner", with(healthy("m1", "m2", "m3", "m4"), 3, func(m *fm) { m.learner = true }), CheckConfig{ExpectMembers: Count(4)},
			[]string{"member m4 (http://m4:2379) is a learner"}},
		{"two members", healthy("m1", "m2"), CheckConfig{}, []string{"2 voting members: a rolling change needs at least 3"}},
		{"two members allowed", healthy("m1", "m2"), CheckConfig{AllowSmall: true}, nil},
		{"four members", healthy("m1", "m2", "m3", "m4"), CheckConfig{}, []string{"4 voting members: an even count"}},
		{"no leader", with(three, 2, func(m *fm) { m.leader = "" }), CheckConfig{}, []string{"member m3 (http://m3:2379) sees no leader"}},
		{"split leaders", with(three, 2, func(m *fm) { m.leader = "m3" }), CheckConfig{},
			[]string{"members disagree on the leader: m1, m2 see m1; m3 see m3"}},
		{"errors", with(three, 0, func(m *fm) { m.errs = []string{"etcdserver: no leader"} }), CheckConfig{},
			[]string{"member m1 (http://m1:2379) reports errors: etcdserver: no leader"}},
		{"unhealthy", with(three, 1, func(m *fm) { m.health = errors.New("active alarms: NOSPACE on 1") }), CheckConfig{},
			[]string{"member m2 (http://m2:2379) is unhealthy: active alarms: NOSPACE on 1"}},
		{"other cluster", with(three, 1, func(m *fm) { m.cluster = 0xbad }), CheckConfig{},
			[]string{"endpoint http://m2:2379 answers for cluster bad, the other endpoints for c1"}},
		{"zombie in a member's view", with(three, 2, func(m *fm) { m.list = []string{"m1", "m2", "m3", "zombie"} }), CheckConfig{},
			[]string{"member m3 (http://m3:2379) sees members ["}},

		{"min passes", three, CheckConfig{Versions: &VersionRules{Min: "3.6.11"}}, nil},
		{"min above", three, CheckConfig{Versions: &VersionRules{Min: "3.6.20"}},
			[]string{"versions: member m1 (http://m1:2379) runs 3.6.16, below the minimum 3.6.20", "member m3"}},
		{"same minor", with(three, 0, func(m *fm) { m.version = "3.7.3" }), CheckConfig{Versions: &VersionRules{SameMinor: true}},
			[]string{"versions: members run different minors (m2 3.6.16, m3 3.6.16; m1 3.7.3)"}},
		{"target next minor", three, CheckConfig{Versions: &VersionRules{Target: "3.7.3"}}, nil},
		{"target mixed", with(three, 0, func(m *fm) { m.version = "3.7.3" }), CheckConfig{Versions: &VersionRules{Target: "3.7.3"}}, nil},
		{"target skips a minor", three, CheckConfig{Versions: &VersionRules{Target: "3.8.0"}},
			[]string{"runs 3.6.16, 2 minors behind the target 3.8.0; minors cannot be skipped: go to the newest 3.7 first"}},
		{"target is a downgrade", three, CheckConfig{Versions: &VersionRules{Target: "3.6.11"}},
			[]string{"runs 3.6.16, newer than the target 3.6.11: that is a downgrade"}},
		{"exact", with(three, 2, func(m *fm) { m.version = "3.7.3" }), CheckConfig{Versions: &VersionRules{Exact: "3.7.3"}},
			[]string{"member m1 (http://m1:2379) runs 3.6.16, not 3.7.3", "member m2"}},
		{"version of a member down", with(three, 1, func(m *fm) { m.down = true }), CheckConfig{Versions: &VersionRules{Min: "3.6.0"}},
			[]string{"the version of member m2 (http://m2:2379) is unknown"}},

		{"cluster version", three, CheckConfig{ClusterVersion: "3.6"}, nil},
		{"cluster version differs", three, CheckConfig{ClusterVersion: "3.7.0"}, []string{"cluster_version: member m1 (http://m1:2379) reports cluster version 3.6.0, want 3.7"}},
		{"storage version", three, CheckConfig{StorageVersion: "3.6"}, nil},
		{"storage version differs", with(three, 2, func(m *fm) { m.storage = "3.7.0" }), CheckConfig{StorageVersion: "3.6"},
			[]string{"storage_version: member m3 (http://m3:2379) has storage version 3.7.0, want 3.6"}},
		{"no storage version", with(three, 2, func(m *fm) { m.storage = "" }), CheckConfig{StorageVersion: "3.6"},
			[]string{"member m3 (http://m3:2379) reports no storage version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := fakeCluster(tt.members...)
			var p problems
			topology(cl, tt.cc.ExpectMembers, tt.cc.AllowSmall, &p)
			agreement(cl, &p)
			health(cl, &p)
			if tt.cc.Versions != nil {
				versionRules(cl, tt.cc.Versions, &p)
			}
			if tt.cc.ClusterVersion != "" {
				clusterVersion(cl, tt.cc.ClusterVersion, &p)
			}
			if tt.cc.StorageVersion != "" {
				storageVersion(cl, tt.cc.StorageVersion, &p)
			}
			if len(tt.want) == 0 && len(p) > 0 {
				t.Fatalf("problems: %q, want none", p)
			}
			all := strings.Join(p, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems:\n%s\nwant one containing %q", all, w)
				}
			}
			if len(tt.want) > 0 && !strings.HasPrefix(p.err().Error(), "etcd: ") {
				t.Errorf("error %q does not say it is about etcd", p.err())
			}
		})
	}
}

func TestLag(t *testing.T) {
	cl := fakeCluster(
		fm{name: "m1", index: 120, applied: 118},
		fm{name: "m2", index: 119, applied: 100},
		fm{name: "m3", down: true},
	)
	if lag, ok := Lag(cl); !ok || lag != 20 {
		t.Errorf("Lag = %d, %v; want 20 (120 - 100), true", lag, ok)
	}
	if _, ok := Lag(fakeCluster(fm{name: "m1", down: true})); ok {
		t.Error("Lag of a cluster where nobody answers is known")
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name    string
		members []MemberHash
		wantErr string
	}{
		{"equal", []MemberHash{{"m1", 7, 5}, {"m2", 7, 5}, {"m3", 7, 5}}, ""},
		{"one differs", []MemberHash{{"m1", 7, 5}, {"m2", 8, 5}, {"m3", 7, 5}}, "hashes differ at revision 40 (compact revision 5): m1, m3 hash 7; m2 hash 8"},
		{"compactions differ", []MemberHash{{"m1", 7, 5}, {"m2", 9, 6}, {"m3", 7, 5}}, "member m2 could not be compared (compact revision 6"},
		{"alone", []MemberHash{{"m1", 7, 5}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &HashReport{Revision: 40, Members: tt.members}
			groups := map[int64][]int{}
			for i, m := range tt.members {
				groups[m.CompactRevision] = append(groups[m.CompactRevision], i)
			}
			err := compare(r, groups)
			if tt.wantErr == "" {
				if err != nil || !r.Equal {
					t.Errorf("compare = %v, equal %v; want nil, true", err, r.Equal)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || r.Equal {
				t.Errorf("compare = %v, equal %v; want an error containing %q", err, r.Equal, tt.wantErr)
			}
		})
	}
}

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

		{"bad endpoint", CheckConfig{Conn: Conn{Endpoints: arg.StringList{"a:1"}}}, "etcd.endpoints", "not a client URL"},
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

func TestReportData(t *testing.T) {
	cl := fakeCluster(healthy("m1", "m2", "m3")...)
	cl.Endpoints[0].Alarms = []string{"NOSPACE on 1"}
	d := NewReport(cl).Data()
	if d["leader"] != "m1" || d["cluster_id"] != "c1" || d["cluster_version"] != "3.6.0" || d["revision"] != float64(10) {
		t.Errorf("report = %v", d)
	}
	members := d["members"].([]any)
	m1 := members[0].(map[string]any)
	if len(members) != 3 || m1["name"] != "m1" || m1["leader"] != true || m1["raft_index"] != float64(100) ||
		m1["version"] != "3.6.16" || m1["id"] != ID(memberID("m1")) {
		t.Errorf("members = %v", members)
	}
	if v := d["server_versions"].(map[string]any); v["m2"] != "3.6.16" {
		t.Errorf("server_versions = %v", v)
	}
	if a := d["alarms"].([]any); len(a) != 1 {
		t.Errorf("alarms = %v", a)
	}
	for _, k := range []string{"problems", "storage_versions", "endpoints"} {
		if _, ok := d[k]; !ok {
			t.Errorf("report has no %s", k)
		}
	}
}
