package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/Masterminds/semver/v3"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// checkTimeout bounds each request of a health check.
const checkTimeout = 2 * time.Second

// memberStatus is one member as a check found it.
type memberStatus struct {
	member
	PID            int
	ServerVersion  string // GET /version
	ClusterVersion string // GET /version
	StorageVersion string
	ClusterID      uint64
	MemberID       uint64
	Leader         uint64
	RaftIndex      uint64
	Problem        string // "" when healthy
}

// clusterStatus is the lab's cluster as one check found it.
type clusterStatus struct {
	Members   []memberStatus
	ClusterID uint64            // 0 when the members disagree or none answered
	Names     map[uint64]string // member ID → name, from the member list
	Problems  []string          // about the cluster as a whole
}

// healthy reports whether every member and the cluster are fine.
func (c *clusterStatus) healthy() bool {
	if len(c.Problems) > 0 {
		return false
	}
	for _, m := range c.Members {
		if m.Problem != "" {
			return false
		}
	}
	return true
}

// checker keeps one client per member between checks.
type checker struct {
	lab     *lab
	clients []*clientv3.Client
	http    *http.Client
}

func newChecker(l *lab) (*checker, error) {
	c := &checker{lab: l, http: &http.Client{Timeout: checkTimeout}}
	for _, m := range l.members {
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{m.clientURL()}, DialTimeout: checkTimeout, Logger: zap.NewNop()})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("etcd client for %s: %w", m.clientURL(), err)
		}
		c.clients = append(c.clients, cl)
	}
	return c, nil
}

func (c *checker) close() {
	for _, cl := range c.clients {
		cl.Close()
	}
}

// check looks at every member once.
func (c *checker) check(ctx context.Context) *clusterStatus {
	cs := &clusterStatus{Names: map[uint64]string{}}
	var list *clientv3.MemberListResponse
	for i, m := range c.lab.members {
		ms := memberStatus{member: m, PID: runningPID(m)}
		ms.Problem = c.checkMember(ctx, c.clients[i], &ms)
		if ms.Problem == "" && list == nil {
			rctx, cancel := context.WithTimeout(ctx, checkTimeout)
			l, err := c.clients[i].MemberList(rctx)
			cancel()
			if err == nil {
				list = l
			}
		}
		cs.Members = append(cs.Members, ms)
	}

	ids := map[uint64]bool{}
	for _, m := range cs.Members {
		if m.ClusterID != 0 {
			ids[m.ClusterID] = true
		}
	}
	versions := map[string]bool{}
	for _, m := range cs.Members {
		if m.ClusterVersion != "" {
			versions[m.ClusterVersion] = true
		}
	}
	if len(versions) > 1 {
		cs.Problems = append(cs.Problems, "the members disagree on the cluster version")
	}
	switch len(ids) {
	case 0:
		cs.Problems = append(cs.Problems, "no member answered")
	case 1:
		for id := range ids {
			cs.ClusterID = id
		}
	default:
		cs.Problems = append(cs.Problems, fmt.Sprintf("the members belong to %d different clusters", len(ids)))
	}
	if list == nil {
		if len(ids) > 0 {
			cs.Problems = append(cs.Problems, "no healthy member gave the member list")
		}
		return cs
	}
	want := map[string]member{}
	for _, m := range c.lab.members {
		want[m.Name] = m
	}
	var names []string
	for _, lm := range list.Members {
		name := lm.Name
		if name == "" {
			name = fmt.Sprintf("(unstarted %x)", lm.ID)
		}
		cs.Names[lm.ID] = name
		names = append(names, name)
		m, ok := want[lm.Name]
		switch {
		case !ok:
			cs.Problems = append(cs.Problems, fmt.Sprintf("the cluster has a member %s that is not in this lab", name))
		case lm.IsLearner:
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s is a learner", name))
		case !contains(lm.ClientURLs, m.clientURL()):
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s has client URLs %s, want %s", name, strings.Join(lm.ClientURLs, ","), m.clientURL()))
		}
		delete(want, lm.Name)
	}
	for name := range want {
		cs.Problems = append(cs.Problems, fmt.Sprintf("%s is missing from the member list (%s)", name, strings.Join(names, ", ")))
	}
	sort.Strings(cs.Problems)
	for i, m := range cs.Members {
		if m.MemberID != 0 && cs.Names[m.MemberID] != m.Name && m.Problem == "" {
			cs.Members[i].Problem = fmt.Sprintf("answers as member %q", cs.Names[m.MemberID])
		}
	}
	return cs
}

