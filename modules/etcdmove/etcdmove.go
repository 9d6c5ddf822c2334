// Package etcdmove is the etcd-move-leader module: it hands an etcd cluster's
// leadership away from the step's host before that member is stopped.
package etcdmove

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
)

func init() {
	modules.Register(modules.Info{
		Name: "etcd-move-leader",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "hand etcd leadership from the step's host to a healthy follower",
			Description: `When the step's host is the leader, moves leadership to another member and
waits until every member reports the new leader. Do it before stopping the
leader: a graceful stop also hands leadership over, but to a member etcd
picks, without a check that it worked.

The new leader is to when given; otherwise the best voting member that
answers, reports no errors, passes the endpoint health check, and has
applied all but at most 1000 of the leader's raft entries: with prefer:
upgraded (the default) and version given, one already running version
first (so leadership moves once, to an upgraded member, during a rolling
upgrade), then the one furthest ahead, then by name. Every member must
answer before the move.

The request goes through a client pinned to the leader, as etcd requires.
The host is matched to its member by its var etcd_url (the member that
advertises or answers at it), else by name. When the host is not the
leader, the step does nothing (changed false): it is usually guarded by
when: 'etcd.leader == host.name'. The result holds from, to (member
names), moved and took_ms. In --check it says which member would become
leader.`,
			Example: `- name: hand leadership away before the stop
  etcd-move-leader:
    version: '{{ etcd_version }}'
  when: 'etcd.leader == host.name'
- name: move leadership to etcd-3
  etcd-move-leader: { to: etcd-3, wait: 20s }`,
		},
	})
}

// Module holds the etcd-move-leader module's arguments.
type Module struct {
	etcdarg.Conn `yaml:",inline"`
	To           string       `yaml:"to" doc:"name of the member to hand leadership to; by default the best healthy, caught-up follower"`
	Prefer       string       `yaml:"prefer" default:"upgraded" doc:"upgraded: a member already running version first; any: no preference"`
	Version      string       `yaml:"version" doc:"the version prefer: upgraded looks for, such as the upgrade's target"`
	Wait         arg.Duration `yaml:"wait" default:"10s" doc:"time limit for every member to report the new leader"`
}

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate checks the arguments as written.
func (m *Module) Validate() error {
	if err := m.Conn.Validate(""); err != nil {
		return err
	}
	if m.Prefer != "" && m.Prefer != etcdctl.PreferUpgraded && m.Prefer != etcdctl.PreferAny {
		return &modules.FieldError{Field: "prefer", Msg: fmt.Sprintf("%q is not a preference; use %s or %s", m.Prefer, etcdctl.PreferUpgraded, etcdctl.PreferAny)}
	}
	if m.To != "" {
		for _, f := range []struct{ name, v string }{{"prefer", m.Prefer}, {"version", m.Version}} {
			if f.v != "" {
				return &modules.FieldError{Field: f.name, Msg: "chooses the new leader when to is not given, and to names it; remove one of them"}
			}
		}
	}
	if m.Version != "" && !templated(m.Version) {
		if m.Prefer == etcdctl.PreferAny {
			return &modules.FieldError{Field: "version", Msg: "is only used with prefer: upgraded"}
		}
		if _, err := etcdctl.ParseVersion(m.Version); err != nil {
			return &modules.FieldError{Field: "version", Msg: err.Error()}
		}
	}
	return nil
}

// templated reports whether s still holds a {{ }} part, checked once rendered.
func templated(s string) bool { return strings.Contains(s, "{{") }

// Run moves leadership away when the host is the leader.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.run(ctx, h, false)
}

// Check says which member would become leader, and moves nothing.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.run(ctx, h, true)
}

func (m *Module) run(ctx context.Context, h *modules.Host, check bool) (modules.Result, error) {
	d := m.Defaults()
	cfg, err := d.Conn.Resolve(etcdarg.HostEnv(h))
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	cl, err := etcdctl.Gather(ctx, cfg, etcdctl.GatherOptions{Health: true})
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	defer cl.Close()
	leader, err := cl.FindLeader()
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	self := cl.HostMember(h.Name, h.Vars)
	if self == nil {
		return modules.Result{}, fmt.Errorf("etcd: host %s is not a member: no member advertises its var %s (%v) or is called %s",
			h.Name, etcdctl.VarURL, h.Vars[etcdctl.VarURL], h.Name)
	}
	if self != leader {
		h.Log.Info().Str("leader", leader.Name).Msg("not the leader; leadership stays where it is")
		return modules.Result{Data: map[string]any{"from": leader.Name, "to": leader.Name, "moved": false, "took_ms": int64(0)}}, nil
	}
	to, err := etcdctl.Transferee(cl, d.To, d.Prefer, d.Version)
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	data := map[string]any{"from": leader.Name, "to": to.Name, "from_id": etcdctl.ID(leader.ID), "to_id": etcdctl.ID(to.ID)}
	if check {
		data["moved"] = false
		h.Log.Info().Str("from", leader.Name).Str("to", to.Name).Msg("would move etcd leadership")
		return modules.Result{Changed: true, Data: data}, nil
	}
	took, err := etcdctl.MoveLeader(ctx, cl, to, d.Wait.Std())
	data["took_ms"] = took.Milliseconds()
	if err != nil {
		data["moved"] = false
		return modules.Result{Data: data}, fmt.Errorf("etcd: %w", err)
	}
	data["moved"] = true
	h.Log.Info().Str("from", leader.Name).Str("to", to.Name).Dur("took", took.Round(time.Millisecond)).Msg("moved etcd leadership")
	return modules.Result{Changed: true, Data: data}, nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
