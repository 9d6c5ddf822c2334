package etcdctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Rules are what Check asks of a cluster: its topology, agreement and
// health, always; versions, catch-up, consistency, cluster and storage
// versions when set. The check module's etcd: arguments lead here.
type Rules struct {
	ExpectMembers  MemberSet     // the zero value expects one member per endpoint
	AllowSmall     bool          // accept fewer than 3 voting members, or an even number of them
	Versions       *VersionRules // rules on the members' server versions
	CaughtUp       *int          // the largest lag of a member's applied index behind the leader's commit index
	Consistency    bool          // every member's HashKV at one common revision is equal
	ClusterVersion string        // the cluster version's major.minor
	StorageVersion string        // every member's storage version's major.minor
}

// VersionRules are rules on the members' server versions; an empty field
// asks nothing.
type VersionRules struct {
	SameMinor bool   // every member runs the same major.minor
	Min       string // every member runs at least this version
	Target    string // every member runs it, or an older patch of its minor or of the minor before
	Exact     string // every member runs exactly this version
}

// MemberSet is the members a cluster must have: these names, or this many.
type MemberSet struct {
	names []string
	count int
	set   bool
}

// Names returns a MemberSet of these names.
func Names(names ...string) MemberSet { return MemberSet{names: names, set: true} }

// Count returns a MemberSet of n members.
func Count(n int) MemberSet { return MemberSet{count: n, set: true} }

// Listed returns the expected names; nil when a count, or nothing, is expected.
func (s MemberSet) Listed() []string { return s.names }

// Size returns the expected count; 0 when names, or nothing, are expected.
func (s MemberSet) Size() int { return s.count }

// Given reports whether any expectation was set.
func (s MemberSet) Given() bool { return s.set }

// ParseVersion reads a full etcd version: 3.6.16 (or v3.6.16).
func ParseVersion(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, fmt.Errorf("%q is not an etcd version like 3.6.16", s)
	}
	return v, nil
}

// ParseMinor reads a major.minor, with or without its .0: "3.6" or "3.6.0".
func ParseMinor(s string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	ok := len(parts) == 2 || (len(parts) == 3 && parts[2] == "0")
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil || p == "" {
			ok = false
		}
	}
	if !ok {
		return "", fmt.Errorf("%q is not a major.minor like \"3.6\" (cluster and storage versions are always X.Y.0)", s)
	}
	return parts[0] + "." + parts[1], nil
}

// minorOf returns "3.6" for "3.6.0", "" for "" or anything else unreadable.
func minorOf(s string) string {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// Check gathers the cluster through cfg's endpoints and applies the rules of
// cc. The report holds everything seen, also when a rule fails; the error
// names each failure, with the member and what was seen.
func Check(ctx context.Context, cfg Config, cc *Rules) (*Report, error) {
	cl, err := Gather(ctx, cfg, GatherOptions{Health: true})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	defer cl.Close()
	var p problems
	topology(cl, cc.ExpectMembers, cc.AllowSmall, &p)
	agreement(cl, &p)
	health(cl, &p)
	if cc.Versions != nil {
		versionRules(cl, cc.Versions, &p)
	}
	r := NewReport(cl)
	if cc.CaughtUp != nil {
		caughtUp(ctx, cl, *cc.CaughtUp, r, &p)
	}
	if cc.Consistency {
		h, err := Consistency(ctx, cl)
		r.Hash = h
		if err != nil {
			p.add("consistency: %v", err)
		}
	}
	if cc.ClusterVersion != "" {
		clusterVersion(cl, cc.ClusterVersion, &p)
	}
	if cc.StorageVersion != "" {
		storageVersion(cl, cc.StorageVersion, &p)
	}
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("etcd: %w", err)
	}
	r.Problems = p
	return r, p.err()
}

// problems collects failed rules, each a sentence that names the member and
// what was seen.
type problems []string

func (p *problems) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(*p, msg) {
		*p = append(*p, msg)
	}
}

func (p problems) err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return errors.New("etcd: " + p[0])
	}
	return fmt.Errorf("etcd: %d problems: %s", len(p), strings.Join(p, "; "))
}