// checkMember fills ms from the member's answers and returns its problem.
func (c *checker) checkMember(ctx context.Context, cl *clientv3.Client, ms *memberStatus) string {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var problems []string
	if sv, cv, err := c.versions(ctx, ms.member); err != nil {
		problems = append(problems, "GET /version: "+err.Error())
	} else {
		ms.ServerVersion, ms.ClusterVersion = sv, cv
	}
	st, err := cl.Status(ctx, ms.clientURL())
	if err != nil {
		return strings.Join(append(problems, "status: "+shortErr(err)), "; ")
	}
	ms.ClusterID, ms.MemberID, ms.Leader = st.Header.ClusterId, st.Header.MemberId, st.Leader
	ms.RaftIndex, ms.StorageVersion = st.RaftIndex, st.StorageVersion
	if p := unsettled(ms.ServerVersion, ms.ClusterVersion, ms.StorageVersion); p != "" {
		problems = append(problems, p)
	}
	switch {
	case len(st.Errors) > 0:
		problems = append(problems, "errors: "+strings.Join(st.Errors, "; "))
	case st.Leader == 0:
		problems = append(problems, "no leader")
	case st.IsLearner:
		problems = append(problems, "a learner")
	}
	// The read etcdctl endpoint health makes: it needs a quorum.
	if _, err := cl.Get(ctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		problems = append(problems, "linearizable read: "+shortErr(err))
	}
	return strings.Join(problems, "; ")
}

// unsettled says what a member's versions still lack. A new cluster answers
// before its leader has decided the cluster version (3.0.0 until then) and
// before its storage is migrated to it: etcd 3.6+ reports no storage version
// at first, then 3.5.0, then the cluster version. The lab is up once both
// are settled, as an upgrade's preflight wants, and a test that compares a
// member before and after a run sees etcd's own change in neither.
func unsettled(server, cluster, storage string) string {
	switch {
	case server == "":
		return ""
	case cluster == "" || cluster == "3.0.0":
		return "cluster version not decided yet"
	case storage == "" && !before36(server):
		return "storage version not known yet"
	case storage != "" && storage != cluster:
		return fmt.Sprintf("storage version %s, not yet the cluster version %s", storage, cluster)
	}
	return ""
}

// before36 reports whether server version v is older than 3.6, the first to
// report a storage version.
func before36(v string) bool {
	sv, err := semver.NewVersion(v)
	return err == nil && sv.LessThan(semver.New(3, 6, 0, "", ""))
}

// versions reads the server and cluster versions from GET /version.
func (c *checker) versions(ctx context.Context, m member) (server, cluster string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL()+"/version", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", "", errors.New(shortErr(err))
	}
	defer resp.Body.Close()
	var v struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s: %q", resp.Status, printable(body))
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Server == "" {
		return "", "", fmt.Errorf("not etcd's answer: %q", printable(body))
	}
	return v.Server, v.Cluster, nil
}

