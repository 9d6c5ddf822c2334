package etcdctl

import (
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
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
	term     uint64
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
			RaftIndex: f.index, RaftAppliedIndex: f.applied, RaftTerm: f.term, Errors: f.errs,
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
		cc      Rules
		want    []string // each must be in a problem; none means the check passes
	}{
		{"healthy", three, Rules{}, nil},
		{"expected names", three, Rules{ExpectMembers: Names("m3", "m1", "m2")}, nil},
		{"expected count", three, Rules{ExpectMembers: Count(3)}, nil},
		{"a member down", with(three, 1, func(m *fm) { m.down = true }), Rules{},
			[]string{"member m2 (http://m2:2379) does not answer: dial tcp: connection refused"}},
		{"other names", three, Rules{ExpectMembers: Names("m1", "m2", "m4")}, []string{"members are [m1, m2, m3], expected [m1, m2, m4]"}},
		{"other count", three, Rules{ExpectMembers: Count(5)}, []string{"3 members ([m1, m2, m3]), expected 5"}},
		{"member without endpoint", with(three, 2, func(m *fm) { m.noEndpnt = true }), Rules{},
			[]string{"member m3 is not among the endpoints (it advertises http://m3:2379)", "3 members ([m1, m2, m3]) for 2 endpoints"}},
		{"never started", append(healthy("m1", "m2", "m3"), fm{name: "", noEndpnt: true}), Rules{ExpectMembers: Count(4)},
			[]string{"(never started) (http://:2379) was added but never started (no name); start it or remove it"}},
		{"learner", with(healthy("m1", "m2", "m3", "m4"), 3, func(m *fm) { m.learner = true }), Rules{ExpectMembers: Count(4)},
			[]string{"member m4 (http://m4:2379) is a learner"}},
		{"two members", healthy("m1", "m2"), Rules{}, []string{"2 voting members: a rolling change needs at least 3"}},
		{"two members allowed", healthy("m1", "m2"), Rules{AllowSmall: true}, nil},
		{"four members", healthy("m1", "m2", "m3", "m4"), Rules{}, []string{"4 voting members: an even count"}},
		{"no leader", with(three, 2, func(m *fm) { m.leader = "" }), Rules{}, []string{"member m3 (http://m3:2379) sees no leader"}},
		{"split leaders", with(three, 2, func(m *fm) { m.leader = "m3" }), Rules{},
			[]string{"members disagree on the leader: m1, m2 see m1; m3 see m3"}},
		{"errors", with(three, 0, func(m *fm) { m.errs = []string{"etcdserver: no leader"} }), Rules{},
			[]string{"member m1 (http://m1:2379) reports errors: etcdserver: no leader"}},
		{"unhealthy", with(three, 1, func(m *fm) { m.health = errors.New("active alarms: NOSPACE on 1") }), Rules{},
			[]string{"member m2 (http://m2:2379) is unhealthy: active alarms: NOSPACE on 1"}},
		{"other cluster", with(three, 1, func(m *fm) { m.cluster = 0xbad }), Rules{},
			[]string{"endpoint http://m2:2379 answers for cluster bad, the other endpoints for c1"}},
		{"zombie in a member's view", with(three, 2, func(m *fm) { m.list = []string{"m1", "m2", "m3", "zombie"} }), Rules{},
			[]string{"member m3 (http://m3:2379) sees members ["}},

		{"min passes", three, Rules{Versions: &VersionRules{Min: "3.6.11"}}, nil},
		{"min above", three, Rules{Versions: &VersionRules{Min: "3.6.20"}},
			[]string{"versions: member m1 (http://m1:2379) runs 3.6.16, below the minimum 3.6.20", "member m3"}},
		{"same minor", with(three, 0, func(m *fm) { m.version = "3.7.3" }), Rules{Versions: &VersionRules{SameMinor: true}},
			[]string{"versions: members run different minors (m2 3.6.16, m3 3.6.16; m1 3.7.3)"}},
		{"target next minor", three, Rules{Versions: &VersionRules{Target: "3.7.3"}}, nil},
		{"target mixed", with(three, 0, func(m *fm) { m.version = "3.7.3" }), Rules{Versions: &VersionRules{Target: "3.7.3"}}, nil},
		{"target skips a minor", three, Rules{Versions: &VersionRules{Target: "3.8.0"}},
			[]string{"runs 3.6.16, 2 minors behind the target 3.8.0; minors cannot be skipped: go to the newest 3.7 first"}},
		{"target is a downgrade", three, Rules{Versions: &VersionRules{Target: "3.6.11"}},
			[]string{"runs 3.6.16, newer than the target 3.6.11: that is a downgrade"}},
		{"exact", with(three, 2, func(m *fm) { m.version = "3.7.3" }), Rules{Versions: &VersionRules{Exact: "3.7.3"}},
			[]string{"member m1 (http://m1:2379) runs 3.6.16, not 3.7.3", "member m2"}},
		{"version of a member down", with(three, 1, func(m *fm) { m.down = true }), Rules{Versions: &VersionRules{Min: "3.6.0"}},
			[]string{"the version of member m2 (http://m2:2379) is unknown"}},

		{"cluster version", three, Rules{ClusterVersion: "3.6"}, nil},
		{"cluster version differs", three, Rules{ClusterVersion: "3.7.0"}, []string{"cluster_version: member m1 (http://m1:2379) reports cluster version 3.6.0, want 3.7"}},
		{"storage version", three, Rules{StorageVersion: "3.6"}, nil},
		{"storage version differs", with(three, 2, func(m *fm) { m.storage = "3.7.0" }), Rules{StorageVersion: "3.6"},
			[]string{"storage_version: member m3 (http://m3:2379) has storage version 3.7.0, want 3.6"}},
		{"no storage version", with(three, 2, func(m *fm) { m.storage = "" }), Rules{StorageVersion: "3.6"},
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

// leaderNow is a status of the leader read after the members' own.
func leaderNow(cl *Cluster, name string, index, term uint64) *clientv3.StatusResponse {
	id := cl.MemberByName(name).ID
	return &clientv3.StatusResponse{Header: &pb.ResponseHeader{ClusterId: fakeClusterID, MemberId: id},
		Leader: id, RaftIndex: index, RaftAppliedIndex: index, RaftTerm: term}
}

// A member is caught up only when its applied index, as it reported it, is
// within the limit of the leader's commit index read after it: a status
// source that lags, or members read at different moments, never make a
// lagging member pass.
func TestMeasureLag(t *testing.T) {
	tests := []struct {
		name    string
		members []fm
		now     func(cl *Cluster) *clientv3.StatusResponse
		lag     int64
		want    []string // one message each; none: caught up
	}{
		{"all caught up", []fm{
			{name: "m1", leader: "m1", index: 5000, applied: 5000, term: 2},
			{name: "m2", leader: "m1", index: 4999, applied: 4990, term: 2},
			{name: "m3", leader: "m1", index: 5000, applied: 4995, term: 2},
		}, func(cl *Cluster) *clientv3.StatusResponse { return leaderNow(cl, "m1", 5010, 2) }, 20, nil},
		{"restarted with a backlog", []fm{
			{name: "m1", leader: "m1", index: 5000, applied: 5000, term: 2},
			{name: "m2", leader: "m1", index: 5000, applied: 5000, term: 2},
			// It believes itself up to date: its own commit is its applied index.
			{name: "m3", leader: "m1", index: 1200, applied: 1200, term: 2},
		}, func(cl *Cluster) *clientv3.StatusResponse { return leaderNow(cl, "m1", 5000, 2) }, 3800,
			[]string{"member m3 (http://m3:2379) has applied index 1200, 3800 entries behind the leader m1's commit index 5000, more than 1000"}},
		// Every gathered status says caught up, but the leader committed a
		// burst before it was read again: measured against the newer index.
		{"the leader moved on since the members were read", []fm{
			{name: "m1", leader: "m1", index: 5000, applied: 5000, term: 2},
			{name: "m2", leader: "m1", index: 5000, applied: 5000, term: 2},
			{name: "m3", leader: "m1", index: 5000, applied: 3000, term: 2},
		}, func(cl *Cluster) *clientv3.StatusResponse { return leaderNow(cl, "m1", 9000, 2) }, 6000,
			[]string{"member m2 (http://m2:2379) has applied index 5000, 4000 entries behind", "member m3 (http://m3:2379) has applied index 3000, 6000 entries behind"}},
		{"a member of an older term", []fm{
			{name: "m1", leader: "m1", index: 5000, applied: 5000, term: 3},
			{name: "m2", leader: "m1", index: 5000, applied: 5000, term: 3},
			{name: "m3", leader: "m1", index: 5000, applied: 5000, term: 2},
		}, func(cl *Cluster) *clientv3.StatusResponse { return leaderNow(cl, "m1", 5000, 3) }, 0,
			[]string{"member m3 (http://m3:2379) is at raft term 2, the leader m1 at 3: it has not heard from this leader yet"}},
		{"leadership moved", []fm{
			{name: "m1", leader: "m1", index: 5000, applied: 5000, term: 3},
			{name: "m2", leader: "m1", index: 5000, applied: 5000, term: 3},
			{name: "m3", leader: "m1", index: 5000, applied: 5000, term: 3},
		}, func(cl *Cluster) *clientv3.StatusResponse {
			st := leaderNow(cl, "m1", 5000, 4)
			st.Leader = cl.MemberByName("m2").ID
			return st
		}, 0, []string{"leadership moved away from m1 (http://m1:2379) while the members were read"}},
		{"a member down is left to topology", []fm{
			{name: "m1", leader: "m1", index: 5000, applied: 5000, term: 2},
			{name: "m2", leader: "m1", index: 5000, applied: 4900, term: 2},
			{name: "m3", down: true},
		}, func(cl *Cluster) *clientv3.StatusResponse { return leaderNow(cl, "m1", 5000, 2) }, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := fakeCluster(tt.members...)
			lag, msgs := measureLag(cl, cl.MemberByName("m1"), tt.now(cl), 1000)
			if lag != tt.lag {
				t.Errorf("lag = %d, want %d", lag, tt.lag)
			}
			if len(msgs) != len(tt.want) {
				t.Fatalf("messages = %q, want %d like %q", msgs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(msgs[i], w) {
					t.Errorf("message %q does not contain %q", msgs[i], w)
				}
			}
		})
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