// endpointLabel names an endpoint by its member when it is known.
func endpointLabel(e *Endpoint) string {
	if e.Member != nil && e.Member.Name != "" {
		return "member " + e.Member.Name + " (" + e.URL + ")"
	}
	return "endpoint " + e.URL
}

// topology: the member list is known, equals what was expected, every member
// is started, answers on an endpoint, votes, and the voters make a sound quorum.
func topology(cl *Cluster, want MemberSet, allowSmall bool, p *problems) {
	for _, e := range cl.Endpoints {
		switch {
		case !e.Answered():
			p.add("%s does not answer: %v", endpointLabel(e), e.StatusErr)
		case e.Status.Header.ClusterId != cl.ClusterID:
			p.add("endpoint %s answers for cluster %s, the other endpoints for %s: it is another cluster's member, or the endpoints are wrong",
				e.URL, ID(e.Status.Header.ClusterId), ID(cl.ClusterID))
		case e.Member == nil && cl.Members != nil:
			p.add("endpoint %s answers as member %s, which is not in the member list", e.URL, ID(e.Status.Header.MemberId))
		case e.Member != nil && e.Member.Endpoint != e:
			p.add("endpoints %s and %s both reach member %s; give each member's client URL once", e.Member.Endpoint.URL, e.URL, e.Member.Name)
		}
	}
	if cl.Members == nil {
		p.add("no member list: no endpoint answered one")
		return
	}
	if !cl.ListLinearizable {
		p.add("no member answered a linearizable member list (no quorum?); the member list is %s's own view", cl.ListFrom)
	}
	var names []string
	for _, m := range cl.Members {
		switch {
		case m.Name == "":
			p.add("%s was added but never started (no name); start it or remove it", m.Label())
		case m.Endpoint == nil && !endpointDown(cl, m):
			p.add("member %s is not among the endpoints (it advertises %s); give every member's client URL", m.Name, strings.Join(m.ClientURLs, ", "))
		}
		if m.Learner {
			p.add("member %s is a learner; promote it or remove it before a rolling change", m.Label())
		}
		names = append(names, m.Name)
	}
	switch {
	case want.names != nil:
		w := slices.Sorted(slices.Values(want.names))
		got := slices.Sorted(slices.Values(names))
		if !slices.Equal(w, got) {
			p.add("members are %s, expected %s", list(got), list(w))
		}
	case want.set && len(cl.Members) != want.count:
		p.add("%d members (%s), expected %d", len(cl.Members), list(names), want.count)
	case !want.set && len(cl.Members) != len(cl.Endpoints):
		p.add("%d members (%s) for %d endpoints; the endpoints must be one per member", len(cl.Members), list(names), len(cl.Endpoints))
	}
	voting := len(cl.Voting())
	if !allowSmall {
		switch {
		case voting < 3:
			p.add("%d voting members: a rolling change needs at least 3, or a member's stop is an outage (allow_small: true accepts it)", voting)
		case voting%2 == 0:
			p.add("%d voting members: an even count tolerates no more failures than one fewer (allow_small: true accepts it)", voting)
		}
	}
	// Each member's own view of the membership must agree with the cluster's:
	// a diverging one is how zombie members show up.
	want2 := memberIDs(cl.Members)
	for _, e := range cl.Endpoints {
		if e.List == nil {
			continue
		}
		var ids []uint64
		for _, pm := range e.List {
			ids = append(ids, pm.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want2) {
			p.add("%s sees members %s, the cluster %s", endpointLabel(e), hexList(ids), hexList(want2))
		}
	}
}

// endpointDown reports whether an endpoint that did not answer is m's (by its
// advertised client URL): that failure is already reported.
func endpointDown(cl *Cluster, m *Member) bool {
	for _, e := range cl.Endpoints {
		if e.Member == m && !e.Answered() {
			return true
		}
	}
	return false
}

func memberIDs(ms []*Member) []uint64 {
	var ids []uint64
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

func hexList(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = ID(id)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func list(names []string) string { return "[" + strings.Join(names, ", ") + "]" }

// agreement: every answering member of the cluster sees the same leader, and
// reports no error.
func agreement(cl *Cluster, p *problems) {
	leaders := map[uint64][]string{}
	for _, m := range cl.Members {
		st := m.Status()
		if st == nil {
			continue
		}
		if st.Leader == 0 {
			p.add("member %s sees no leader", m.Label())
		} else {
			leaders[st.Leader] = append(leaders[st.Leader], m.Name)
		}
		if len(st.Errors) > 0 {
			p.add("member %s reports errors: %s", m.Label(), strings.Join(st.Errors, "; "))
		}
	}
	if len(leaders) > 1 {
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(leaders)) {
			parts = append(parts, fmt.Sprintf("%s see %s", strings.Join(leaders[id], ", "), nameOf(cl, id)))
		}
		p.add("members disagree on the leader: %s", strings.Join(parts, "; "))
	}
	for id := range leaders {
		if m := cl.MemberByID(id); m != nil && m.Learner {
			p.add("the leader %s is a learner", m.Label())
		} else if m == nil {
			p.add("the leader %s is not in the member list", ID(id))
		}
	}
}

func nameOf(cl *Cluster, id uint64) string {
	if m := cl.MemberByID(id); m != nil && m.Name != "" {
		return m.Name
	}
	return ID(id)
}

// health: what `etcdctl endpoint health` checks, per member.
func health(cl *Cluster, p *problems) {
	for _, e := range cl.Endpoints {
		if e.Answered() && e.HealthErr != nil {
			p.add("%s is unhealthy: %v", endpointLabel(e), e.HealthErr)
		}
	}
}

// versionRules applies the versions: rules to every member's server version.
func versionRules(cl *Cluster, r *VersionRules, p *problems) {
	type mv struct {
		m *Member
		v *semver.Version
	}
	var seen []mv
	for _, m := range cl.Members {
		raw := m.Version()
		if raw == "" {
			if m.Name != "" {
				p.add("versions: the version of member %s is unknown: it did not answer", m.Label())
			}
			continue
		}
		v, err := ParseVersion(raw)
		if err != nil {
			p.add("versions: member %s reports version %q, which is not a version", m.Label(), raw)
			continue
		}
		seen = append(seen, mv{m, v})
	}
	if r.SameMinor {
		minors := map[string][]string{}
		for _, s := range seen {
			k := fmt.Sprintf("%d.%d", s.v.Major(), s.v.Minor())
			minors[k] = append(minors[k], s.m.Name+" "+s.v.String())
		}
		if len(minors) > 1 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(minors)) {
				parts = append(parts, strings.Join(minors[k], ", "))
			}
			p.add("versions: members run different minors (%s): an upgrade was interrupted; finish or roll it back first", strings.Join(parts, "; "))
		}
	}
	if min, err := ParseVersion(r.Min); r.Min != "" && err == nil {
		for _, s := range seen {
			if s.v.LessThan(min) {
				p.add("versions: member %s runs %s, below the minimum %s", s.m.Label(), s.v, min)
			}
		}
	} else if r.Min != "" {
		p.add("versions.min: %v", err)
	}
	if t, err := ParseVersion(r.Target); r.Target != "" && err == nil {
		for _, s := range seen {
			switch {
			case s.v.GreaterThan(t):
				p.add("versions: member %s runs %s, newer than the target %s: that is a downgrade", s.m.Label(), s.v, t)
			case s.v.Major() != t.Major():
				p.add("versions: member %s runs %s, another major version than the target %s", s.m.Label(), s.v, t)
			case t.Minor()-s.v.Minor() > 1:
				p.add("versions: member %s runs %s, %d minors behind the target %s; minors cannot be skipped: go to the newest %d.%d first",
					s.m.Label(), s.v, t.Minor()-s.v.Minor(), t, s.v.Major(), s.v.Minor()+1)
			}
		}
	} else if r.Target != "" {
		p.add("versions.target: %v", err)
	}
	if x, err := ParseVersion(r.Exact); r.Exact != "" && err == nil {
		for _, s := range seen {
			if !s.v.Equal(x) {
				p.add("versions: member %s runs %s, not %s", s.m.Label(), s.v, x)
			}
		}
	} else if r.Exact != "" {
		p.add("versions.exact: %v", err)
	}
}

