package etcdctl

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/backoff"
)

// MaxTransfereeLag is how many raft entries a member may be behind the
// leader and still receive leadership: a member that is catching up would
// stall the cluster while it applies them as leader.
const MaxTransfereeLag = 1000

// Prefer values: choose a member already on the version, or any.
const (
	PreferUpgraded = "upgraded"
	PreferAny      = "any"
)

// Transferee chooses the member to hand leadership to: to when given, else
// the best of the healthy, caught-up voting followers: one on version first
// when prefer is upgraded and version is given, then the least behind, then
// by name.
func Transferee(cl *Cluster, to, prefer, version string) (*Member, error) {
	leader, err := cl.FindLeader()
	if err != nil {
		return nil, err
	}
	lst := leader.Status()
	why := func(m *Member) string {
		st := m.Status()
		switch {
		case m == leader:
			return "it is the leader"
		case m.Name == "":
			return "it was never started"
		case m.Learner:
			return "it is a learner"
		case st == nil:
			return "it does not answer"
		case len(st.Errors) > 0:
			return "it reports errors: " + strings.Join(st.Errors, "; ")
		case m.Endpoint.HealthErr != nil:
			return "it is unhealthy: " + m.Endpoint.HealthErr.Error()
		case int64(lst.RaftIndex)-int64(st.RaftAppliedIndex) > MaxTransfereeLag:
			return fmt.Sprintf("it has applied %d of the leader's %d raft entries", st.RaftAppliedIndex, lst.RaftIndex)
		}
		return ""
	}
	if to != "" {
		m := cl.MemberByName(to)
		if m == nil {
			return nil, fmt.Errorf("to: no member is called %q; the members are %s", to, list(names(cl.Members)))
		}
		if reason := why(m); reason != "" {
			return nil, fmt.Errorf("to: member %s cannot take leadership: %s", m.Label(), reason)
		}
		return m, nil
	}
	var ok []*Member
	var refused []string
	for _, m := range cl.Members {
		if m == leader {
			continue
		}
		if reason := why(m); reason != "" {
			refused = append(refused, m.Label()+": "+reason)
			continue
		}
		ok = append(ok, m)
	}
	if len(ok) == 0 {
		return nil, fmt.Errorf("no member can take leadership from %s: %s", leader.Label(), strings.Join(refused, "; "))
	}
	onVersion := func(m *Member) int {
		if prefer == PreferUpgraded && version != "" && SameVersion(m.Version(), version) {
			return 0
		}
		return 1
	}
	slices.SortFunc(ok, func(a, b *Member) int {
		return cmp.Or(
			cmp.Compare(onVersion(a), onVersion(b)),
			cmp.Compare(b.Status().RaftAppliedIndex, a.Status().RaftAppliedIndex),
			cmp.Compare(a.Name, b.Name))
	})
	return ok[0], nil
}

func names(ms []*Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// leaderViews says which leader each endpoint sees, for messages.
func leaderViews(cl *Cluster) string {
	var parts []string
	for _, e := range cl.Endpoints {
		switch {
		case !e.Answered():
			parts = append(parts, endpointLabel(e)+" does not answer")
		case e.Status.Leader == 0:
			parts = append(parts, endpointLabel(e)+" sees none")
		default:
			parts = append(parts, endpointLabel(e)+" sees "+nameOf(cl, e.Status.Leader))
		}
	}
	return strings.Join(parts, ", ")
}

// MoveLeader hands leadership from the current leader to to, through a
// client pinned to the leader (etcd refuses the request anywhere else), then
// waits up to wait until every member reports to as its leader. Every member
// must answer before anything is asked: with one down, "every member agrees"
// could not be seen. It returns how long the move took, until agreement.
func MoveLeader(ctx context.Context, cl *Cluster, to *Member, wait time.Duration) (time.Duration, error) {
	leader, err := cl.FindLeader()
	if err != nil {
		return 0, err
	}
	if leader == to {
		return 0, fmt.Errorf("member %s is already the leader", to.Label())
	}
	for _, m := range cl.Members {
		if m.Status() == nil {
			return 0, fmt.Errorf("member %s does not answer: %v; leadership is only moved when every member is up", m.Label(), statusErr(m))
		}
	}
	start := time.Now()
	if err := leader.Endpoint.Client.MoveLeader(ctx, to.ID); err != nil {
		return time.Since(start), fmt.Errorf("leader %s: %w", leader.Label(), err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// A transfer takes an election's round trip: read again soon, then
	// less often.
	var b backoff.Backoff
	for {
		cl.Refresh(wctx)
		if agreed(cl, to) {
			return time.Since(start), nil
		}
		tick := time.NewTimer(b.Next())
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return time.Since(start), ctx.Err()
			}
			return time.Since(start), fmt.Errorf("etcd accepted the move to %s, but the members do not all report it as leader within %s: %s",
				to.Name, wait, leaderViews(cl))
		case <-tick.C:
		}
		tick.Stop()
	}
}

func agreed(cl *Cluster, to *Member) bool {
	for _, m := range cl.Members {
		st := m.Status()
		if st == nil || st.Leader != to.ID {
			return false
		}
	}
	return true
}

func statusErr(m *Member) error {
	if m.Endpoint != nil && m.Endpoint.StatusErr != nil {
		return m.Endpoint.StatusErr
	}
	return fmt.Errorf("none of the endpoints is its client URL")
}

// SameVersion reports whether two versions are equal, read as versions
// (3.7.3 and v3.7.3 are); an unreadable one equals nothing.
func SameVersion(a, b string) bool {
	va, err := ParseVersion(a)
	if err != nil {
		return false
	}
	vb, err := ParseVersion(b)
	return err == nil && va.Equal(vb)
}
