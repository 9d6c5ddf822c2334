// Package etcdfacts provides the `etcd` facts: the cluster as it is now
// (leader, members, versions, health), for guards like etcd.leader == host.name.
package etcdfacts

import (
	"context"
	"fmt"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/etcdarg"
)

func init() {
	modules.RegisterFacts(modules.Facts{
		Name:   "etcd",
		Doc:    Doc,
		Sample: Facts{},
		Gather: func(ctx context.Context, h *modules.Host) (any, error) { return Gather(ctx, h) },
	})
}

// Doc is what `runbook doc` shows for the facts.
const Doc = `The etcd cluster as it is when the step's expressions run, read afresh for
each step (and each attempt of a step with until) that reads etcd.

The endpoints are the host var etcd_endpoints (a list of client URLs), else
the var etcd_url of every host of the inventory group etcd (var etcd_group
names another group). https endpoints are verified with the CA in var
etcd_ca_file (else the system's CAs), and vars etcd_cert_file and
etcd_key_file give a client certificate; relative files are read from the
runbook's folder. A cluster with auth enabled needs vars etcd_user and
etcd_password (never shown). Each member is asked through its own endpoint (status,
member list, /version and a linearizable read), the cluster once for its
alarms, 2s to connect and 5s per request. Gathering fails only when no
endpoint answers.

  etcd.leader           name of the member every answering member names as leader ("" if none or no agreement)
  etcd.leader_id        its member ID in hex
  etcd.members          list of {name, id, url, version, leader, learner, raft_index, applied_index, answered}
  etcd.member           the host's own member (matched by var etcd_url, else by name); empty when none
  etcd.cluster_id       cluster ID in hex
  etcd.cluster_version  from GET /version, like "3.6.0"
  etcd.server_versions  map of member name to its server version, for the members that answered
  etcd.storage_version  the storage version every answering member reports ("" while they differ)
  etcd.healthy          every member answers, is started, votes, sees the same leader, reports no
                        errors, serves a linearizable read and no alarm is raised; the members are
                        one per endpoint, at least 3 and an odd number of voters

Example: when: 'etcd.leader == host.name'; until: 'etcd.member.version == etcd_version'.`

// Facts is what expressions see as `etcd`.
type Facts struct {
	Leader         string            `expr:"leader" json:"leader"`
	LeaderID       string            `expr:"leader_id" json:"leader_id"`
	Members        []Member          `expr:"members" json:"members"`
	Member         Member            `expr:"member" json:"member"`
	ClusterID      string            `expr:"cluster_id" json:"cluster_id"`
	ClusterVersion string            `expr:"cluster_version" json:"cluster_version"`
	ServerVersions map[string]string `expr:"server_versions" json:"server_versions"`
	StorageVersion string            `expr:"storage_version" json:"storage_version"`
	Healthy        bool              `expr:"healthy" json:"healthy"`
}

// Member is one member in the facts.
type Member struct {
	Name         string `expr:"name" json:"name"`
	ID           string `expr:"id" json:"id"`
	URL          string `expr:"url" json:"url"` // the endpoint that answers as it, else its first client URL
	Version      string `expr:"version" json:"version"`
	Leader       bool   `expr:"leader" json:"leader"`
	Learner      bool   `expr:"learner" json:"learner"`
	RaftIndex    int    `expr:"raft_index" json:"raft_index"`
	AppliedIndex int    `expr:"applied_index" json:"applied_index"`
	Answered     bool   `expr:"answered" json:"answered"`
}

// Gather reads the facts for host h.
func Gather(ctx context.Context, h *modules.Host) (Facts, error) {
	cfg, err := (etcdarg.Conn{}).Resolve(etcdarg.HostEnv(h))
	if err != nil {
		return Facts{}, fmt.Errorf("etcd facts: %w", err)
	}
	cl, err := etcdctl.Gather(ctx, cfg, etcdctl.GatherOptions{Health: true})
	if err != nil {
		return Facts{}, fmt.Errorf("etcd facts: %w", err)
	}
	defer cl.Close()
	answered := false
	for _, e := range cl.Endpoints {
		answered = answered || e.Answered()
	}
	if !answered {
		return Facts{}, fmt.Errorf("etcd facts: no endpoint answers: %v", cl.Endpoints[0].StatusErr)
	}
	return FromCluster(cl, h.Name, h.Vars), nil
}

// FromCluster describes a gathered cluster as facts, from the viewpoint of
// the host called name with vars.
func FromCluster(cl *etcdctl.Cluster, name string, vars map[string]any) Facts {
	f := Facts{Members: []Member{}, ServerVersions: map[string]string{}, Healthy: etcdctl.Healthy(cl)}
	if cl.ClusterID != 0 {
		f.ClusterID = etcdctl.ID(cl.ClusterID)
	}
	leader := cl.Leader()
	if leader != nil {
		f.Leader, f.LeaderID = leader.Name, etcdctl.ID(leader.ID)
	}
	storage := map[string]bool{}
	for _, m := range cl.Members {
		fm := Member{Name: m.Name, ID: etcdctl.ID(m.ID), Learner: m.Learner, Leader: m == leader}
		if len(m.ClientURLs) > 0 {
			fm.URL = m.ClientURLs[0]
		}
		if st := m.Status(); st != nil {
			fm.URL, fm.Answered, fm.Version = m.Endpoint.URL, true, st.Version
			fm.RaftIndex, fm.AppliedIndex = int(st.RaftIndex), int(st.RaftAppliedIndex)
			f.ServerVersions[m.Name] = st.Version
			storage[st.StorageVersion] = true
			if f.ClusterVersion == "" && m.Endpoint.Versions != nil {
				f.ClusterVersion = m.Endpoint.Versions.Cluster
			}
		}
		f.Members = append(f.Members, fm)
	}
	if len(storage) == 1 {
		for v := range storage {
			f.StorageVersion = v
		}
	}
	if self := cl.HostMember(name, vars); self != nil {
		for _, fm := range f.Members {
			if fm.ID == etcdctl.ID(self.ID) {
				f.Member = fm
			}
		}
	}
	return f
}