// caughtUp decides in one reading whether every member has applied what the
// leader has committed, within limit entries. The members' applied indexes
// are those of the gathering; the leader's commit index is read again after
// them, so it is at least what the leader had committed when any member
// reported: the lag seen is never smaller than the lag there was. A member
// restarted with a backlog reports its old applied index until it has
// replayed the entries the leader sends it, so it cannot pass early.
func caughtUp(ctx context.Context, cl *Cluster, limit int, r *Report, p *problems) {
	leader := cl.Leader()
	if leader == nil || leader.Endpoint == nil {
		p.add("caught_up: no leader that every member names and that answers; catch-up is measured against the leader's commit index")
		return
	}
	st, err := leader.Endpoint.Client.Status(ctx)
	if err != nil {
		p.add("caught_up: the leader %s did not answer its second status: %v", leader.Label(), err)
		return
	}
	lag, msgs := measureLag(cl, leader, st, limit)
	r.Lag = []int64{lag}
	for _, m := range msgs {
		p.add("caught_up: %s", m)
	}
}

// measureLag compares every answering member's applied index (and term) with
// now, a status of the leader read after the members' own: it returns the
// largest lag and a sentence for each member not caught up within limit.
func measureLag(cl *Cluster, leader *Member, now *clientv3.StatusResponse, limit int) (int64, []string) {
	if now.Header == nil || now.Header.MemberId != leader.ID || now.Leader != leader.ID {
		return 0, []string{fmt.Sprintf("leadership moved away from %s while the members were read; read again", leader.Label())}
	}
	var worst int64
	var msgs []string
	for _, m := range cl.Members {
		st := m.Status()
		if m == leader {
			st = now // the leader's own applied index, in the same reading as its commit index
		}
		if st == nil {
			continue // topology reports it
		}
		lag := int64(now.RaftIndex) - int64(st.RaftAppliedIndex)
		worst = max(worst, lag)
		switch {
		case st.RaftTerm < now.RaftTerm:
			msgs = append(msgs, fmt.Sprintf("member %s is at raft term %d, the leader %s at %d: it has not heard from this leader yet",
				m.Label(), st.RaftTerm, leader.Name, now.RaftTerm))
		case lag > int64(limit):
			msgs = append(msgs, fmt.Sprintf("member %s has applied index %d, %d entries behind the leader %s's commit index %d, more than %d",
				m.Label(), st.RaftAppliedIndex, lag, leader.Name, now.RaftIndex, limit))
		}
	}
	return worst, msgs
}

