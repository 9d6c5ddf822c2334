package etcdctl

import (
	"encoding/json"
	"fmt"
)

// Report is everything a check saw of the cluster. Its Data is what the
// step's result holds: expressions read it (`pre.leader`), the journal keeps it.
type Report struct {
	ClusterID       string            `json:"cluster_id"`
	Leader          string            `json:"leader"` // name; "" when there is none, or no agreement
	LeaderID        string            `json:"leader_id"`
	ClusterVersion  string            `json:"cluster_version"` // "" when no /version answered
	StorageVersions map[string]string `json:"storage_versions"`
	ServerVersions  map[string]string `json:"server_versions"`
	Revision        int64             `json:"revision"` // the highest revision seen
	Members         []MemberReport    `json:"members"`
	Endpoints       []EndpointReport  `json:"endpoints"`
	Alarms          []string          `json:"alarms"`
	Lag             []int64           `json:"lag,omitempty"` // caught_up: the largest lag behind the leader's commit index
	Hash            *HashReport       `json:"hash,omitempty"`
	Problems        []string          `json:"problems"`
}

// MemberReport is one member as seen through its endpoint.
type MemberReport struct {
	Name           string   `json:"name"`
	ID             string   `json:"id"`
	ClientURLs     []string `json:"client_urls"`
	PeerURLs       []string `json:"peer_urls"`
	Endpoint       string   `json:"endpoint"` // the endpoint that answered as this member
	Answered       bool     `json:"answered"`
	Version        string   `json:"version"`
	StorageVersion string   `json:"storage_version"`
	Leader         bool     `json:"leader"`
	Learner        bool     `json:"learner"`
	RaftTerm       uint64   `json:"raft_term"`
	RaftIndex      uint64   `json:"raft_index"`
	AppliedIndex   uint64   `json:"applied_index"`
	Revision       int64    `json:"revision"`
	DBSize         int64    `json:"db_size"`
	DBSizeInUse    int64    `json:"db_size_in_use"`
	Errors         []string `json:"errors"`
}

// EndpointReport is what one endpoint answered, or why it did not.
type EndpointReport struct {
	URL    string `json:"url"`
	Member string `json:"member"`
	Error  string `json:"error,omitempty"`
	Health string `json:"health"` // "ok", or why not
}

// NewReport describes the cluster as gathered.
func NewReport(cl *Cluster) *Report {
	r := &Report{
		StorageVersions: map[string]string{},
		ServerVersions:  map[string]string{},
		Members:         []MemberReport{},
		Endpoints:       []EndpointReport{},
		Alarms:          []string{},
		Problems:        []string{},
	}
	if cl.ClusterID != 0 {
		r.ClusterID = ID(cl.ClusterID)
	}
	if l := cl.Leader(); l != nil {
		r.Leader, r.LeaderID = l.Name, ID(l.ID)
	}
	for _, m := range cl.Members {
		mr := MemberReport{
			Name: m.Name, ID: ID(m.ID), ClientURLs: nonNil(m.ClientURLs), PeerURLs: nonNil(m.PeerURLs),
			Learner: m.Learner, Errors: []string{},
		}
		if st := m.Status(); st != nil {
			mr.Endpoint, mr.Answered = m.Endpoint.URL, true
			mr.Version, mr.StorageVersion = st.Version, st.StorageVersion
			mr.Leader = st.Leader == m.ID
			mr.RaftTerm, mr.RaftIndex, mr.AppliedIndex = st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex
			mr.Revision, mr.DBSize, mr.DBSizeInUse = st.Header.Revision, st.DbSize, st.DbSizeInUse
			mr.Errors = nonNil(st.Errors)
			r.ServerVersions[m.Name] = st.Version
			r.StorageVersions[m.Name] = st.StorageVersion
			r.Revision = max(r.Revision, st.Header.Revision)
		}
		r.Members = append(r.Members, mr)
	}
	alarms := map[string]bool{}
	for _, e := range cl.Endpoints {
		er := EndpointReport{URL: e.URL, Health: "ok"}
		if e.Member != nil {
			er.Member = e.Member.Name
		}
		if e.StatusErr != nil {
			er.Error = e.StatusErr.Error()
		}
		if e.HealthErr != nil {
			er.Health = e.HealthErr.Error()
		}
		if e.Versions != nil && r.ClusterVersion == "" {
			r.ClusterVersion = e.Versions.Cluster
		}
		for _, a := range e.Alarms {
			if !alarms[a] {
				alarms[a] = true
				r.Alarms = append(r.Alarms, a)
			}
		}
		r.Endpoints = append(r.Endpoints, er)
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Data is the report as the JSON-safe map a step result holds, with numbers
// as float64, as they are when the journal is read back.
func (r *Report) Data() map[string]any {
	return toData(r)
}

func toData(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain strings, numbers, maps and slices go in: a failure is a
		// programming error.
		panic(fmt.Sprintf("etcdctl: %T is not JSON: %v", v, err))
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("etcdctl: %T: %v", v, err))
	}
	return out
}
