// Package snapshot is the snapshot module: it saves a verified backup of a
// data store on the controller before a risky change (today: etcd).
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
)

func init() {
	modules.Register(modules.Info{
		Name: "snapshot",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "save a verified snapshot of an etcd cluster on the controller",
			Description: `etcd: saves the cluster's data from the leader (or the member named by from),
found by asking every endpoint for its status, through a client that talks
to that member alone: a balanced client could take the snapshot from any
member. The leader holds the newest applied data.

The snapshot is streamed to dest.part, synced to disk, verified, and only
then renamed to dest (and the folder synced), so dest never holds a partial
or unverified file. Verified means what etcdctl snapshot restore checks: the
size is a multiple of 512 plus 32, and the last 32 bytes are the sha256 of
the rest. The database inside is not opened (bbolt's own check would need
etcd's server code): run etcdutl snapshot status on the file for that.

dest is on the controller, relative to the runbook's folder; its folder is
made with mode 0700 and the file written 0600, since a snapshot holds every
key, secrets included. A file already at dest is replaced, by a verified
snapshot only.

The result holds path, size, sha256 (of the whole file), member, member_id,
endpoint, cluster_id, members (name and id of each), revision (from the
member's status just before the snapshot, which the snapshot holds at
least), server_version, cluster_version, storage_version (sent with the
snapshot, empty before 3.6), replaced and took_ms: what a restore needs to
know. In --check, the member is chosen and its status read, and nothing is
saved. Restore a snapshot with the etcdutl of the version you restore to.`,
			Example: `- name: back up etcd from the leader
  snapshot:
    etcd:
      dest: 'backups/etcd-{{ run.id }}.db'
      endpoints: '{{ group("etcd") | map(#.vars.etcd_url) }}'
  run_once: true
- name: back up from one member, over TLS
  snapshot:
    etcd:
      dest: backups/etcd-m2.db
      from: etcd-2
      endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379, https://10.0.0.13:2379]
      ca_file: pki/etcd-ca.pem
      cert_file: pki/runbook.pem
      key_file: pki/runbook-key.pem`,
		},
	})
}

// Module holds the snapshot module's arguments: one section per kind of store.
type Module struct {
	Etcd *Etcd `yaml:"etcd" doc:"save a snapshot of an etcd cluster"`
}

// Etcd is the etcd section.
type Etcd struct {
	etcdarg.Conn    `yaml:",inline"`
	Dest            string       `yaml:"dest" runbook:"required" doc:"file on the controller to write, relative to the runbook's folder"`
	From            string       `yaml:"from" default:"leader" doc:"leader, or the name of the member to save from"`
	TransferTimeout arg.Duration `yaml:"transfer_timeout" default:"10m" doc:"time limit of the whole transfer; raise it for a large database"`
}

// Leader is the from value that means the current leader.
const Leader = "leader"

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate checks that a kind is given and that its arguments make sense.
func (m *Module) Validate() error {
	if m.Etcd == nil {
		return errors.New("no store given; give etcd")
	}
	if err := m.Etcd.Conn.Validate("etcd."); err != nil {
		return err
	}
	switch d := m.Etcd.Dest; {
	case d == "":
		return &modules.FieldError{Field: "etcd.dest", Msg: "is empty; give the file to write on the controller"}
	case d[len(d)-1] == '/' || d == "." || d == "..":
		return &modules.FieldError{Field: "etcd.dest", Msg: fmt.Sprintf("%q is a folder; name the file, like %s", d, filepath.Join(d, "etcd.db"))}
	}
	return nil
}

// Run saves the snapshot.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.run(ctx, h, false)
}

// Check chooses the member and reads its status, and saves nothing.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.run(ctx, h, true)
}

func (m *Module) run(ctx context.Context, h *modules.Host, check bool) (modules.Result, error) {
	d := m.Defaults()
	if d.Etcd == nil {
		return modules.Result{}, errors.New("no store given; give etcd")
	}
	e := d.Etcd
	cfg, err := e.Conn.Resolve(etcdarg.HostEnv(h))
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	dest := e.Dest
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(h.RunbookDir, dest)
	}
	cl, err := etcdctl.Gather(ctx, cfg, etcdctl.GatherOptions{})
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	defer cl.Close()
	src, err := source(cl, e.From)
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: %w", err)
	}
	cli := src.Endpoint.Client
	// The revision the snapshot holds at least: read just before it is taken.
	before, err := cli.Status(ctx)
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: member %s: %w", src.Label(), err)
	}
	if before.Header.MemberId != src.ID || before.Header.ClusterId != cl.ClusterID {
		return modules.Result{}, fmt.Errorf("etcd: %s now answers as member %s of cluster %s, not %s of %s",
			src.Endpoint.URL, etcdctl.ID(before.Header.MemberId), etcdctl.ID(before.Header.ClusterId), etcdctl.ID(src.ID), etcdctl.ID(cl.ClusterID))
	}
	members := make([]map[string]any, 0, len(cl.Members))
	for _, mm := range cl.Members {
		members = append(members, map[string]any{"name": mm.Name, "id": etcdctl.ID(mm.ID)})
	}
	data := map[string]any{
		"path":           dest,
		"member":         src.Name,
		"member_id":      etcdctl.ID(src.ID),
		"endpoint":       src.Endpoint.URL,
		"cluster_id":     etcdctl.ID(cl.ClusterID),
		"members":        members,
		"revision":       before.Header.Revision,
		"server_version": before.Version,
		// Without a /version answer the cluster version stays unknown;
		// the snapshot is no less good for it.
		"cluster_version": "",
		"storage_version": before.StorageVersion,
	}
	if v := src.Endpoint.Versions; v != nil {
		data["cluster_version"] = v.Cluster
	}
	if check {
		data["db_size"] = before.DbSize
		h.Log.Info().Str("member", src.Name).Int64("revision", before.Header.Revision).Int64("db_size", before.DbSize).
			Msg("would save an etcd snapshot to " + dest)
		return modules.Result{Changed: true, Data: data}, nil
	}
	start := time.Now()
	f, err := cli.Snapshot(ctx, dest, e.TransferTimeout.Std())
	if err != nil {
		return modules.Result{}, fmt.Errorf("etcd: from member %s: %w", src.Label(), err)
	}
	data["size"] = f.Size
	data["sha256"] = f.SHA256
	data["storage_version"] = f.StorageVersion
	data["replaced"] = f.Replaced
	data["took_ms"] = time.Since(start).Milliseconds()
	h.Log.Info().Str("member", src.Name).Int64("size", f.Size).Str("sha256", f.SHA256).Bool("replaced", f.Replaced).
		Msg("saved an etcd snapshot to " + dest)
	return modules.Result{Changed: true, Data: data}, nil
}

// source is the member to save from: the leader, or the member named.
func source(cl *etcdctl.Cluster, from string) (*etcdctl.Member, error) {
	var m *etcdctl.Member
	if from == "" || from == Leader {
		l, err := cl.FindLeader()
		if err != nil {
			return nil, fmt.Errorf("no leader to save from: %w", err)
		}
		m = l
	} else if m = cl.MemberByName(from); m == nil {
		var names []string
		for _, mm := range cl.Members {
			names = append(names, mm.Name)
		}
		return nil, fmt.Errorf("from: no member is called %q; the members are %v", from, names)
	}
	if m.Status() == nil {
		return nil, fmt.Errorf("member %s does not answer", m.Label())
	}
	return m, nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