func clusterVersion(cl *Cluster, want string, p *problems) {
	w, _ := ParseMinor(want)
	for _, e := range cl.Endpoints {
		switch {
		case !e.Answered():
		case e.Versions == nil:
			p.add("cluster_version: %s: %v", endpointLabel(e), e.VersionsErr)
		case e.Versions.Cluster == "" || e.Versions.Cluster == "not_decided":
			p.add("cluster_version: %s has no cluster version yet (not decided)", endpointLabel(e))
		case minorOf(e.Versions.Cluster) != w:
			p.add("cluster_version: %s reports cluster version %s, want %s", endpointLabel(e), e.Versions.Cluster, w)
		}
	}
}

func storageVersion(cl *Cluster, want string, p *problems) {
	w, _ := ParseMinor(want)
	for _, m := range cl.Members {
		st := m.Status()
		switch {
		case st == nil:
		case st.StorageVersion == "":
			p.add("storage_version: member %s reports no storage version (etcd before 3.6, or storage not yet migrated)", m.Label())
		case minorOf(st.StorageVersion) != w:
			p.add("storage_version: member %s has storage version %s, want %s", m.Label(), st.StorageVersion, w)
		}
	}
}

// Healthy reports whether the cluster passes the rules a check always
// applies (one member per endpoint, at least 3 and an odd number of voters,
// all started and answering, one leader, no errors, healthy endpoints). The
// cluster must have been gathered with health.
func Healthy(cl *Cluster) bool {
	var p problems
	topology(cl, MemberSet{}, false, &p)
	agreement(cl, &p)
	health(cl, &p)
	return len(p) == 0
}
