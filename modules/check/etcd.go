package check

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/backoff"
	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
)

// CheckConfig is the check module's `etcd:` probe: the cluster's topology,
// agreement and health, always; versions, catch-up, consistency, cluster and
// storage versions when asked.
type CheckConfig struct {
	etcdarg.Conn   `yaml:",inline"`
	ExpectMembers  MemberSet     `yaml:"expect_members" default:"<one member per endpoint>" doc:"the members there must be: a list of names, or their count"`
	AllowSmall     bool          `yaml:"allow_small" doc:"accept fewer than 3 voting members, or an even number of them"`
	Versions       *VersionRules `yaml:"versions" doc:"rules on the members' server versions"`
	CaughtUp       *int          `yaml:"caught_up" doc:"every member's applied index is at most this many entries behind the leader's commit index, read after the members' (one reading)"`
	Consistency    bool          `yaml:"consistency" doc:"every member's HashKV at one common revision is equal (among members with the same compact revision)"`
	ClusterVersion string        `yaml:"cluster_version" doc:"the cluster version (GET /version etcdcluster) has this major.minor, such as \"3.6\""`
	StorageVersion string        `yaml:"storage_version" doc:"every member's storage version (3.6+) has this major.minor"`
	Wait           arg.Duration  `yaml:"wait" doc:"read the cluster again until every rule passes, up to this long: 10ms apart at first, growing to 100ms (500ms after 5s); without it, one reading decides"`
}

// VersionRules are rules on the members' server versions. The floor a source
// version must reach before an upgrade changes with etcd's releases: keep it
// in the runbook's vars, with its source, not in code.
type VersionRules struct {
	SameMinor bool   `yaml:"same_minor" doc:"every member runs the same major.minor (a mix means an upgrade was interrupted)"`
	Min       string `yaml:"min" doc:"every member runs at least this version, such as the documented floor before the next minor"`
	Target    string `yaml:"target" doc:"the version being upgraded to: every member runs it, or an older patch of its minor or of the minor before; never newer, never two minors behind"`
	Exact     string `yaml:"exact" doc:"every member runs exactly this version"`
}

// MemberSet is expect_members: a list of member names or their count. It is
// the etcd client's own set, with the decoding and docs of an argument.
type MemberSet struct{ want etcdctl.MemberSet }

// Names returns a MemberSet of these names.
func Names(names ...string) MemberSet { return MemberSet{want: etcdctl.Names(names...)} }

// Count returns a MemberSet of n members.
func Count(n int) MemberSet { return MemberSet{want: etcdctl.Count(n)} }

// DocType names the type in `runbook doc`.
func (MemberSet) DocType() string { return "list of names, or int" }

// MarshalJSON writes the set as written: a list of names or a count.
func (s MemberSet) MarshalJSON() ([]byte, error) {
	switch {
	case !s.want.Given():
		return []byte("null"), nil
	case s.want.Listed() != nil:
		return json.Marshal(s.want.Listed())
	}
	return json.Marshal(s.want.Size())
}

// DecodeNode implements arg.NodeDecoder: a count of at least 1, or a
// non-empty list of distinct names.
func (s *MemberSet) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	switch n.Kind {
	case yaml.ScalarNode:
		c, err := strconv.Atoi(n.Value)
		if n.ShortTag() != "!!int" || err != nil || c < 1 {
			ds.Errorf(d.Pos(n), "%s must be a count of members (at least 1) or a list of their names, got %q", d.Name(), n.Value)
			return
		}
		*s = Count(c)
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			ds.Errorf(d.Pos(n), "%s is an empty list; give the members' names, or leave it out to expect one member per endpoint", d.Name())
			return
		}
		var names []string
		templated := false
		for _, c := range n.Content {
			c = arg.Resolve(c)
			if d.Templated(c) {
				templated = true
				continue
			}
			if c.Kind != yaml.ScalarNode || c.ShortTag() == "!!null" || c.Value == "" {
				ds.Errorf(d.Pos(c), "%s must list member names (strings)", d.Name())
				return
			}
			if slices.Contains(names, c.Value) {
				ds.Errorf(d.Pos(c), "%s lists %q twice", d.Name(), c.Value)
				return
			}
			names = append(names, c.Value)
		}
		if !templated { // else it is decoded again once rendered
			*s = Names(names...)
		}
	default:
		ds.Errorf(d.Pos(n), "%s must be a count of members or a list of their names", d.Name())
	}
}

