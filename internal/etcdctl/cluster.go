package etcdctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Endpoint is what one endpoint answered when the cluster was gathered.
type Endpoint struct {
	URL    string
	Client *Client
	// Member is the member that answered here (by the member ID of its
	// status), or, when nothing answered, the member that advertises this URL.
	Member *Member

	Status      *clientv3.StatusResponse
	StatusErr   error
	List        []*etcdserverpb.Member // its serializable member list
	ListErr     error
	Versions    *Versions // GET /version
	VersionsErr error
	// Health is the endpoint-health result (linearizable read, no alarms);
	// only gathered when asked for.
	HealthErr error
	Alarms    []string
}

// Answered reports whether the endpoint's status came back.
func (e *Endpoint) Answered() bool { return e.Status != nil }

// Member is one member of the cluster's member list.
type Member struct {
	ID         uint64
	Name       string // empty for a member added but never started
	PeerURLs   []string
	ClientURLs []string
	Learner    bool
	// Endpoint is the endpoint that answers as this member, nil when none does.
	Endpoint *Endpoint
}

// Status is the member's last status, nil when it did not answer.
func (m *Member) Status() *clientv3.StatusResponse {
	if m.Endpoint == nil {
		return nil
	}
	return m.Endpoint.Status
}

// Version is the member's server version, "" when it did not answer.
func (m *Member) Version() string {
	if st := m.Status(); st != nil {
		return st.Version
	}
	return ""
}

// Label names the member in messages: "m2 (http://10.0.0.2:2379)".
func (m *Member) Label() string {
	name := m.Name
	if name == "" {
		name = "member " + ID(m.ID) + " (never started)"
	}
	switch {
	case m.Endpoint != nil:
		return name + " (" + m.Endpoint.URL + ")"
	case len(m.ClientURLs) > 0:
		return name + " (" + strings.Join(m.ClientURLs, ", ") + ")"
	}
	return name
}

// Cluster is a view of the cluster built from every endpoint: its status,
// its member list, its /version, and optionally its health. It keeps one
// client per endpoint open for further requests until Close.
type Cluster struct {
	Endpoints []*Endpoint
	// Members is the linearizable member list (or, when no member could give
	// one, the first serializable list), sorted by name.
	Members []*Member
	// ListFrom is the endpoint whose member list Members is; ListLinearizable
	// says whether it went through the leader.
	ListFrom         string
	ListLinearizable bool
	// ClusterID is the cluster ID that most endpoints answered with.
	ClusterID uint64

	list []*etcdserverpb.Member // the linearizable member list, while gathering
}

// GatherOptions says what to read beyond status, member lists and versions.
type GatherOptions struct {
	Health bool // a linearizable read per endpoint, and the cluster's alarm list
}

// Gather reads the cluster through every endpoint at once, each through its
// own client. Unanswered requests are recorded on their endpoint, not
// returned: the error is for a configuration that cannot work at all (no
// endpoints, a client that cannot be made). Close the cluster when done.
//
// It takes two rounds: every endpoint's status, then everything else at
// once. A reading is on the path of every step that reads the etcd facts,
// skipped or not, so it costs two round trips, not one per request.
func Gather(ctx context.Context, cfg Config, opts GatherOptions) (*Cluster, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("no endpoints")
	}
	c := &Cluster{}
	for _, u := range cfg.Endpoints {
		cli, err := pool.borrow(cfg, u)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Endpoints = append(c.Endpoints, &Endpoint{URL: u, Client: cli})
	}
	var wg sync.WaitGroup
	for _, e := range c.Endpoints {
		wg.Go(func() { e.status(ctx) })
	}
	wg.Wait()
	for _, e := range c.Endpoints {
		if e.Answered() {
			e.gather(ctx, opts, &wg)
		}
	}
	wg.Go(func() { c.linearizableMembers(ctx) })
	// One alarm list per cluster that answered: endpoints of another
	// cluster (which the checks report) are not given this one's alarms.
	alarms := map[uint64]*alarmList{}
	if opts.Health {
		for _, e := range c.Endpoints {
			if id := e.clusterID(); e.Answered() && alarms[id] == nil {
				a := &alarmList{}
				alarms[id] = a
				wg.Go(func() { a.alarms, a.from, a.err = c.alarms(ctx, id) })
			}
		}
	}
	wg.Wait()
	for _, e := range c.Endpoints {
		if a := alarms[e.clusterID()]; a != nil {
			e.health(a)
		}
	}
	c.members()
	c.link()
	return c, nil
}