// writeTable prints one line per member, then the cluster.
func (cs *clusterStatus) writeTable(w io.Writer, recorded uint64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tADDRESS\tPID\tVERSION\tCLUSTER\tSTORAGE\tROLE\tRAFT INDEX\tHEALTH")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, m := range cs.Members {
		pid, role, index := "-", "-", "-"
		if m.PID > 0 {
			pid = strconv.Itoa(m.PID)
		}
		if m.MemberID != 0 {
			switch m.Leader {
			case 0:
				role = "no leader"
			case m.MemberID:
				role = "leader"
			default:
				role = "follower"
			}
			index = strconv.FormatUint(m.RaftIndex, 10)
		}
		health := "ok"
		if m.Problem != "" {
			health = m.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Addr, pid, dash(m.ServerVersion), dash(m.ClusterVersion), dash(m.StorageVersion), role, index, health)
	}
	tw.Flush()

	leader := "none"
	for _, m := range cs.Members {
		if m.Leader != 0 {
			leader = cs.Names[m.Leader]
			if leader == "" {
				leader = fmt.Sprintf("%x", m.Leader)
			}
			break
		}
	}
	cluster := "unknown"
	for _, m := range cs.Members {
		if m.ClusterVersion != "" {
			cluster = m.ClusterVersion
			break
		}
	}
	whose := ""
	switch {
	case cs.ClusterID == 0:
	case recorded == 0:
		whose = " (not recorded yet)"
	case recorded == cs.ClusterID:
		whose = " (this lab's)"
	default:
		whose = fmt.Sprintf(" (NOT this lab's: it recorded %x)", recorded)
	}
	id := "-"
	if cs.ClusterID != 0 {
		id = fmt.Sprintf("%x", cs.ClusterID)
	}
	fmt.Fprintf(w, "cluster %s%s: leader %s, cluster version %s\n", id, whose, leader, cluster)
	for _, p := range cs.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func (l *lab) status(ctx context.Context, stdout, stderr io.Writer) int {
	recorded, err := l.recordedClusterID()
	if err != nil {
		fmt.Fprintln(stderr, "labctl:", err)
		return exitFailed
	}
	c, err := newChecker(l)
	if err != nil {
		fmt.Fprintln(stderr, "labctl:", err)
		return exitFailed
	}
	defer c.close()
	cs := c.check(ctx)
	cs.writeTable(stdout, recorded)
	if !cs.healthy() || (recorded != 0 && cs.ClusterID != recorded) {
		return exitFailed
	}
	return exitOK
}

// pollInterval is the time between two checks of wait.
const pollInterval = 250 * time.Millisecond

func (l *lab) wait(ctx context.Context, timeout time.Duration, stdout, stderr io.Writer) int {
	recorded, err := l.recordedClusterID()
	if err != nil {
		fmt.Fprintln(stderr, "labctl:", err)
		return exitFailed
	}
	c, err := newChecker(l)
	if err != nil {
		fmt.Fprintln(stderr, "labctl:", err)
		return exitFailed
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		cs := c.check(ctx)
		// A member that exited will not become healthy: say so at once.
		for _, m := range l.members {
			if pid, ok := pidGone(m); ok {
				cs.writeTable(stdout, recorded)
				fmt.Fprintf(stderr, "labctl: %s (pid %d) is not running any more%s\n", m.Name, pid, logTail(m))
				return exitFailed
			}
		}
		if cs.ClusterID != 0 && recorded != 0 && cs.ClusterID != recorded {
			cs.writeTable(stdout, recorded)
			fmt.Fprintf(stderr, "labctl: the cluster on these addresses has ID %x, but this lab recorded %x in %s: it is not this lab's cluster\n",
				cs.ClusterID, recorded, l.clusterIDFile())
			return exitFailed
		}
		if cs.healthy() {
			if recorded == 0 {
				if err := l.recordClusterID(cs.ClusterID); err != nil {
					fmt.Fprintln(stderr, "labctl: recording the cluster ID:", err)
					return exitFailed
				}
				recorded = cs.ClusterID
			}
			cs.writeTable(stdout, recorded)
			return exitOK
		}
		select {
		case <-ctx.Done():
			cs.writeTable(stdout, recorded)
			fmt.Fprintf(stderr, "labctl: the lab was not healthy within %s\n", timeout)
			return exitFailed
		case <-time.After(pollInterval):
		}
	}
}

// pidGone returns the pid in m's pidfile and true when that process no
// longer runs. A pidfile that is missing or unreadable is not a gone process.
func pidGone(m member) (int, bool) {
	data, err := os.ReadFile(m.pidfile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	err = syscall.Kill(pid, 0)
	return pid, (err != nil && !errors.Is(err, syscall.EPERM)) || zombie(pid)
}

// logTail returns the last lines of m's log, for a message.
func logTail(m member) string {
	path := filepath.Join(m.Dir, "etcd.log")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("; reading its log: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-15):]
	return fmt.Sprintf("; last lines of %s:\n%s", path, strings.Join(lines, "\n"))
}