var _ arg.NodeDecoder = (*MemberSet)(nil)

// Validate checks the probe's arguments as written; prefix names the section
// in errors ("etcd.").
func (c *CheckConfig) Validate(prefix string) error {
	if err := c.Conn.Validate(prefix); err != nil {
		return err
	}
	if m := c.ExpectMembers.want; m.Given() && m.Listed() == nil && m.Size() < 1 {
		return &modules.FieldError{Field: prefix + "expect_members", Msg: "must be at least 1"}
	}
	if c.Wait < 0 {
		return &modules.FieldError{Field: prefix + "wait", Msg: "must not be negative"}
	}
	if c.CaughtUp != nil && *c.CaughtUp < 0 {
		return &modules.FieldError{Field: prefix + "caught_up", Msg: fmt.Sprintf("%d is negative; give the largest lag in raft entries that passes, such as 1000", *c.CaughtUp)}
	}
	if v := c.Versions; v != nil {
		if !v.SameMinor && v.Min == "" && v.Target == "" && v.Exact == "" {
			return &modules.FieldError{Field: prefix + "versions", Msg: "has no rule; give same_minor, min, target or exact"}
		}
		for _, f := range []struct{ name, v string }{{"min", v.Min}, {"target", v.Target}, {"exact", v.Exact}} {
			if f.v == "" || etcdarg.Templated(f.v) {
				continue
			}
			if _, err := etcdctl.ParseVersion(f.v); err != nil {
				return &modules.FieldError{Field: prefix + "versions." + f.name, Msg: err.Error()}
			}
		}
	}
	for _, f := range []struct{ name, v string }{{"cluster_version", c.ClusterVersion}, {"storage_version", c.StorageVersion}} {
		if f.v == "" || etcdarg.Templated(f.v) {
			continue
		}
		if _, err := etcdctl.ParseMinor(f.v); err != nil {
			return &modules.FieldError{Field: prefix + f.name, Msg: err.Error()}
		}
	}
	return nil
}

// Probe runs the check for the host h: the connection defaults come from its
// vars and the inventory. It returns the report as JSON-safe data (also when
// a rule fails) and an error naming every failed rule.
func (c *CheckConfig) Probe(ctx context.Context, h *modules.Host) (map[string]any, error) {
	d := modules.WithDefaults(c)
	cfg, err := d.Conn.Resolve(etcdarg.HostEnv(h))
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	r, err := check(ctx, cfg, d.rules(), d.Wait.Std())
	var data map[string]any
	if r != nil {
		data = r.Data()
	}
	return data, err
}

// check reads the cluster and applies the rules; with wait, again and again
// until they pass or wait is over, and what was seen last decides. A failure
// to read the cluster at all (no endpoint can be dialled) ends it at once.
func check(ctx context.Context, cfg etcdctl.Config, rules *etcdctl.Rules, wait time.Duration) (*etcdctl.Report, error) {
	deadline := time.Now().Add(wait)
	var b backoff.Backoff
	for {
		r, err := etcdctl.Check(ctx, cfg, rules)
		left := time.Until(deadline)
		if err == nil || r == nil || wait <= 0 || left <= 0 || ctx.Err() != nil {
			return r, err
		}
		t := time.NewTimer(min(b.Next(), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return r, err
		case <-t.C:
		}
	}
}

// rules are the arguments as the etcd client's check takes them.
func (c *CheckConfig) rules() *etcdctl.Rules {
	r := &etcdctl.Rules{AllowSmall: c.AllowSmall, Versions: (*etcdctl.VersionRules)(c.Versions), CaughtUp: c.CaughtUp,
		Consistency: c.Consistency, ClusterVersion: c.ClusterVersion, StorageVersion: c.StorageVersion,
		ExpectMembers: c.ExpectMembers.want}
	return r
}