// status is the first request to an endpoint: a member that does not answer
// it is down or unreachable, and every other request would wait for its own
// deadline only to fail the same way.
func (e *Endpoint) status(ctx context.Context) {
	e.Status, e.StatusErr = e.Client.Status(ctx)
	if e.StatusErr != nil {
		e.ListErr, e.VersionsErr, e.HealthErr = e.StatusErr, e.StatusErr, e.StatusErr
	}
}

// gather starts the endpoint's other requests on wg: its serializable member
// list, its /version and, for health, a linearizable read.
func (e *Endpoint) gather(ctx context.Context, opts GatherOptions, wg *sync.WaitGroup) {
	wg.Go(func() {
		if ml, err := e.Client.MemberList(ctx, true); err != nil {
			e.ListErr = err
		} else {
			e.List = ml.Members
		}
	})
	wg.Go(func() {
		if v, err := e.Client.Versions(ctx); err != nil {
			e.VersionsErr = err
		} else {
			e.Versions = &v
		}
	})
	if opts.Health {
		wg.Go(func() { e.HealthErr = e.Client.Read(ctx) })
	}
}

// clusterID is the cluster the endpoint answered for; 0 when it did not.
func (e *Endpoint) clusterID() uint64 {
	if !e.Answered() || e.Status.Header == nil {
		return 0
	}
	return e.Status.Header.ClusterId
}

// alarmList is a cluster's alarm list, and the endpoint that gave it (or
// last failed to).
type alarmList struct {
	alarms []string
	from   *Endpoint
	err    error
}

// alarms lists the active alarms of the cluster id. The list is the
// cluster's, not a member's: etcd answers it through consensus (a raft
// proposal, written to every member's log), so it is asked once per
// reading, of the leader when an endpoint says it is the leader, else
// through the next endpoint that sees one.
func (c *Cluster) alarms(ctx context.Context, id uint64) ([]string, *Endpoint, error) {
	var order []*Endpoint
	for _, e := range c.Endpoints {
		if e.Answered() && e.clusterID() == id && e.Status.Leader != 0 && e.Status.Header.MemberId == e.Status.Leader {
			order = append(order, e)
		}
	}
	for _, e := range c.Endpoints {
		if e.Answered() && e.clusterID() == id && e.Status.Leader != 0 && !slices.Contains(order, e) {
			order = append(order, e)
		}
	}
	if len(order) == 0 {
		return nil, nil, errors.New("alarm list: no member that answers sees a leader")
	}
	var err error
	for _, e := range order {
		var alarms []string
		if alarms, err = e.Client.Alarms(ctx); err == nil {
			return alarms, e, nil
		}
		if ctx.Err() != nil {
			return nil, e, err
		}
	}
	return nil, order[len(order)-1], err
}

// health completes the endpoint-health result that etcdctl endpoint health
// gives: the linearizable read went through, and no alarm is raised. The
// alarms are the cluster's, so every healthy endpoint reports them.
func (e *Endpoint) health(a *alarmList) {
	if !e.Answered() || e.HealthErr != nil {
		return
	}
	switch {
	case a.err != nil && a.from != nil && a.from != e:
		e.HealthErr = fmt.Errorf("%w (asked through %s)", a.err, a.from.URL)
	case a.err != nil:
		e.HealthErr = a.err
	case len(a.alarms) > 0:
		e.Alarms = a.alarms
		e.HealthErr = fmt.Errorf("active alarms: %s", strings.Join(a.alarms, ", "))
	}
}

// linearizableMembers takes the member list through the first endpoint that
// gives a linearizable one.
func (c *Cluster) linearizableMembers(ctx context.Context) {
	for _, e := range c.Endpoints {
		if !e.Answered() || e.Status.Leader == 0 {
			continue
		}
		if ml, err := e.Client.MemberList(ctx, false); err == nil {
			c.list, c.ListFrom, c.ListLinearizable = ml.Members, e.URL, true
			return
		}
	}
}

// members builds the member list from the linearizable one; failing that,
// from the first serializable one.
func (c *Cluster) members() {
	list := c.list
	if c.ListFrom == "" {
		for _, e := range c.Endpoints {
			if e.List != nil {
				list, c.ListFrom = e.List, e.URL
				break
			}
		}
	}
	for _, pm := range list {
		c.Members = append(c.Members, &Member{
			ID: pm.ID, Name: pm.Name, PeerURLs: pm.PeerURLs, ClientURLs: pm.ClientURLs, Learner: pm.IsLearner,
		})
	}
	slices.SortFunc(c.Members, func(a, b *Member) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
}

// link pairs endpoints and members, and picks the cluster ID.
func (c *Cluster) link() {
	count := map[uint64]int{}
	for _, e := range c.Endpoints {
		if e.Answered() {
			count[e.Status.Header.ClusterId]++
		}
	}
	for _, e := range c.Endpoints {
		if e.Answered() && (c.ClusterID == 0 || count[e.Status.Header.ClusterId] > count[c.ClusterID]) {
			c.ClusterID = e.Status.Header.ClusterId
		}
	}
	for _, e := range c.Endpoints {
		if e.Answered() {
			e.Member = c.MemberByID(e.Status.Header.MemberId)
			if e.Member != nil && e.Member.Endpoint == nil && e.Status.Header.ClusterId == c.ClusterID {
				e.Member.Endpoint = e
			}
			continue
		}
		e.Member = c.MemberByURL(e.URL)
	}
}

// Refresh reads every endpoint's status again.
func (c *Cluster) Refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range c.Endpoints {
		wg.Go(func() {
			if st, err := e.Client.Status(ctx); err == nil {
				e.Status, e.StatusErr = st, nil
			} else {
				e.Status, e.StatusErr = nil, err
			}
		})
	}
	wg.Wait()
}

// Close gives every endpoint's client back: it stays open a while for the
// next reading, while its connection is up.
func (c *Cluster) Close() {
	for _, e := range c.Endpoints {
		pool.giveBack(e.Client)
	}
}

// MemberByID returns the member with ID id, or nil.
func (c *Cluster) MemberByID(id uint64) *Member {
	for _, m := range c.Members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// MemberByName returns the member called name, or nil.
func (c *Cluster) MemberByName(name string) *Member {
	for _, m := range c.Members {
		if m.Name == name && name != "" {
			return m
		}
	}
	return nil
}

// MemberByURL returns the member that advertises the client URL u, or that
// answers at it, or nil.
func (c *Cluster) MemberByURL(u string) *Member {
	u = strings.TrimSuffix(u, "/")
	for _, m := range c.Members {
		if m.Endpoint != nil && m.Endpoint.URL == u {
			return m
		}
		for _, cu := range m.ClientURLs {
			if strings.TrimSuffix(cu, "/") == u {
				return m
			}
		}
	}
	return nil
}

// Leader returns the member every answering endpoint names as leader, or nil
// when none is named or they disagree.
func (c *Cluster) Leader() *Member {
	var id uint64
	for _, e := range c.Endpoints {
		if !e.Answered() || e.Status.Header.ClusterId != c.ClusterID {
			continue
		}
		switch {
		case e.Status.Leader == 0:
			return nil
		case id == 0:
			id = e.Status.Leader
		case e.Status.Leader != id:
			return nil
		}
	}
	return c.MemberByID(id)
}

// FindLeader returns the leader, or an error that says which leader each
// endpoint sees.
func (c *Cluster) FindLeader() (*Member, error) {
	if l := c.Leader(); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("the members do not agree on a leader (%s)", leaderViews(c))
}

// Voting returns the members that vote: started and not learners.
func (c *Cluster) Voting() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if !m.Learner && m.Name != "" {
			out = append(out, m)
		}
	}
	return out
}

// HostMember returns the member that is the inventory host called name: the
// member advertising (or answering at) the host's var etcd_url, else the
// member with the host's name; nil when neither matches.
func (c *Cluster) HostMember(name string, vars map[string]any) *Member {
	if u := stringVar(vars, VarURL); u != "" {
		if m := c.MemberByURL(u); m != nil {
			return m
		}
	}
	return c.MemberByName(name)
}
